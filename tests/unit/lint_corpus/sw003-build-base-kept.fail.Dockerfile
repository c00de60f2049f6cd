# expect: SW003@3 -- build-base stays in the final image
FROM 127.0.0.1:5000/docker-hub/library/alpine:3.20@sha256:3333333333333333333333333333333333333333333333333333333333333333
RUN apk add --no-cache build-base
USER 65534:65534
ENTRYPOINT ["/app"]

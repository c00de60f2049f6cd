# expect: nothing -- build tools installed as a virtual group and deleted in the same RUN; 'make' only as a word
FROM 127.0.0.1:5000/docker-hub/library/alpine:3.20@sha256:3333333333333333333333333333333333333333333333333333333333333333
RUN apk add --no-cache --virtual .build-deps gcc musl-dev make \
    && make -C /src install \
    && apk del .build-deps
RUN echo "make sure it works"
USER 65534:65534
ENTRYPOINT ["/app"]

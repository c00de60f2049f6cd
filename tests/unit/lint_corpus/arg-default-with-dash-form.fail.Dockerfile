# expect: SW001@3 SW002@3 -- ${VAR:-default} is the default when VAR is not given
ARG IMAGE
FROM ${IMAGE:-docker.io/library/alpine:3.20}
USER 65534:65534
ENTRYPOINT ["/app"]

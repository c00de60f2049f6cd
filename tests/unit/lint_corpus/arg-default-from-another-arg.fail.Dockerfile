# expect: SW001@4 SW002@4 -- ARG B=${A} is expanded: the base is docker.io's, unpinned
ARG REGISTRY=docker.io/library
ARG BASE=${REGISTRY}/alpine:3.20
FROM ${BASE}
USER 65534:65534
ENTRYPOINT ["/app"]

# expect: SW001@5 SW002@5 -- RUN --mount=...,from=<image> pulls that image; from=<stage> does not
ARG TOOLS=ghcr.io/acme/tools:1.2
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111 AS base
ARG TOOLS
RUN --mount=type=bind,from=${TOOLS},source=/bin,target=/tools /tools/check
RUN --mount=type=bind,from=base,source=/etc,target=/e ls /e
USER 65534:65534
ENTRYPOINT ["/app"]

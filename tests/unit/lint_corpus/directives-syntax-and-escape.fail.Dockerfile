# syntax=docker/dockerfile:1
# escape=`
# expect: SW006@5 -- the escape directive makes the backtick the continuation character
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
RUN apt-get update `
    && apt-get install -y --no-install-recommends curl
USER 65534:65534
ENTRYPOINT ["/app"]

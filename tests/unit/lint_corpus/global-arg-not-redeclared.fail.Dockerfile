# expect: SW008@5 -- a global ARG is not visible in a stage that does not declare it again: USER $RUNAS is not 10001
ARG RUNAS=10001
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
ARG RUNAS_GROUP=root
USER root:${RUNAS_GROUP}
ENTRYPOINT ["/app"]

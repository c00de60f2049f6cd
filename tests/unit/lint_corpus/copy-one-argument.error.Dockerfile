# expect: exit 2 at 3 "COPY requires at least two arguments" -- no destination
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
COPY a
USER 65534

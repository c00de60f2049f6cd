# expect: exit 2 at 3 "ENV requires at least one argument" -- nothing set
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
ENV
USER 65534

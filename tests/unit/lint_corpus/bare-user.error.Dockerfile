# expect: exit 2 at 3 "USER requires exactly one argument" -- nobody named
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
USER

# expect: exit 2 at 3 "SHELL requires the arguments to be in JSON form" -- shell form
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
SHELL /bin/bash -c
USER 65534

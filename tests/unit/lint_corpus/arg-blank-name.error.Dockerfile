# expect: exit 2 at 3 "ARG names can not be blank" -- a default with no name
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
ARG =x
USER 65534

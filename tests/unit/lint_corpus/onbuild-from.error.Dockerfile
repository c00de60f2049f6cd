# expect: exit 2 at 3 "FROM isn't allowed as an ONBUILD trigger" -- not a trigger
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
ONBUILD FROM scratch
USER 65534

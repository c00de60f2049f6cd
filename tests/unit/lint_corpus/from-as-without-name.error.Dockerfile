# expect: exit 2 at 2 "FROM requires either one or three arguments" -- AS and no stage name
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111 AS
USER 65534

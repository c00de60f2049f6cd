# expect: exit 2 at 2 "invalid name for build stage: '1build'" -- BuildKit's stage-name rule
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111 AS 1build
USER 65534

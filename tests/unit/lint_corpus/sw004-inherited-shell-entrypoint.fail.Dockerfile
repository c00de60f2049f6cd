# expect: SW004@3 -- the final stage inherits its parent's shell-form ENTRYPOINT
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111 AS base
ENTRYPOINT /app/server --port 8080
FROM base
USER 65534:65534

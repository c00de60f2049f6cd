# expect: nothing -- the final stage's exec-form ENTRYPOINT replaces its parent's shell form
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111 AS base
ENTRYPOINT /app/server --port 8080
FROM base
USER 65534:65534
ENTRYPOINT ["/app/server", "--port", "8080"]

# expect: exit 2 at 3 "COPY: unknown flag: --frobnicate" -- a flag COPY does not take
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
COPY --frobnicate=1 a /a
USER 65534

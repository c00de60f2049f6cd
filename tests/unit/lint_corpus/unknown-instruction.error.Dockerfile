# expect: exit 2 at 3 "unknown instruction: FROBNICATE" -- BuildKit knows 18 instructions
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
FROBNICATE a
USER 65534

# expect: exit 2 at 4 "CMD: unknown flag: --port (it takes none)" -- the flag would swallow the word
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
USER 65534
CMD --port 8080

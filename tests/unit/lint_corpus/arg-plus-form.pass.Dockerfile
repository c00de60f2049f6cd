# expect: nothing -- ${VAR:+word} is word when VAR is set, empty otherwise
ARG PINNED=yes
ARG DIGEST=sha256:1111111111111111111111111111111111111111111111111111111111111111
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm${PINNED:+@${DIGEST}}
USER 65534:65534
ENTRYPOINT ["/app"]

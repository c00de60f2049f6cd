# expect: nothing -- COPY <<EOF writes a file; its body is not instructions
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
COPY <<CONF /etc/app.conf
FROM nowhere:latest
USER root
CONF
USER 65534:65534
ENTRYPOINT ["/app"]

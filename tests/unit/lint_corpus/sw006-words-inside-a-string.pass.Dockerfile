# expect: nothing -- 'pip install' inside a string is not a command that installs
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
RUN echo "remember: pip install needs --no-cache-dir" > /etc/motd
USER 65534:65534
ENTRYPOINT ["/app"]

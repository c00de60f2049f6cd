# expect: nothing -- BuildKit verifies the download against the checksum
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
ADD --checksum=sha256:4444444444444444444444444444444444444444444444444444444444444444 https://example.com/tool.tgz /opt/
USER 65534:65534
ENTRYPOINT ["/app"]

# expect: SW009@3 -- a quoted URL is still a download
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
ADD "https://example.com/tool.tgz" /opt/
USER 65534:65534
ENTRYPOINT ["/app"]

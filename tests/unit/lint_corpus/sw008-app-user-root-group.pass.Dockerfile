# expect: nothing -- a non-root user in group 0 (OpenShift style) is not root
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
USER 10001:0
ENTRYPOINT ["/app"]

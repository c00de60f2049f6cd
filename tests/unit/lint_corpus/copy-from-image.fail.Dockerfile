# expect: SW001@3 SW002@3 -- COPY --from an image pulls that image
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
COPY --from=docker.io/library/busybox:latest /bin/busybox /bin/busybox
USER 65534:65534
ENTRYPOINT ["/bin/busybox"]

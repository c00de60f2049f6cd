# expect: nothing -- the final stage inherits USER from the stage it is built FROM
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111 AS runtime
USER 65534:65534

FROM runtime
ENTRYPOINT ["/app"]

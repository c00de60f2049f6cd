# expect: SW008@2 -- target 'runtime' (see the test): it sets no USER, though the last stage does
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111 AS runtime
ENTRYPOINT ["/app"]

FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111 AS debug
USER 65534:65534
ENTRYPOINT ["/app"]

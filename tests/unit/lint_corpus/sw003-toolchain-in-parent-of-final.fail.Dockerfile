# expect: SW003@3 -- the final stage is built FROM a stage that installed gcc
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111 AS toolchain
RUN apt-get update && apt-get install -y --no-install-recommends gcc && rm -rf /var/lib/apt/lists/*

FROM toolchain
USER 65534:65534
ENTRYPOINT ["/app"]

# expect: SW000@3 SW004@4 -- a suppression that does not parse suppresses nothing and is reported
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
# slipway-ignore sw004 because the wrapper forwards signals
ENTRYPOINT /app
USER 65534:65534

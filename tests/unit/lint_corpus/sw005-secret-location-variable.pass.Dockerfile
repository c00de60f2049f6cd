# expect: nothing -- a variable naming where a secret file is holds no secret
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
ENV AWS_SECRET_ACCESS_KEY_FILE=/run/secrets/access_key API_TOKEN_PATH=/run/secrets/token
USER 65534:65534
ENTRYPOINT ["/app"]

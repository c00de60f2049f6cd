# expect: SW005@3 SW005@4 SW005@5 SW005@6 SW005@7 -- keys, env files, credential stores and a heredoc into .npmrc
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
COPY .ssh/ /root/.ssh/
COPY .env.production /app/
COPY secrets.json /app/
COPY .git-credentials /root/
COPY <<EOT /root/.npmrc
//registry.npmjs.org/:_authToken=abc
EOT
USER 65534:65534
ENTRYPOINT ["/app"]

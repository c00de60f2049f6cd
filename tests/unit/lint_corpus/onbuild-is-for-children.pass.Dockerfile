# expect: nothing -- ONBUILD triggers run in images built FROM this one, not here
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
ONBUILD USER root
ONBUILD RUN apt-get install -y gcc
USER 65534:65534
ENTRYPOINT ["/app"]

# expect: nothing -- Docker's official python image removes its build deps with apt-mark auto + purge --auto-remove
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
RUN set -eux; savedAptMark="$(apt-mark showmanual)"; apt-get update; \
    apt-get install -y --no-install-recommends gcc make libc6-dev; \
    ./configure && make install; \
    apt-mark auto '.*' > /dev/null; apt-mark manual $savedAptMark; \
    apt-get purge -y --auto-remove -o APT::AutoRemove::RecommendsImportant=false; rm -rf /var/lib/apt/lists/*
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/app"]

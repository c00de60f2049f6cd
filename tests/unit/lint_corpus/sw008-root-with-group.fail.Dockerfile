# expect: SW008@3 -- USER root:0 is root whatever the group
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
USER root:0
ENTRYPOINT ["/app"]

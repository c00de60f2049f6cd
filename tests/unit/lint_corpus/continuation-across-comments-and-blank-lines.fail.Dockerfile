# expect: SW006@3 -- one RUN across a comment line and a blank line
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
RUN apt-get update \
# the next line is still this RUN
    && apt-get install -y --no-install-recommends ca-certificates \

    && echo "done"
USER 65534:65534
ENTRYPOINT ["/app"]

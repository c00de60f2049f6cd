# expect: SW003@3 -- gcc-c++ and the Development Tools group are toolchains kept in the final stage
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
RUN dnf install -y gcc-c++ && dnf groupinstall -y "Development Tools" && dnf clean all
USER 65534:65534
ENTRYPOINT ["/app"]

# expect: SW008@3 -- ContainerAdministrator is Windows' root
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
USER ContainerAdministrator
ENTRYPOINT ["C:\\app\\app.exe"]

# expect: SW007@4 -- the whole context before dotnet restore
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111 AS build
WORKDIR /src
COPY . .
RUN dotnet restore && dotnet publish -c Release -o /out

FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
COPY --from=build /out /app
USER 65534:65534
ENTRYPOINT ["/app/App"]

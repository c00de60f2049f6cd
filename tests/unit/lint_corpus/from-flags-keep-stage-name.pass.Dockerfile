# expect: nothing -- FROM --platform=... AS build, then FROM build, COPY --from=build: 'build' is a stage, not an image
FROM --platform=$BUILDPLATFORM 127.0.0.1:5000/docker-hub/library/golang:1.22@sha256:2222222222222222222222222222222222222222222222222222222222222222 AS build
RUN go build -o /out/app ./...

FROM build AS test
RUN /out/app --self-test

FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
COPY --from=build /out/app /app
USER 65534:65534
ENTRYPOINT ["/app"]

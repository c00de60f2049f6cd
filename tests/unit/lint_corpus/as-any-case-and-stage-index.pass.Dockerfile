# expect: nothing -- 'as' in lower case, COPY --from=0 by index
FROM 127.0.0.1:5000/docker-hub/library/golang:1.22@sha256:2222222222222222222222222222222222222222222222222222222222222222 as Build
RUN go build -o /out/app ./...

FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
COPY --from=0 /out/app /app
COPY --from=BUILD /out/app /app2
USER 65534:65534
ENTRYPOINT ["/app"]

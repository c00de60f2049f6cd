# expect: SW007@4 SW007@7 SW007@10 -- ./mvnw, ./gradlew and bare yarn resolve dependencies: the source must come after them
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111 AS jvm
WORKDIR /src
COPY . .
RUN ./mvnw -B package
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111 AS kotlin
COPY src /src
RUN ./gradlew --no-daemon build
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
COPY . /web
RUN yarn
USER 65534:65534
ENTRYPOINT ["/web/server"]

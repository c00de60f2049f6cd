# expect: nothing -- pom.xml first, dependencies resolved, then src and the build
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111 AS build
WORKDIR /src
COPY pom.xml .
RUN mvn -B dependency:go-offline
COPY src ./src
RUN mvn -B package

FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
COPY --from=build /src/target/app.jar /app.jar
USER 65534:65534
ENTRYPOINT ["java", "-jar", "/app.jar"]

# expect: SW007@5 -- src is copied before maven resolves the dependencies
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111 AS build
WORKDIR /src
COPY pom.xml .
COPY src ./src
RUN mvn -B package

FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
COPY --from=build /src/target/app.jar /app.jar
USER 65534:65534
ENTRYPOINT ["java", "-jar", "/app.jar"]

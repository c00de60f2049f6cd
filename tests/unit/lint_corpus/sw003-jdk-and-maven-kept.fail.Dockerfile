# expect: SW003@3 -- a JDK and maven in the image that runs
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
RUN apt-get update && apt-get install -y --no-install-recommends openjdk-17-jdk maven && rm -rf /var/lib/apt/lists/*
USER 65534:65534
ENTRYPOINT ["java", "-jar", "/app.jar"]

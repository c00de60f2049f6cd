# expect: nothing -- globs and directories that bring only manifests are the cache-friendly order
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
WORKDIR /app
COPY package*.json ./
COPY *.csproj go.* poetry.lock* ./
COPY requirements/ requirements/
RUN npm ci && dotnet restore && go mod download && pip install --no-cache-dir -r requirements/base.txt
COPY . .
USER 65534:65534
ENTRYPOINT ["/app/server"]

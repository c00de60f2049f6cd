# expect: SW006@3 -- the apt-get install inside the heredoc is seen; the Python in it is not a stage
FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:1111111111111111111111111111111111111111111111111111111111111111
RUN <<EOF_SCRIPT
apt-get update
apt-get install -y --no-install-recommends curl
python3 - <<PY
from pathlib import Path
PY
EOF_SCRIPT
USER 65534:65534
ENTRYPOINT ["/app"]

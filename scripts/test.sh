#!/usr/bin/env bash
# `make test`'s pytest part: the end-to-end replay (about 7 minutes, mostly arm64 under QEMU and waiting on jobs)
# runs beside the unit and integration tests instead of after them. Each suite keeps its own session (its own
# fixtures: the local platform, dockerd, the registry, one synthesis); the end-to-end output follows the rest, and
# the exit status fails if either failed. `pytest` alone still runs everything in one session.
set -uo pipefail
BIN=${BIN:-.venv/bin}
log=$(mktemp)
"$BIN/pytest" tests/e2e >"$log" 2>&1 &
e2e=$!
trap 'kill "$e2e" 2>/dev/null; rm -f "$log"' INT TERM
"$BIN/pytest" tests/unit tests/integration
rest=$?
wait "$e2e"
e2e_status=$?
echo "--- tests/e2e"
cat "$log"
rm -f "$log"
exit $((rest != 0 || e2e_status != 0))

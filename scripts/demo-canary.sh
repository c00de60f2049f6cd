#!/bin/sh
# After `make demo` (#29): two pushes of payments/api from a scratch checkout of examples/web, the folder
# examples/repos.toml names for acme/payments-api.
#  1. A good release: dev's and prod's Lambda aliases move by their canaries (10 %, its bake watched by the traffic
#     stand-in and the alarm, then 100 %), prod after dev's alarm let it in.
#  2. A bad release that answers its smoke event (/health) but fails on every other path: dev's canary catches it, the
#     alias goes back to the previous version, the deploy fails naming the alarm, prod never starts, and the stage's
#     rollback deploys the previous release to dev again. That push exits 1, as it should; this script does not.
set -eu
BIN=${BIN:-.venv/bin}
STATE=${STATE:-.slipway}
ROOT=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
cp -R examples/web/. "$work/"
commit() { git -C "$work" add -A && git -C "$work" -c user.name=demo -c user.email=demo@localhost commit -qm "$1"; }
git -C "$work" init -q
commit "payments/api as examples/web has it"

sed -i 's/"status": "ok"/"status": "ok", "release": "good"/' "$work/app/service.py"
commit "health says which release answers"
echo "== a good release: promoted step by step"
"$ROOT/$BIN/slipway" local --state "$STATE" push acme/payments-api --from "$work" --approve

python3 - "$work/app/handler.py" <<'PY'
import sys
from pathlib import Path
path = Path(sys.argv[1])
text = path.read_text()
bad = '    if event.get("path") != "/health":\n        raise RuntimeError("payments are down")\n    status, body = health()\n'
path.write_text(text.replace("    status, body = health()\n", bad))
PY
commit "fail on every path but /health"
echo "== a bad release: caught at dev's canary, rolled back"
if "$ROOT/$BIN/slipway" local --state "$STATE" push acme/payments-api --from "$work" --approve; then
    echo "the bad release was not caught" >&2
    exit 1
fi
echo "== caught: dev serves the previous release; prod never started"

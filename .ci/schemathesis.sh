#!/usr/bin/env bash
# Runs schemathesis (pinned, from PyPI) against a fresh `honnin serve` and fails on any
# 5xx, undocumented status code, wrong content type or response-schema mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."
ST_VERSION=4.32.5
VENV=target/ci-venv
if [ ! -x "$VENV/bin/st" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "schemathesis==$ST_VERSION"
fi
# Same target selection as the README test command, so features unify the same way and
# the binary built by `cargo test --workspace` is reused instead of rebuilt.
cargo test --workspace --no-run
DATA=$(mktemp -d)
LOG="$DATA/serve.log"
# Rate limits high so the fuzzer tests the API, not the limiter (429 is tested in the suite).
# Webhooks the fuzzer registers must never be delivered anywhere: with no public
# destination and an empty allow-list, every delivery is refused without even a DNS query.
HONNIN_LIMITS__RATE_LIMIT_PER_SECOND=100000 HONNIN_LIMITS__RATE_LIMIT_BURST=100000 \
HONNIN_LIMITS__LOGIN_STARTS_PER_MINUTE=100000 \
HONNIN_SERVICE__WEBHOOKS__ALLOW_PUBLIC=false \
  target/debug/honnin serve --listen 127.0.0.1:0 --data-dir "$DATA/data" >"$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$DATA"' EXIT
for _ in $(seq 1 120); do
  grep -q "honnin listening on" "$LOG" && break
  kill -0 $PID 2>/dev/null || { cat "$LOG"; echo "honnin serve died"; exit 1; }
  sleep 0.5
done
URL=$(grep -o 'http://[0-9.:]*' "$LOG" | head -1)
KEY=$(grep -o 'hn_[A-Za-z0-9_-]*' "$LOG" | head -1)
[ -n "$URL" ] && [ -n "$KEY" ] || { cat "$LOG"; echo "no address or admin key in the server output"; exit 1; }
# DELETE /v1/keys/{keyId} is left out: the stateful phase would revoke the very key it
# authenticates with and spend the rest of the run on 401s. The API suite tests revocation.
"$VENV/bin/st" run "$URL/openapi.json" \
  -H "Authorization: Bearer $KEY" \
  --exclude-path-regex '^/v1/keys/' \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-time "${SCHEMATHESIS_SECONDS:-150}" \
  --seed 1

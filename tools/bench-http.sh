#!/usr/bin/env bash
# Requests per second of /v1/compare and /v1/collections/{id}/search with real images
# under concurrent load (wrk), against a release `honnin serve` on SQLite.
#
#   tools/bench-http.sh [DATA_DIR=../shared/data] [SECONDS=30] [CONNECTIONS=4]
#
# Needs `wrk` (Debian: apt-get install wrk). Indexes 200 LFW faces into a collection,
# then loads each route for SECONDS with CONNECTIONS connections and 2 wrk threads.
# wrk runs on the same 2-core machine as the server, so it takes some CPU from it.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data}
SECS=${2:-30}
CONN=${3:-4}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
cargo build --release -p honnin-cli
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
HONNIN_LIMITS__RATE_LIMIT_PER_SECOND=100000 HONNIN_LIMITS__RATE_LIMIT_BURST=100000 \
  target/release/honnin serve --listen 127.0.0.1:0 --data-dir "$WORK/data" >"$WORK/log" 2>&1 &
PID=$!
for _ in $(seq 1 120); do grep -q "listening on" "$WORK/log" && break; sleep 0.5; done
URL=$(grep -o 'http://[0-9.:]*' "$WORK/log" | head -1)
export K=$(grep -o 'hn_[A-Za-z0-9_-]*' "$WORK/log" | head -1)
curl -sf -X POST "$URL/v1/collections" -H "Authorization: Bearer $K" -H 'content-type: application/json' \
  -d '{"collectionId":"bench"}' >/dev/null
n=0
for f in $(ls -d "$DATA"/lfw/lfw-deepfunneled/*/ | head -200); do
  img=$(ls "$f" | head -1)
  curl -sf -X POST "$URL/v1/collections/bench/faces" -H "Authorization: Bearer $K" \
    -F image=@"$f$img" -F maxFaces=1 >/dev/null && n=$((n+1))
done
echo "indexed $n LFW faces"
A=$DATA/lfw/lfw-deepfunneled/George_W_Bush/George_W_Bush_0001.jpg
B=$DATA/lfw/lfw-deepfunneled/George_W_Bush/George_W_Bush_0002.jpg
printf '{"sourceImage":{"bytes":"%s"},"targetImage":{"bytes":"%s"}}' "$(base64 -w0 "$A")" "$(base64 -w0 "$B")" >"$WORK/compare.json"
printf '{"image":{"bytes":"%s"},"maxResults":10}' "$(base64 -w0 "$B")" >"$WORK/search.json"
cat >"$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("K")
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
LUA
for route in compare search; do
  if [ $route = compare ]; then path=/v1/compare; else path=/v1/collections/bench/search; fi
  echo "== POST $path, $CONN connections, ${SECS}s"
  BODY="$WORK/$route.json" wrk -t2 -c"$CONN" -d"${SECS}s" --latency -s "$WORK/post.lua" "$URL$path"
done

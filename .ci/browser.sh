#!/usr/bin/env bash
# Real-browser end-to-end test of the <honnin-liveness> component (crates/honnin-web):
# headless Chromium with a fake camera playing a pre-recorded video of a real person
# (../shared/data/replay/person1-live.mp4), driven by tests/browser/liveness.mjs through
# the demo page of a fresh `honnin serve`. The session must complete (SUCCEEDED) with a
# LOW confidence: a recording cannot answer the colour challenge.
#
#   bash .ci/browser.sh            # from anywhere; HONNIN_BIN=path/to/honnin skips the build
#
# Installs what is missing (Debian's chromium and ffmpeg with apt-get, playwright-core with
# `npm ci`; never a downloaded browser). Screenshots of every stage go to
# target/ci-artifacts/browser/<run>/. Without ../shared/data it skips (exit 0) unless
# HONNIN_REQUIRE_DATA=1, which makes it fail.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SOURCE_VIDEO=${HONNIN_SHARED_DATA:-../shared/data}/replay/person1-live.mp4
ARTIFACTS=target/ci-artifacts/browser

if [ ! -f "$SOURCE_VIDEO" ]; then
  if [ "${HONNIN_REQUIRE_DATA:-}" = 1 ]; then
    echo "FAIL: $SOURCE_VIDEO not found and HONNIN_REQUIRE_DATA=1: the browser test needs the shared data" >&2
    exit 1
  fi
  echo "SKIP: $SOURCE_VIDEO not found (no ../shared/data): the browser test needs its camera video"
  exit 0
fi

# --- tools: chromium, ffmpeg (apt), node >= 20, playwright-core (npm ci) ------------------
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi
command -v node >/dev/null || { echo "FAIL: node (>= 20) is required" >&2; exit 1; }
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
  || { echo "FAIL: node $(node --version) is too old: playwright-core needs >= 20" >&2; exit 1; }
PINNED=$(node -p 'require("./tests/browser/package.json").dependencies["playwright-core"]')
INSTALLED=$(node -p 'try { require("./tests/browser/node_modules/playwright-core/package.json").version } catch { "" }')
if [ "$PINNED" != "$INSTALLED" ]; then
  echo "== npm ci (playwright-core $PINNED)"
  (cd tests/browser && npm ci --no-audit --no-fund)
fi

# --- the binary --------------------------------------------------------------------------
if [ -n "${HONNIN_BIN:-}" ]; then
  BIN=$HONNIN_BIN
else
  # Same target selection as the README test command (as in schemathesis.sh), so
  # features unify the same way and the binary `cargo test --workspace` built is reused
  # instead of rebuilt (`cargo build -p honnin-cli` would recompile dependencies with a
  # different feature set).
  echo "== cargo test --workspace --no-run (builds target/debug/honnin)"
  cargo test --workspace --no-run
  BIN=$ROOT/target/debug/honnin
fi
[ -x "$BIN" ] || { echo "FAIL: $BIN is not an executable" >&2; exit 1; }

# --- temp dir: camera video, data dir, server log ---------------------------------------
TMP=$(mktemp -d)
PID=""
cleanup() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

echo "== camera video (Y4M, 20 s, looped by Chromium)"
ffmpeg -loglevel error -y -i "$SOURCE_VIDEO" -t 20 -vf "scale=360:-2,fps=15" -pix_fmt yuv420p "$TMP/camera.y4m"

echo "== honnin serve (demo enabled)"
LOG=$TMP/serve.log
HONNIN_LISTEN=127.0.0.1:0 HONNIN_DATA_DIR="$TMP/data" HONNIN_DEMO__ENABLED=true \
  HONNIN_LOG=${HONNIN_LOG:-warn} "$BIN" serve >"$LOG" 2>&1 &
PID=$!
URL=""
for _ in $(seq 1 240); do
  URL=$(grep -o 'honnin listening on http://[0-9.:]*' "$LOG" | head -1 | sed 's/^honnin listening on //' || true)
  [ -n "$URL" ] && break
  kill -0 "$PID" 2>/dev/null || { cat "$LOG"; echo "FAIL: honnin serve exited" >&2; exit 1; }
  sleep 0.5
done
[ -n "$URL" ] || { cat "$LOG"; echo "FAIL: honnin serve printed no address" >&2; exit 1; }
ready=""
for _ in $(seq 1 240); do
  if node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$URL/readyz"; then
    ready=1
    break
  fi
  kill -0 "$PID" 2>/dev/null || { cat "$LOG"; echo "FAIL: honnin serve exited" >&2; exit 1; }
  sleep 0.5
done
[ -n "$ready" ] || { cat "$LOG"; echo "FAIL: $URL/readyz never answered 200" >&2; exit 1; }
echo "   $URL ready"

echo "== browser test (screenshots in $ARTIFACTS)"
rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS"
status=0
node tests/browser/liveness.mjs --base-url "$URL" --video "$TMP/camera.y4m" --out "$ARTIFACTS" || status=$?
if [ "$status" = 0 ]; then
  node tests/browser/verify.mjs --base-url "$URL" --video "$TMP/camera.y4m" --out "$ARTIFACTS/verify" || status=$?
fi
cp "$LOG" "$ARTIFACTS/serve.log"
if [ "$status" != 0 ]; then
  echo "--- honnin serve log (last 60 lines)"
  tail -n 60 "$LOG"
  exit "$status"
fi
echo "== browser test passed"

#!/usr/bin/env bash
# API benchmark: signed DescribeSimpleStreamList (reads) and AddStream/DeleteStream pairs
# (durable writes) against the release binary on loopback, rate limits off, from a
# separate load process. Prints one line per run; numbers go to BENCHMARKS.md by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked -p tributary --example api_load -q
cargo build --release --locked -p tributary -q
BIN="${CARGO_TARGET_DIR:-target}/release"
SECS="${SECS:-10}"
TMP=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$TMP"' EXIT
APP=1000 SECRET=0123456789abcdef0123456789abcdef
RUST_LOG=warn "$BIN/tributary" serve --rtc-udp 127.0.0.1:0 --http 127.0.0.1:0 --data "$TMP/data" \
  --app "$APP:$SECRET" --no-rate-limits > "$TMP/out" 2> "$TMP/err" &
PID=$!
for _ in $(seq 100); do grep -q 'API listening' "$TMP/out" 2>/dev/null && break; sleep 0.1; done
BASE=$(sed -n 's/^tributary: API listening on //p' "$TMP/out")
echo "server $BASE (pid $PID), $(nproc) cores, ${SECS}s per run"
for c in ${CONC:-16 64}; do
  "$BIN/examples/api_load" "$BASE" $APP $SECRET read "$c" "$SECS"
done
for c in ${CONC:-16 64}; do
  "$BIN/examples/api_load" "$BASE" $APP $SECRET write "$c" "$SECS"
done
echo "server peak RSS: $(grep VmHWM /proc/$PID/status | awk '{print $2, $3}')"

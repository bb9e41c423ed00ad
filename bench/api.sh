#!/usr/bin/env bash
# API benchmark: signed DescribeSimpleStreamList (reads) and AddStream/DeleteStream pairs
# (durable writes) against the release binary on loopback, rate limits off, from a
# separate load process. Prints one line per run; numbers go to BENCHMARKS.md by hand.
#
# STORES="sqlite postgres" bench/api.sh runs the same load with each store: SQLite (the
# embedded default) and PostgreSQL (a private server started here with initdb/pg_ctl in a
# temporary directory, fsync on, as Debian's postgresql package ships it). Lines of a
# PostgreSQL run start with "store=postgres".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked -p tributary --example api_load -q
cargo build --release --locked -p tributary -q
BIN="${CARGO_TARGET_DIR:-target}/release"
SECS="${SECS:-10}"
TMP=$(mktemp -d)
PID=""
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
AS_PG=()
[ "$(id -u)" -eq 0 ] && AS_PG=(runuser -u postgres --)
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  [ -d "$TMP/pg" ] && "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$TMP/pg" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
APP=1000 SECRET=0123456789abcdef0123456789abcdef

for store in ${STORES:-sqlite}; do
  extra=()
  prefix=""
  if [ "$store" = postgres ]; then
    [ "$(id -u)" -eq 0 ] && chown postgres "$TMP"
    "${AS_PG[@]}" "$PG_BIN/initdb" -D "$TMP/pg" -U tributary --auth=trust -E UTF8 >/dev/null
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$TMP/pg" -l "$TMP/pg.log" -w \
      -o "-p $PORT -k $TMP -c listen_addresses=127.0.0.1" start >/dev/null
    extra=(--store "postgres://tributary@127.0.0.1:$PORT/postgres")
    prefix="store=postgres "
  fi
  mkdir -p "$TMP/data-$store"
  RUST_LOG=warn "$BIN/tributary" serve --rtc-udp 127.0.0.1:0 --http 127.0.0.1:0 --rtmp 127.0.0.1:0 \
    --data "$TMP/data-$store" "${extra[@]}" --app "$APP:$SECRET" --no-rate-limits \
    > "$TMP/out-$store" 2> "$TMP/err-$store" &
  PID=$!
  for _ in $(seq 100); do grep -q 'API listening' "$TMP/out-$store" 2>/dev/null && break; sleep 0.1; done
  BASE=$(sed -n 's/^tributary: API listening on //p' "$TMP/out-$store")
  echo "${prefix}server $BASE (pid $PID, store $store), $(nproc) cores, ${SECS}s per run"
  for c in ${CONC:-16 64}; do
    echo -n "$prefix"; "$BIN/examples/api_load" "$BASE" $APP $SECRET read "$c" "$SECS"
  done
  for c in ${CONC:-16 64}; do
    echo -n "$prefix"; "$BIN/examples/api_load" "$BASE" $APP $SECRET write "$c" "$SECS"
  done
  echo "${prefix}server peak RSS: $(grep VmHWM /proc/$PID/status | awk '{print $2, $3}')"
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
done

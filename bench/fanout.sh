#!/usr/bin/env bash
# Fan-out benchmark, tributary beside nginx + libnginx-mod-rtmp (Debian's packages) in one
# run: one ~1 Mb/s H.264+AAC stream published in real time, N players over RTMP (both
# servers) and HTTP-FLV (tributary; nginx-rtmp has no HTTP-FLV), the server's CPU per
# player and publish→play latency measured by examples/fanout.rs; then WebRTC viewers
# (WHEP, examples/whep_load.rs in tributary-rtc) of the same clip beside the same number
# of RTMP players. Prints one line per run.
#   N_LIST="50 200 500" WHEP_LIST="20 100" SECS=10 bench/fanout.sh
# TRIBUTARY_BIN=path runs another build of the server (to compare two builds).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --bench
cargo build --release --locked -q -p tributary --bin tributary --example fanout
cargo build --release --locked -q -p tributary-rtc --example whep_load
BIN="${CARGO_TARGET_DIR:-target}/release"
SECS="${SECS:-10}"
N_LIST="${N_LIST:-50 200 500}"
WHEP_LIST="${WHEP_LIST:-20 100}"
TMP=$(mktemp -d)
trap 'kill $TPID $NPID 2>/dev/null || true; rm -rf "$TMP"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RT=$(free_port); HT=$(free_port); NP=$(free_port)

# The clip: 640x360 30 fps, ~900 kb/s video + 64 kb/s AAC, 2 s GOP, 20 s (looped).
ffmpeg -v error -f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine=frequency=440:sample_rate=44100 \
  -t 20 -c:v libx264 -preset veryfast -b:v 900k -maxrate 1M -bufsize 1M -g 60 -c:a aac -b:a 64k \
  -f flv "$TMP/clip.flv"

# Every load client is on 127.0.0.1: lift the per-address caps (WebRTC sessions, RTMP
# and HTTP connections).
printf '[live]\nrtc_sessions_per_ip = 100000\n[limits]\nrtmp_connections_per_ip = 100000\nhttp_connections_per_ip = 100000\nhttp_connections = 100000\n' > "$TMP/tributary.toml"
RUST_LOG=warn "${TRIBUTARY_BIN:-$BIN/tributary}" serve --config "$TMP/tributary.toml" --open-publish --rtc-udp 127.0.0.1:0 --rtmp 127.0.0.1:$RT --http 127.0.0.1:$HT \
  --data "$TMP/data" --app 1:benchsecret > "$TMP/t.out" 2> "$TMP/t.err" &
TPID=$!

cat > "$TMP/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/nginx.err warn;
events { worker_connections 8192; }
rtmp { server { listen 127.0.0.1:$NP; chunk_size 4096; application app { live on; } } }
CONF
nginx -c "$TMP/nginx.conf" -p "$TMP" &
NPID=$!
for _ in $(seq 100); do grep -q 'API listening' "$TMP/t.out" 2>/dev/null && break; sleep 0.1; done
sleep 0.5
ulimit -n 65536 2>/dev/null || true
echo "$(nproc) cores; tributary pid $TPID, nginx-rtmp pid $NPID (1 worker); ${SECS}s per run"
for n in $N_LIST; do
  echo -n "tributary rtmp: "
  "$BIN/examples/fanout" --rtmp rtmp://127.0.0.1:$RT/1 --stream r$n --file "$TMP/clip.flv" --players $n --mode rtmp --pid $TPID --secs $SECS
  echo -n "nginx-rtmp rtmp: "
  "$BIN/examples/fanout" --rtmp rtmp://127.0.0.1:$NP/app --stream r$n --file "$TMP/clip.flv" --players $n --mode rtmp --pid $NPID --secs $SECS
  echo -n "tributary http-flv: "
  "$BIN/examples/fanout" --rtmp rtmp://127.0.0.1:$RT/1 --http http://127.0.0.1:$HT/1 --stream f$n --file "$TMP/clip.flv" --players $n --mode flv --pid $TPID --secs $SECS
done
for n in $WHEP_LIST; do
  # WHEP viewers of a looped publish (its AAC reaches them through one Opus bridge).
  ffmpeg -v error -re -stream_loop -1 -i "$TMP/clip.flv" -c copy -f flv rtmp://127.0.0.1:$RT/1/w$n &
  FPID=$!
  sleep 2
  echo -n "tributary whep: "
  "$BIN/examples/whep_load" --url http://127.0.0.1:$HT/whep/1/w$n --viewers $n --pid $TPID --secs $SECS
  kill $FPID 2>/dev/null || true
  echo -n "tributary rtmp (same n): "
  "$BIN/examples/fanout" --rtmp rtmp://127.0.0.1:$RT/1 --stream x$n --file "$TMP/clip.flv" --players $n --mode rtmp --pid $TPID --secs $SECS
done
echo "tributary peak RSS: $(grep VmHWM /proc/$TPID/status | awk '{print $2, $3}')"

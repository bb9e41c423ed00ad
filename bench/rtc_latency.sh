#!/usr/bin/env bash
# Glass-to-glass latency on loopback: WHEP beside HTTP-FLV and HLS, and WHEP through a
# mix (see bench/rtc_latency.py). Numbers go to BENCHMARKS.md by hand.
#   SECS=20 bench/rtc_latency.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --bench
cargo build --release --locked -q -p tributary --bin tributary
exec "${TRIBUTARY_TOOLS:-/var/tmp/tributary-tools}/venv/bin/python" bench/rtc_latency.py \
  "${CARGO_TARGET_DIR:-target}/release/tributary" "${SECS:-20}"

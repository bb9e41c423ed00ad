#!/usr/bin/env bash
# Mixing benchmark (see bench/mix.py): tributary's mixer beside nginx-rtmp + an equivalent
# ffmpeg process, in one run. Numbers go to BENCHMARKS.md by hand.
#   SECS=20 CAP_LIST="1 2 3 4" ROOMS_LIST="50 100" PARTS="j1 cap audio" bench/mix.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --bench
cargo build --release --locked -q -p tributary --bin tributary
exec python3 bench/mix.py "${CARGO_TARGET_DIR:-target}/release/tributary"

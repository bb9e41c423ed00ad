#!/usr/bin/env bash
# Runs the server on embedded defaults (API on 127.0.0.1:8080, data in ./data).
# Extra arguments go to `tributary serve`, e.g. `scripts/run.sh --http 0.0.0.0:8080`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --release --locked -p tributary -- serve "$@"

#!/usr/bin/env bash
# Soak (not a test): 30 minutes of churn against a release build, then kill -9 under load.
# MINUTES and PLAYERS override the length and the player count. See bench/soak.py.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked -p tributary
TARGET="${CARGO_TARGET_DIR:-target}"
exec python3 bench/soak.py "$TARGET/release/tributary"

#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (the integration
# tests start the real binary on ephemeral loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo test --locked --workspace

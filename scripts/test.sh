#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (the integration
# tests start the real binary on ephemeral loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
# The fuzz targets (their own workspace) must keep compiling; running them is `cargo fuzz`.
cargo check --locked --manifest-path fuzz/Cargo.toml --bins
cargo test --locked --workspace

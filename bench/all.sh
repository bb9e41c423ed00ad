#!/usr/bin/env bash
# Every side-by-side benchmark in one run, and one table at the end (see bench/all.py).
#   bench/all.sh                  # the full runs (about 25 minutes on 2 cores)
#   QUICK=1 bench/all.sh          # a first look in about 4 minutes
#   PARTS="fanout" bench/all.sh   # some parts only: fanout, mix, api
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --bench
exec python3 bench/all.py

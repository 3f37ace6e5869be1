#!/usr/bin/env bash
# The end-to-end demo: Rust builds a small scientific dataset and writes it in-band to a .pkl
# file and out-of-band to a pickle plus buffer files; then plain pickle + numpy load both.
set -euo pipefail
cd "$(dirname "$0")/.."
NDPICKLE_SKIP_NUMPY1=1 NDPICKLE_SKIP_TEST_BUILDS=1 scripts/setup.sh
out=${1:-target/demo}
target/release/ndpickle demo "$out"
.venv/bin/python scripts/demo_load.py "$out"

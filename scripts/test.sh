#!/usr/bin/env bash
# Installs what the tests need and runs every test: Rust (fmt, clippy, rustdoc, unit,
# integration, doc tests) and Python (pytest under numpy 2.x, and the numpy-1 suites under numpy 1.26).
# Slow runs (fuzzing, benchmarks) have their own commands in the README.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

say() { printf '\n==> %s\n' "$*"; }

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
say "cargo doc -D warnings (every link in the API docs resolves, none to private items)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
say "cargo test (unit, integration, doc tests)"
cargo test --workspace -- --quiet

cases=$(mktemp -d)
trap 'rm -rf "$cases"' EXIT
export NDPICKLE_CASES_DIR=$cases
say "pytest under numpy 2.x (.venv)"
.venv/bin/python -m pytest -q -p no:cacheprovider tests
say "pytest of the numpy-1 suites under numpy 1.26 (.venv-np1)"
.venv-np1/bin/python -m pytest -q -p no:cacheprovider tests/test_writer_numpy.py tests/test_serde.py

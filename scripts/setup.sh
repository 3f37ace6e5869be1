#!/usr/bin/env bash
# Installs what the demo and the tests need, inside the repository: a virtualenv `.venv`
# (numpy 2.x, pyarrow, pytest, ...) and `.venv-np1` (numpy 1.26), then builds the Rust
# workspace. Needs only a Rust toolchain and CPython 3.11 with pip. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

make_venv() {
    local dir=$1 req=$2
    if [ ! -x "$dir/bin/python" ]; then
        python3 -m venv "$dir"
    fi
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
}

make_venv .venv requirements/test.txt
make_venv .venv requirements/ray.txt
# The Python package (PyO3 extension built by maturin through pyproject.toml).
.venv/bin/python -m pip install --quiet --disable-pip-version-check .
if [ "${NDPICKLE_SKIP_NUMPY1:-0}" != 1 ]; then
    make_venv .venv-np1 requirements/numpy1.txt
fi
cargo build --quiet --release --workspace

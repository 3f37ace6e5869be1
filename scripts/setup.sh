#!/usr/bin/env bash
# Installs what the demo and the tests need, inside the repository: a virtualenv `.venv`
# (numpy 2.x, pyarrow, pytest, ...) and `.venv-np1` (numpy 1.26), then builds the Rust
# workspace. Needs only a Rust toolchain and CPython 3.11 with pip. Safe to run again: a step
# whose inputs did not change since it last succeeded is skipped (and says so).
#
#   NDPICKLE_SKIP_NUMPY1=1  skip the numpy-1 environment
#   NDPICKLE_SKIP_TEST_BUILDS=1  skip building the Rust examples only the tests run (the demo)
#   NDPICKLE_SETUP_QUIET=1  pip and cargo without their progress output
set -euo pipefail
cd "$(dirname "$0")/.."

quiet=()
if [ "${NDPICKLE_SETUP_QUIET:-0}" = 1 ]; then
    quiet=(--quiet)
fi
pip_flags=(--disable-pip-version-check "${quiet[@]}")
# pyo3's build script reruns when these change: one setting for every cargo build here (and
# tests/test_zero_copy_ext.py uses the same), so the builds do not undo each other.
export PYO3_BUILD_EXTENSION_MODULE=1
export PYO3_PYTHON="$PWD/.venv/bin/python"

steps=3
if [ "${NDPICKLE_SKIP_NUMPY1:-0}" != 1 ]; then
    steps=$((steps + 1))
fi
if [ "${NDPICKLE_SKIP_TEST_BUILDS:-0}" != 1 ]; then
    steps=$((steps + 1))
fi
step=0
say() {
    step=$((step + 1))
    printf '\n==> [%d/%d] %s\n' "$step" "$steps" "$*"
}

# A digest of files (the inputs of a step), to skip steps whose inputs did not change.
digest() {
    find "$@" -type f \
        -not -path '*/target/*' -not -path '*/fuzz/*' -not -path '*/__pycache__/*' \
        -not -name '*.so' -not -name '*.pyc' -print0 \
        | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

# Runs "$@" unless the stamp file $1 holds the digest $2; records the digest on success.
unless_done() {
    local stamp=$1 sum=$2
    shift 2
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
        echo "    up to date (inputs unchanged since the last successful run)"
        return 0
    fi
    "$@"
    echo "$sum" >"$stamp"
}

make_venv() {
    local dir=$1
    shift
    if [ ! -x "$dir/bin/python" ]; then
        echo "    creating $dir"
        python3 -m venv "$dir"
    fi
    local reqs=()
    for r in "$@"; do reqs+=(-r "$r"); done
    unless_done "$dir/.ndpickle-requirements" "$(digest "$@")" \
        "$dir/bin/python" -m pip install "${pip_flags[@]}" "${reqs[@]}"
}

say "Python environment .venv (numpy 2.x, pyarrow, pytest, Dask, Ray, ...)"
make_venv .venv requirements/test.txt requirements/ray.txt

say "the ndpickle package into .venv (maturin builds the Rust extension in release mode)"
unless_done .venv/.ndpickle-package \
    "$(digest pyproject.toml Cargo.toml Cargo.lock python crates/ndpickle crates/ndpickle-py)" \
    .venv/bin/python -m pip install "${pip_flags[@]}" --no-deps --force-reinstall .
# Its dependencies (numpy) come from the requirements above; check that they are there.
.venv/bin/python -c "import ndpickle, numpy; print('    ndpickle', ndpickle.__version__, 'with numpy', numpy.__version__)"

if [ "${NDPICKLE_SKIP_NUMPY1:-0}" != 1 ]; then
    say "Python environment .venv-np1 (numpy 1.26, for the numpy-1 compatibility suites)"
    make_venv .venv-np1 requirements/numpy1.txt
fi

say "the Rust workspace (release; the extension crate is built by maturin and step 5)"
# ndpickle-py alone (below) unifies features differently from the whole workspace: building
# it both ways would rebuild it on every run.
cargo build "${quiet[@]}" --release --workspace --exclude ndpickle-py

if [ "${NDPICKLE_SKIP_TEST_BUILDS:-0}" != 1 ]; then
    say "the Rust examples the Python tests run (writers of test cases, readers of fixtures)"
    # The same profiles, features and environment as tests/conftest.py and the tests that
    # call cargo, so that the tests find them built instead of compiling for minutes unseen.
    cargo build "${quiet[@]}" --release -p ndpickle --examples
    cargo build "${quiet[@]}" --release -p ndpickle --features arrow --example arrow_cases
    cargo build "${quiet[@]}" --release -p ndpickle --features serde --example serde_cases
    cargo build "${quiet[@]}" -p ndpickle --example codec_frames --example read_check
    cargo build "${quiet[@]}" --release -p ndpickle-py --example zero_copy_ext
fi
printf '\n==> setup done\n'

"""Rust → Python zero copy: `crates/ndpickle-py/examples/zero_copy_ext.rs` is an extension
module whose `Field` pyclass holds an `Arc<ndarray::ArrayD<f64>>` and implements
`__reduce_ex__` with `ndpickle_py::reduce_array`. Built here with cargo, imported from a
temporary directory.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def ext(tmp_path_factory):
    if shutil.which("cargo") is None:
        pytest.skip("needs a Rust toolchain")
    env = dict(os.environ, PYO3_BUILD_EXTENSION_MODULE="1", PYO3_PYTHON=sys.executable)
    r = subprocess.run(
        ["cargo", "build", "--release", "--quiet", "-p", "ndpickle-py", "--example",
         "zero_copy_ext", "--message-format=json"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )
    lib = None
    for line in r.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "zero_copy_ext":
            lib = next(f for f in msg["filenames"] if f.endswith((".so", ".dylib", ".dll")))
    assert lib, r.stdout[-2000:]
    dest = tmp_path_factory.mktemp("ext") / ("zero_copy_ext" + importlib.machinery.EXTENSION_SUFFIXES[0])
    shutil.copy(lib, dest)
    spec = importlib.util.spec_from_file_location("zero_copy_ext", dest)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules["zero_copy_ext"] = mod
    return mod


def expected(rows, cols):
    return np.arange(rows * cols, dtype=np.float64).reshape(rows, cols)


@pytest.mark.parametrize("layout", ["c", "f", "reversed"])
def test_protocol5_buffer_is_the_rust_allocation(ext, layout):
    field = ext.Field(30, 40, layout)
    buffers = []
    data = pickle.dumps(field, protocol=5, buffer_callback=buffers.append)
    assert len(buffers) == 1
    raw = buffers[0].raw()
    assert raw.readonly
    assert raw.nbytes == 30 * 40 * 8
    assert np.frombuffer(raw, np.uint8).ctypes.data == field.allocation_address
    assert len(data) < 300  # nothing but the description in-band
    out = pickle.loads(data, buffers=buffers)
    assert type(out) is np.ndarray
    np.testing.assert_array_equal(out, expected(30, 40))
    # The loaded array views the Rust memory itself.
    assert np.shares_memory(out, np.frombuffer(raw, np.uint8))
    if layout == "f":
        assert out.flags.f_contiguous


def test_buffer_keeps_the_rust_array_alive(ext):
    field = ext.Field(10, 10)
    buffers = []
    data = pickle.dumps(field, protocol=5, buffer_callback=buffers.append)
    addr = field.allocation_address
    del field  # the PickleBuffer holds an Arc of the array
    out = pickle.loads(data, buffers=buffers)
    assert out.ctypes.data == addr
    np.testing.assert_array_equal(out, expected(10, 10))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_in_band_with_numpy_only(ext, protocol):
    for layout in ["c", "f", "reversed"]:
        data = pickle.dumps(ext.Field(3, 4, layout), protocol=protocol)
        # A fresh interpreter with numpy only (no ndpickle, no extension) loads it.
        code = (
            "import pickle, sys, numpy as np; a = pickle.loads(sys.stdin.buffer.read()); "
            "assert type(a) is np.ndarray; "
            "np.testing.assert_array_equal(a, np.arange(12.0).reshape(3, 4)); "
            "assert 'ndpickle' not in sys.modules; print('ok')"
        )
        r = subprocess.run(
            [sys.executable, "-I", "-c", code], input=data, capture_output=True, check=True
        )
        assert r.stdout.strip() == b"ok"

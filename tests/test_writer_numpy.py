"""Every stream the Rust writer produces loads with plain `pickle` + numpy.

The cases (dtype x layout x numpy form x protocol, in-band and out-of-band) are written by
`crates/ndpickle/examples/write_cases.rs`. This file runs under numpy 2.x and, for the
portable and numpy-1 forms, under numpy 1.26 too (`.ci/run` does both).
"""

from __future__ import annotations

import io
import pickle
import pickletools
import warnings

import numpy as np

from conftest import writer_cases_dir, writer_manifest

NUMPY2 = int(np.__version__.split(".")[0]) >= 2


def _selected() -> list[dict]:
    rows = writer_manifest()
    if not NUMPY2:
        # numpy 1.x cannot import numpy._core: the numpy-2 form is for numpy 2 only.
        rows = [r for r in rows if r["form"] != "v2"]
    return rows


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        rows = _selected()
        metafunc.parametrize("case", rows, ids=[r["stem"] for r in rows])
    if "oob_case" in metafunc.fixturenames:
        # Out-of-band buffers exist from protocol 5 on.
        rows = [r for r in _selected() if r["protocol"] == 5]
        metafunc.parametrize("oob_case", rows, ids=[r["stem"] for r in rows])


def make_dtype(spec):
    """numpy dtype from the manifest's JSON spec."""
    if isinstance(spec, str):
        return np.dtype(spec)
    if "ml_dtypes" in spec:
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, spec["ml_dtypes"]))
    if "subarray" in spec:
        base, shape = spec["subarray"]
        return np.dtype((make_dtype(base), tuple(shape)))
    return np.dtype(
        {
            "names": spec["names"],
            "formats": [make_dtype(f) for f in spec["formats"]],
            "offsets": spec["offsets"],
            "itemsize": spec["itemsize"],
        },
        align=spec["aligned"],
    )


def expected_array(spec) -> np.ndarray:
    dt = make_dtype(spec["dtype"])
    raw = (writer_cases_dir() / spec["file"]).read_bytes()
    return np.frombuffer(raw, dtype=dt).reshape(spec["shape"])


def loads_checked(case, data: bytes, buffers=None):
    """`pickle.loads` with every warning an error, except numpy 2's own deprecation of
    `numpy.core.numeric`, which numpy-1-form protocol-5 streams name (as numpy 1.x's own
    pickles do); that one must appear exactly there and nowhere else."""
    pickletools.dis(data, out=io.StringIO())
    expect_core_warning = NUMPY2 and case["form"] == "v1" and case["protocol"] == 5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        obj = pickle.loads(data, buffers=buffers)
    unexpected = [w for w in caught if not (expect_core_warning and issubclass(w.category, DeprecationWarning) and "numpy.core.numeric" in str(w.message))]
    assert not unexpected, [str(w.message) for w in unexpected]
    return obj


def check_array(case, got, spec, buffers=None):
    want = expected_array(spec)
    assert isinstance(got, np.ndarray), type(got)
    native_copy = case["form"] != "portable" and case["protocol"] < 5
    if native_copy and not want.dtype.isnative:
        # numpy's own `_reconstruct` form loads non-native data swapped to native order.
        want = want.astype(want.dtype.newbyteorder("="))
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape
    assert got.tobytes() == want.tobytes()
    # Broadcasts (a zero stride on an axis longer than one) load read-only, as
    # numpy.broadcast_to makes them: one write would change a whole row.
    broadcast = any(s == 0 and n > 1 for s, n in zip(got.strides, got.shape))
    assert got.flags.writeable == (native_copy or not (case["readonly"] or broadcast))
    if buffers and got.size and got.flags.c_contiguous | got.flags.f_contiguous:
        # Out-of-band contiguous arrays view the buffer they were given: no copy.
        assert any(np.shares_memory(got, np.frombuffer(b, np.uint8)) for b in buffers)


def check_tree(case, got, node, arrays):
    if isinstance(node, str) and node.startswith("@"):
        check_array(case, got, arrays[int(node[1:])])
    elif isinstance(node, dict) and len(node) == 1 and next(iter(node)) in {"tuple", "complex", "bytes", "set", "frozenset", "scalar", "dtype"}:
        kind, v = next(iter(node.items()))
        if kind == "tuple":
            assert isinstance(got, tuple) and len(got) == len(v)
            for g, n in zip(got, v):
                check_tree(case, g, n, arrays)
        elif kind == "complex":
            assert got == complex(*v)
        elif kind == "bytes":
            assert got == bytes.fromhex(v)
        elif kind == "set":
            assert got == set(v) and isinstance(got, set)
        elif kind == "frozenset":
            assert got == frozenset(v) and isinstance(got, frozenset)
        elif kind == "scalar":
            assert isinstance(got, np.generic) and got.dtype == np.dtype(v[0]) and got == v[1]
        elif kind == "dtype":
            assert got == np.dtype(v)
    elif isinstance(node, dict):
        assert isinstance(got, dict) and list(got) == list(node)
        for k in node:
            check_tree(case, got[k], node[k], arrays)
    elif isinstance(node, list):
        assert isinstance(got, list) and len(got) == len(node)
        for g, n in zip(got, node):
            check_tree(case, g, n, arrays)
    elif node is None or isinstance(node, bool):
        assert got is node
    else:
        if isinstance(node, str) and isinstance(got, int):
            node = int(node)
        assert got == node and type(got) is type(node)


def check(case, obj, buffers=None):
    exp = case["expected"]
    if case["case"] == "dict_mixed":
        # The same array met twice is one object after loading (shared structure).
        assert obj["nested"][0] is obj["labels"]
    if exp["kind"] == "array":
        check_array(case, obj, exp, buffers)
    else:
        check_tree(case, obj, exp["tree"], exp["arrays"])


def test_in_band(case):
    data = (writer_cases_dir() / f"{case['stem']}.pkl").read_bytes()
    check(case, loads_checked(case, data))


def test_out_of_band(oob_case):
    case = oob_case
    d = writer_cases_dir()
    data = (d / f"{case['stem']}.oob.pkl").read_bytes()
    buffers = [bytearray((d / f"{case['stem']}.oob.{i}.buf").read_bytes()) for i in range(case["buffers"])]
    check(case, loads_checked(case, data, buffers), buffers)


def test_aligned_file_loads_with_plain_pickle():
    path = writer_cases_dir() / "aligned.pkl"
    with open(path, "rb") as f, warnings.catch_warnings():
        warnings.simplefilter("error")
        a, text, b, c = pickle.load(f)
    raw = path.read_bytes()
    assert text == "between"
    assert np.array_equal(a, np.arange(2100, dtype=np.float64).reshape(300, 7))
    assert np.array_equal(b, (np.arange(1001) % 256).astype(np.uint8))
    assert np.array_equal(c, np.add.outer(np.arange(5), np.arange(3)).astype(np.int16).T)
    for arr in (a, b, c):
        data = arr.tobytes(order="A")
        at = raw.find(data)
        assert at > 0 and at % 64 == 0, (arr.dtype, at)

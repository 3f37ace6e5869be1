"""Every Arrow stream the Rust writer produces loads with plain `pickle` + pyarrow.

The cases are written by `crates/ndpickle/examples/arrow_cases.rs`: each arrow-rs value
pickled in-band (protocol 5, 64-byte aligned, and protocol 4) and out-of-band, plus the same
value written by arrow-rs's IPC file writer, which pyarrow reads with its own IPC reader and
which is the expected value here.
"""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pytest

from conftest import arrow_cases_dir, arrow_manifest

VARIANTS = ("pkl", "p4.pkl", "oob")


def pytest_generate_tests(metafunc):
    rows = arrow_manifest()
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", rows, ids=[r["stem"] for r in rows])
    if "variant" in metafunc.fixturenames:
        metafunc.parametrize("variant", VARIANTS)
    if "big_slice" in metafunc.fixturenames:
        big = [r for r in rows if r["slice_of"] and r["stem"].startswith("big_")]
        metafunc.parametrize("big_slice", big, ids=[r["stem"] for r in big])


def load(stem: str, variant: str):
    """Unpickles one case; returns the object and the out-of-band buffers given."""
    d = arrow_cases_dir()
    if variant != "oob":
        return pickle.loads((d / f"{stem}.{variant}").read_bytes()), []
    buffers = []
    while (d / f"{stem}.oob.{len(buffers)}.buf").exists():
        buffers.append(bytearray((d / f"{stem}.oob.{len(buffers)}.buf").read_bytes()))
    return pickle.loads((d / f"{stem}.oob.pkl").read_bytes(), buffers=buffers), buffers


def expected(row: dict):
    reader = pa.ipc.open_file(arrow_cases_dir() / f"{row['stem']}.arrow")
    kind = row["kind"]
    if kind in ("array", "numpy"):
        arr = reader.get_batch(0).column(0)
        if kind == "array":
            return arr
        if pa.types.is_fixed_size_list(arr.type):
            return arr.flatten().to_numpy().reshape(len(arr), arr.type.list_size)
        return arr.to_numpy(zero_copy_only=False)
    if kind == "batch":
        return reader.get_batch(0)
    if kind == "numpy_batch":
        b = reader.get_batch(0)
        return {n: b.column(n).to_numpy(zero_copy_only=False) for n in b.schema.names}
    table = reader.read_all()
    return table.column("x") if kind == "chunked" else table


def all_buffers(obj):
    """Every buffer of a pyarrow array, batch, table or chunked array."""
    if isinstance(obj, pa.ChunkedArray):
        return [b for c in obj.chunks for b in all_buffers(c)]
    if isinstance(obj, (pa.RecordBatch, pa.Table)):
        return [b for c in obj.columns for b in all_buffers(c)]
    out = list(obj.buffers())
    if isinstance(obj, pa.DictionaryArray):
        out += all_buffers(obj.dictionary)
    return out


def test_loads_equal(case, variant):
    got, buffers = load(case["stem"], variant)
    exp = expected(case)
    kind = case["kind"]
    if kind == "numpy":
        assert isinstance(got, np.ndarray)
        assert got.dtype == exp.dtype and got.shape == exp.shape
        assert np.array_equal(got, exp)
        return
    if kind == "numpy_batch":
        assert got.keys() == exp.keys()
        for k in exp:
            assert got[k].dtype == exp[k].dtype and np.array_equal(got[k], exp[k]), k
        return
    assert type(got) is type(exp)
    if kind == "array":
        got.validate(full=True)
        assert got.type == exp.type
        assert got.equals(exp)
        assert got.null_count == exp.null_count
    elif kind == "chunked":
        got.validate(full=True)
        assert got.type == exp.type and got.num_chunks == exp.num_chunks
        assert got.equals(exp)
    else:
        got.validate(full=True)
        assert got.schema.equals(exp.schema, check_metadata=True)
        assert got.equals(exp, check_metadata=True)
        if kind == "table":
            assert [b.num_rows for b in got.to_batches()] == [
                b.num_rows for b in exp.to_batches()
            ]


def test_numpy_form_needs_no_pyarrow(case):
    if case["kind"].startswith("numpy"):
        assert b"pyarrow" not in (arrow_cases_dir() / f"{case['stem']}.pkl").read_bytes()


def test_out_of_band_buffers_are_views(case):
    """Out-of-band loading copies nothing: every buffer lies in the memory handed in."""
    if case["kind"].startswith("numpy"):
        return
    got, buffers = load(case["stem"], "oob")
    assert len(buffers) == case["buffers"]
    spans = []
    for b in buffers:
        pb = pa.py_buffer(b)
        spans.append((pb.address, pb.address + pb.size))
    for buf in all_buffers(got):
        if buf is None or buf.size == 0:
            continue
        assert any(lo <= buf.address and buf.address + buf.size <= hi for lo, hi in spans)


def pyarrow_own_size(arr) -> int:
    """Bytes of pyarrow's own protocol-5 pickle of `arr`, out-of-band buffers included."""
    raws = []
    data = pickle.dumps(arr, protocol=5, buffer_callback=raws.append)
    return len(data) + sum(r.raw().nbytes for r in raws)


def test_sliced_arrays_ship_less_than_pyarrow(big_slice):
    parent, _ = load(big_slice["slice_of"]["parent"], "oob")
    s = big_slice["slice_of"]
    sliced = parent.slice(s["offset"], s["length"])
    ours = big_slice["oob_total"]
    theirs = pyarrow_own_size(sliced)
    got, _ = load(big_slice["stem"], "oob")
    assert got.equals(sliced)
    assert ours < theirs, (ours, theirs)
    # Whole arrays cost about what pyarrow's own pickle costs.
    parent_row = next(r for r in arrow_manifest() if r["stem"] == s["parent"])
    assert parent_row["oob_total"] <= pyarrow_own_size(parent) * 1.01 + 512


def test_streams_name_public_reconstructors_only():
    # Public pyarrow reconstructors, never pyarrow.lib internals (protocol 3 and below are
    # refused with a clear error: tests/arrow_writer.rs).
    data = (arrow_cases_dir() / "struct.p4.pkl").read_bytes()
    assert b"from_buffers" in data and b"_restore_array" not in data


@pytest.mark.parametrize("stem", ["chunked_dict_shared"])
def test_shared_dictionary_travels_once(stem):
    got, _ = load(stem, "oob")
    d0, d1 = got.chunk(0).dictionary, got.chunk(1).dictionary
    # One dictionary object in the pickle: both chunks share its memory.
    assert [b.address for b in d0.buffers() if b] == [b.address for b in d1.buffers() if b]


def test_safe_loads_rebuilds_the_same_objects(case, variant):
    """`ndpickle.safe_loads` (nothing executed but allow-listed pyarrow constructors) gives
    what plain pickle gives, for every stream the Rust Arrow writer produces."""
    import ndpickle

    d = arrow_cases_dir()
    want, buffers = load(case["stem"], variant)
    if variant == "oob":
        got = ndpickle.safe_loads((d / f"{case['stem']}.oob.pkl").read_bytes(), buffers=buffers)
    else:
        got = ndpickle.safe_loads((d / f"{case['stem']}.{variant}").read_bytes())
    assert type(got) is type(want)
    if isinstance(want, np.ndarray):
        assert got.dtype == want.dtype and np.array_equal(got, want)
    elif isinstance(want, dict):
        assert got.keys() == want.keys()
        assert all(np.array_equal(got[k], want[k]) for k in want)
    else:
        assert got.equals(want)

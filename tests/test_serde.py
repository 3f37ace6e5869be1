"""serde structs from Rust through `pickle.loads`, and Python's pickles into serde structs.

Rust side: `crates/ndpickle/examples/serde_cases.rs` (feature `serde`). `write` pickles a
training checkpoint struct (arrays in C, Fortran, strided and shared layouts), a struct of
array views (broadcast, reversed, strided) and a list of enums, in-band at protocols 2-5 and
out-of-band; this file loads each with CPython's `pickle` and real numpy and compares with
values computed here from the same formulas. `read` loads pickles numpy itself wrote
(protocols 2-5, in-band and out-of-band, C / Fortran / strided / big-endian arrays) into the
Rust struct and prints it as JSON. Runs under numpy 2.x and 1.26.
"""

from __future__ import annotations

import json
import pickle
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import cargo_example

_WRITE_DIR: Path | None = None


def cases_dir() -> Path:
    """The Rust-written cases, generated once per session."""
    global _WRITE_DIR
    if _WRITE_DIR is None:
        out = Path(tempfile.mkdtemp(prefix="ndpickle-serde-"))
        cargo_example("serde_cases", "write", str(out), features=("serde",))
        _WRITE_DIR = out
    return _WRITE_DIR


def manifest() -> list[dict[str, Any]]:
    """One row per written file."""
    with open(cases_dir() / "manifest.jsonl") as f:
        return [json.loads(line) for line in f]


def load(row: dict[str, Any]) -> Any:
    """`pickle.loads` of one written file, with its out-of-band buffers."""
    d = cases_dir()
    bufs = [(d / b).read_bytes() for b in row["buffers"]]
    data = (d / row["file"]).read_bytes()
    return pickle.loads(data, buffers=bufs) if bufs else pickle.loads(data)


def weights() -> np.ndarray:
    """`weights[i, j] = i * 10 + j + 0.5`, float32, as the Rust side builds it."""
    i, j = np.meshgrid(np.arange(3), np.arange(4), indexing="ij")
    return (i * 10 + j + 0.5).astype(np.float32)


def expected_checkpoint() -> dict[str, Any]:
    """The checkpoint dict Python should see (arrays in C order)."""
    d = np.arange(3)
    return {
        "step": 2**64 - 1,
        "name": "run-é",
        "lr": 0.001,
        "tags": ["a", "b"],
        "shape": (3, 4),
        "optimizer": {"Adam": {"beta": 0.9}},
        "big": 2**128 - 1,
        "neg": -(2**127),
        "blob": b"\x00\x01\xff",
        "maybe": None,
        "weights": weights(),
        "bias": np.arange(4) * 0.25,
        "ids": np.arange(5, dtype=np.int64) * 1_000_000_007,
        "mask": (np.arange(2)[:, None, None] + d[None, None, :]) % 2 == 0,
        "layers": [
            {"name": "l0", "w": (np.arange(4).reshape(2, 2) - 2).astype(np.int32)},
            {"name": "l1", "w": np.zeros((0, 3), np.int32)},
        ],
        "params": {"alpha": 1.5, "beta": -2.0},
    }


def assert_same(got: Any, want: Any, path: str = "") -> None:
    """Deep equality with numpy arrays compared by dtype, shape and values."""
    if isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray), path
        assert got.dtype == want.dtype, path
        assert got.shape == want.shape, path
        np.testing.assert_array_equal(got, want, err_msg=path)
    elif isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), path
        for k in want:
            assert_same(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, (list, tuple)):
        assert type(got) is type(want) and len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{path}[{i}]")
    else:
        assert type(got) is type(want) and got == want, (path, got, want)


def rows(case: str) -> list[dict[str, Any]]:
    return [r for r in manifest() if r["case"] == case]


@pytest.mark.parametrize("layout", ["c", "f", "strided"])
def test_checkpoint_loads_as_dict_of_arrays(layout: str) -> None:
    found = rows(f"checkpoint_{layout}")
    assert len(found) == 5  # protocols 2-5 in-band, and out-of-band
    for row in found:
        got = load(row)
        assert_same(got, expected_checkpoint(), row["file"])
        if layout == "f" and row["file"].endswith(("p5.pkl", "oob.pkl")):
            # Fortran memory travels as it is: numpy rebuilds a Fortran array.
            assert got["weights"].flags.f_contiguous


def test_out_of_band_buffers_are_the_arrays() -> None:
    (row,) = [r for r in rows("checkpoint_c") if r["file"].endswith("oob.pkl")]
    # weights, bias, ids, mask, two layer arrays (the empty one too): one buffer each.
    assert len(row["buffers"]) == 6
    d = cases_dir()
    bufs = [bytearray((d / b).read_bytes()) for b in row["buffers"]]
    got = pickle.loads((d / row["file"]).read_bytes(), buffers=bufs)
    assert bufs[0] == got["weights"].tobytes()
    # numpy rebuilt the array over the supplied buffer: writing one changes the other.
    bufs[0][0:4] = np.float32(-7.0).tobytes()
    assert got["weights"][0, 0] == -7.0


def test_views_broadcast_reversed_strided() -> None:
    base = np.arange(15, dtype=np.float64).reshape(3, 5)
    row = np.arange(5) * 1.5
    cube = np.arange(4)[:, None, None] * 100 + np.arange(3)[None, :, None] * 10 + np.arange(6)
    want = {
        "broadcast": np.broadcast_to(row, (4, 5)),
        "reversed": base[::-1, ::-2],
        "strided": cube.astype(np.float64)[1::2, :, 1:5],
    }
    for r in rows("views"):
        got = load(r)
        assert_same(got, want, r["file"])
        if r["file"].endswith(("p5.pkl", "oob.pkl")):
            # The broadcast travels as one row with a zero stride.
            assert got["broadcast"].strides[0] == 0


def test_enums_externally_tagged() -> None:
    want = ["Sgd", {"Adam": {"beta": 0.5}}, {"Custom": ("x", 7)}]
    for r in rows("enums"):
        assert_same(load(r), want, r["file"])


def python_checkpoint(variant: str) -> dict[str, Any]:
    """A checkpoint as Python code would build it, arrays in the layout `variant` names."""
    c = expected_checkpoint()
    w = c["weights"]
    if variant == "fortran":
        c["weights"] = np.asfortranarray(w)
        c["layers"][0]["w"] = np.asfortranarray(c["layers"][0]["w"])
    elif variant == "strided":
        wide = np.repeat(w, 2, axis=1)
        c["weights"] = wide[:, ::2]
        c["bias"] = np.repeat(c["bias"], 3)[::3]
    elif variant == "bigendian":
        c["weights"] = w.astype(">f4")
        c["ids"] = c["ids"].astype(">i8")
        c["bias"] = c["bias"].astype(">f8")
    elif variant == "tuple_and_scalars":
        # Python-side conveniences the reader accepts: a tuple for a list, numpy scalars.
        c["tags"] = ("a", "b")
        c["lr"] = np.float64(0.001)
        c["params"] = {"alpha": np.float32(1.5), "beta": -2}
    return c


def test_python_pickles_read_into_the_struct(tmp_path: Path) -> None:
    variants = ["c", "fortran", "strided", "bigendian", "tuple_and_scalars"]
    for v in variants:
        obj = python_checkpoint(v)
        for proto in (2, 3, 4, 5):
            (tmp_path / f"{v}.p{proto}.pkl").write_bytes(pickle.dumps(obj, protocol=proto))
        bufs: list[pickle.PickleBuffer] = []
        data = pickle.dumps(obj, protocol=5, buffer_callback=bufs.append)
        (tmp_path / f"{v}.oob.pkl").write_bytes(data)
        for k, b in enumerate(bufs):
            (tmp_path / f"{v}.oob.{k}.buf").write_bytes(b.raw())
    # A wrong dtype: the error names the field.
    bad = expected_checkpoint()
    bad["weights"] = bad["weights"].astype(np.int64)
    (tmp_path / "bad_dtype.p5.pkl").write_bytes(pickle.dumps(bad, protocol=5))
    bad = expected_checkpoint()
    del bad["lr"]
    (tmp_path / "bad_missing.p5.pkl").write_bytes(pickle.dumps(bad, protocol=5))
    bad = expected_checkpoint()
    bad["layers"][1]["w"] = np.zeros((2, 2, 2), np.int32)
    (tmp_path / "bad_ndim.p5.pkl").write_bytes(pickle.dumps(bad, protocol=5))

    out = cargo_example("serde_cases", "read", str(tmp_path), features=("serde",)).stdout
    results = {r["file"]: r for r in map(json.loads, out.splitlines())}
    assert len(results) == len(variants) * 5 + 3

    want = expected_checkpoint()
    for name, r in results.items():
        if name.startswith("bad_"):
            continue
        assert r["ok"], (name, r.get("error"))
        got = r["value"]
        assert int(got["step"]) == want["step"] and int(got["big"]) == want["big"]
        assert int(got["neg"]) == want["neg"] and got["name"] == want["name"]
        assert got["optimizer"] == "Adam { beta: 0.9 }" and got["maybe"] is None
        assert got["tags"] == ["a", "b"] and got["lr"] == 0.001
        assert bytes(got["blob"]) == want["blob"] and got["ids"] == want["ids"].tolist()
        assert got["params"] == {"alpha": 1.5, "beta": -2.0}
        for key in ("weights", "bias", "mask"):
            a = want[key]
            assert got[key]["shape"] == list(a.shape), (name, key)
            assert got[key]["flat"] == a.ravel(order="C").tolist(), (name, key)
        assert got["layers"][0]["w"]["flat"] == want["layers"][0]["w"].ravel().tolist()
        assert got["layers"][1]["w"]["shape"] == [0, 3]
    assert not results["bad_dtype.p5.pkl"]["ok"]
    assert results["bad_dtype.p5.pkl"]["error"] == "weights: expected float32 array, got int64"
    assert results["bad_missing.p5.pkl"]["error"] == "missing field `lr`"
    assert results["bad_ndim.p5.pkl"]["error"] == "layers[1].w: expected 2-d int32 array, got 3-d"

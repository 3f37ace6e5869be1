#!/usr/bin/env python3
"""Rebuilds the hostile corpus under ``tests/hostile/``: pickles no safe reader may crash,
hang, over-allocate or answer with anything but ``ndpickle.DecodeError`` (or a valid,
usable object).

A case is ``<dir>/<name>.pkl`` plus optional out-of-band buffers ``<name>.buf0``,
``<name>.buf1``... and an optional ``<name>.json`` saying how to hand the buffers over
(``{"buffers": ["bytes" | "0d" | ...]}``, see ``tests/test_hostile_corpus.py``).

Directories (see SOURCES.md):

- ``picklescan/``, ``advisories/``, ``modelscan/``: data files copied from public scanner
  test suites (only with ``--checkout``; without it the committed copies are kept), and the
  pickle members of their zip/PyTorch archives, extracted here;
- ``scanner_classes/``: our own payloads for the classes the scanners' test code generates
  (fickling, modelscan, picklescan: code-execution globals in every protocol, memo/DUP
  expansion, nested and stacked pickles) — written by us, no code copied;
- ``numpy/``, ``pyarrow/``, ``builtins/``, ``compressed/``, ``vm/``: crafted cases for every
  global of the safe reader's allow-list and for the opcode machine itself;
- ``mutated/``: deterministic byte mutations of valid pickles of numpy/pyarrow objects.

Usage::

    python tests/hostile/generate.py                    # crafted + extracted cases
    python tests/hostile/generate.py --checkout picklescan=DIR --checkout modelscan=DIR

It needs numpy, pyarrow and ndpickle (to build the compressed frames) importable.
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import shutil
import struct
import sys
import zlib
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from pickleops import B, D, FS, G, NB, R, Raw, S, dumps  # noqa: E402

CRAFTED = ["numpy", "pyarrow", "builtins", "compressed", "vm", "scanner_classes", "mutated"]

# Data files copied from public repositories: destination dir -> (repository, [paths]).
COPIED: dict[str, tuple[str, list[str]]] = {
    "picklescan": ("mmaitre314/picklescan", ["tests/data/"]),
    "advisories": ("mmaitre314/picklescan", ["tests/data2/"]),
    "modelscan": ("protectai/modelscan", ["tests/data/"]),
}
COPY_SUFFIXES = (".pkl", ".pickle", ".pt", ".bin", ".zip", ".npy", ".npz", ".7z")
# Copies larger than this are left out (the corpus stays small).
COPY_MAX = 64 << 10


class Corpus:
    """Writes cases into one directory, refusing duplicate names."""

    def __init__(self, root: Path, name: str):
        self.dir = root / name
        self.names: set[str] = set()
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)

    def raw(
        self,
        name: str,
        data: bytes,
        buffers: Iterable[bytes] = (),
        kinds: Optional[list[str]] = None,
    ) -> None:
        """One case from its bytes."""
        if name in self.names:
            raise ValueError(f"duplicate case {self.dir.name}/{name}")
        self.names.add(name)
        (self.dir / f"{name}.pkl").write_bytes(data)
        for i, b in enumerate(buffers):
            (self.dir / f"{name}.buf{i}").write_bytes(bytes(b))
        if kinds:
            (self.dir / f"{name}.json").write_text(json.dumps({"buffers": kinds}) + "\n")

    def tree(
        self,
        name: str,
        tree: Any,
        protos: Iterable[int] = (2, 5),
        buffers: Iterable[bytes] = (),
        kinds: Optional[list[str]] = None,
    ) -> None:
        """One case per protocol from an assembler tree."""
        buffers = list(buffers)
        for p in protos:
            self.raw(f"{name}_p{p}", dumps(tree, p), buffers, kinds)


# ---------------------------------------------------------------------------------------
# Shorthands for the allow-listed globals.

NP_MA = "numpy._core.multiarray"
NP_MA1 = "numpy.core.multiarray"
NDARRAY = G("numpy", "ndarray")
DTYPE = G("numpy", "dtype")
RECON = G(NP_MA, "_reconstruct")
RECON1 = G(NP_MA1, "_reconstruct")
FROMBUF = G("numpy._core.numeric", "_frombuffer")
SCALAR = G(NP_MA, "scalar")


def dt(spec: Any, state: Any = None, align: Any = False, copy: Any = True) -> Any:
    """``numpy.dtype(spec, align, copy)`` with an optional ``BUILD`` state."""
    call = R(DTYPE, (spec, align, copy))
    return call if state is None else B(call, state)


def dstate(
    endian: str = "<",
    sub: Any = None,
    names: Any = None,
    fields: Any = None,
    elsize: Any = -1,
    alignment: Any = -1,
    flags: Any = 0,
    meta: Any = "absent",
    version: Any = 3,
) -> tuple:
    """A numpy dtype ``__setstate__`` tuple (version 3, or 4 with metadata)."""
    st = (version, endian, sub, names, fields, elsize, alignment, flags)
    return st if meta == "absent" else st + (meta,)


def recon(shape: Any, dtype: Any, data: Any, fortran: Any = False, head: tuple = (1,)) -> Any:
    """``_reconstruct(ndarray, (0,), b'b')`` + ``BUILD (1, shape, dtype, fortran, data)``."""
    return B(R(RECON, (NDARRAY, (0,), b"b")), head + (shape, dtype, fortran, data))


def portable(*args: Any) -> Any:
    """ndpickle's portable form ``numpy.ndarray(shape, dtype, buffer, offset, strides, order)``."""
    return R(NDARRAY, args)


def frombuf(*args: Any) -> Any:
    """``numpy._core.numeric._frombuffer(buf, dtype, shape, order[, axis_order])``."""
    return R(FROMBUF, args)


PA = "pyarrow.lib"


def pa(name: str, *args: Any) -> Any:
    """A call of the allow-listed pyarrow name ``name``."""
    return R(G(PA, name), args)


def pbuf(b: Any) -> Any:
    """``pyarrow.py_buffer(b)``."""
    return pa("py_buffer", b)


def _state_of(x: Any) -> Any:
    """The array state tuple inside a ``_restore_array`` call (children and dictionaries are
    written as bare states, as pyarrow writes them); anything else as it is."""
    if isinstance(x, R) and x.func == G(PA, "_restore_array"):
        return x.args[0]
    return x


def restore(typ: Any, length: Any, nulls: Any, offset: Any, bufs: Any, children: Any, *dic: Any) -> Any:
    """``pyarrow.lib._restore_array((type, length, null_count, offset, buffers, children, dict))``;
    children and the dictionary may be given as ``restore`` calls: their states are written."""
    if isinstance(children, list):
        children = [_state_of(c) for c in children]
    return pa("_restore_array", (typ, length, nulls, offset, bufs, children) + (tuple(_state_of(d) for d in dic) or (None,)))


def restore_raw(*state: Any) -> Any:
    """``_restore_array(state)`` with the state exactly as given."""
    return pa("_restore_array", state)


def alias(name: str) -> Any:
    """``pyarrow.lib.type_for_alias(name)``."""
    return pa("type_for_alias", name)


def i32(*v: int) -> bytes:
    return struct.pack(f"<{len(v)}i", *v)


def i64(*v: int) -> bytes:
    return struct.pack(f"<{len(v)}q", *v)


def i8(*v: int) -> bytes:
    return struct.pack(f"<{len(v)}b", *v)


# ---------------------------------------------------------------------------------------
# numpy


HUGE = [2**31, 2**32, 2**40, 2**62, 2**63 - 1, 2**63, 2**64, -1, -(2**63)]


def numpy_cases(c: Corpus) -> None:
    """Every numpy reconstructor with each argument malformed in the ways its type allows."""
    i4 = dt("<i4", dstate())
    f8 = dt("<f8", dstate())
    data12 = bytes(range(12))

    # --- dtype specs numpy refuses or that are degenerate -----------------------------
    specs: dict[str, Any] = {
        "S4294967296": "|S4294967296",
        "S2p63": "|S9223372036854775807",
        "S2p64": "|S18446744073709551616",
        "U2p31": "<U2147483648",
        "U2p62": "<U4611686018427387904",
        "V4294967296": "|V4294967296",
        "V2p63": "|V9223372036854775807",
        "V0": "|V0",
        "S0": "|S0",
        "U0": "<U0",
        "M8_huge_mult": "<M8[9223372036854775807s]",
        "M8_2p32_mult": "<M8[4294967296Y]",
        "M8_2p31_mult": "<M8[2147483648D]",
        "M8_bad_unit": "<M8[xyz]",
        "M8_zero_mult": "<M8[0s]",
        "m8_neg_mult": "<m8[-1D]",
        "M8_ratio": "<M8[7/3s]",
        "M8_unclosed": "<M8[s",
        "f7": "<f7",
        "empty": "",
        "object": "O",
        "object_be": ">O8",
        "i0": "<i0",
        "garbage": "\x00\xff<i4",
        "comma_list": "i4,O",
        "comma_list_ok": "i4,f8",
        "nested_brackets": "(2,3)i4",
        "neg_subarray_str": "(-1,)i4",
        "huge_subarray_str": "(4294967296,4294967296)i4",
        "a_ml": "bfloat16",
    }
    for name, spec in specs.items():
        c.tree(f"dtype_spec_{name}", dt(spec), protos=(0, 2, 5))
        c.tree(f"dtype_spec_{name}_in_ndarray", portable((1,), spec, bytearray(16)), protos=(2,))
        c.tree(f"dtype_spec_{name}_in_reconstruct", recon((1,), dt(spec), b"\0" * 16), protos=(2,))
    for name, spec in {
        "int": 4,
        "float": 1.5,
        "none": None,
        "bytes": b"<i4",
        "list_ints": [1, 2],
        "tuple_3": ("i4", (2,), 5),
        "tuple_neg_shape": ("i4", -3),
        "tuple_huge_shape": ("i4", (2**40, 2**40)),
        "tuple_bigint_shape": ("i4", (2**70,)),
        "tuple_float_shape": ("i4", (1.5,)),
        "tuple_empty": (),
        "tuple_object": ("O", (2,)),
        "tuple_v0_huge": ("V0", (2**62,)),
        "ml_unknown": G("ml_dtypes", "finfo"),
        "ml_bad": G("ml_dtypes", "no_such_type"),
        "global_other": G("numpy", "ndarray"),
        "dict_empty": {},
        "dict_no_formats": {"names": ["a"]},
        "dict_len_mismatch": {"names": ["a", "b"], "formats": ["i4"]},
        "dict_names_int": {"names": [1], "formats": ["i4"]},
        "dict_formats_none": {"names": ["a"], "formats": [None]},
        "dict_empty_struct": {"names": [], "formats": []},
        "dict_empty_struct_itemsize0": {"names": [], "formats": [], "itemsize": 0},
        "dict_itemsize_2p31": {"names": ["a"], "formats": ["u1"], "itemsize": 2**31},
        "dict_itemsize_2p63": {"names": ["a"], "formats": ["u1"], "itemsize": 2**63},
        "dict_itemsize_neg": {"names": ["a"], "formats": ["u1"], "itemsize": -1},
        "dict_itemsize_small": {"names": ["a"], "formats": ["i8"], "itemsize": 2},
        "dict_offset_2p31": {"names": ["a"], "formats": ["u1"], "offsets": [2**31]},
        "dict_offset_2p63": {"names": ["a"], "formats": ["u1"], "offsets": [2**63 - 1]},
        "dict_offset_neg": {"names": ["a"], "formats": ["u1"], "offsets": [-1]},
        "dict_offsets_short": {"names": ["a", "b"], "formats": ["u1", "u1"], "offsets": [0]},
        "dict_overlap": {"names": ["a", "b"], "formats": ["i8", "i8"], "offsets": [0, 4]},
        "dict_dup_names": {"names": ["a", "a"], "formats": ["u1", "u1"]},
        "dict_dup_titles": {"names": ["a", "b"], "formats": ["u1", "u1"], "titles": ["t", "t"]},
        "dict_title_is_name": {"names": ["a", "b"], "formats": ["u1", "u1"], "titles": ["b", None]},
        "dict_title_int": {"names": ["a"], "formats": ["u1"], "titles": [5]},
        "dict_object_field": {"names": ["a", "o"], "formats": ["i4", "O"]},
        "dict_object_deep": {"names": ["a"], "formats": [{"names": ["x"], "formats": [("O", (2,))]}]},
        "dict_object_overlap": {"names": ["a", "o"], "formats": ["i8", "O"], "offsets": [0, 0]},
        "dict_aligned_huge": {"names": ["a", "b"], "formats": ["u1", "<f8"], "aligned": True, "itemsize": 2**62},
        "dict_v0_field_huge_sub": {"names": ["a"], "formats": [("V0", (2**40, 2**40))]},
        "list_empty": [],
        "list_bad_item": [("a",)],
        "list_object": [("a", "i4"), ("b", "O")],
        "list_dup": [("a", "i4"), ("a", "i4")],
        "list_title_dup": [(("t", "a"), "i4"), (("t", "b"), "i4")],
        "list_name_empty": [("", "i4")],
        "list_sub_neg": [("a", "i4", (-1,))],
        "list_sub_huge": [("a", "i4", (2**40, 2**40))],
        "list_sub_int": [("a", "i4", 2**62)],
    }.items():
        c.tree(f"dtype_arg_{name}", dt(spec), protos=(2, 4))
        c.tree(f"dtype_arg_{name}_in_ndarray", portable((1,), spec, bytearray(16)), protos=(5,))
    # Sub-array nesting beyond numpy's 64 dimensions: (((i4, (1,)), (1,)) ...).
    for depth in (33, 65, 200):
        spec: Any = "u1"
        for _ in range(depth):
            spec = (spec, (1,))
        c.tree(f"dtype_subarray_nesting_{depth}", dt(spec), protos=(2, 5))
        c.tree(f"dtype_subarray_nesting_{depth}_array", portable((1,), spec, b"\0"), protos=(5,))
    c.tree("dtype_subarray_65_dims", dt(("u1", (1,) * 65)), protos=(2, 5))
    c.tree("array_65_dims", portable((1,) * 65, "u1", b"\0"), protos=(2, 5))
    c.tree("array_33_dims", portable((1,) * 33, "u1", b"\0"), protos=(2, 5))
    c.tree("array_64_dims", portable((1,) * 64, "u1", b"\0"), protos=(2, 5))
    c.tree("reconstruct_65_dims", recon((1,) * 65, dt("u1", dstate("|")), b"\0"), protos=(2,))
    # The array's dims plus the dtype's sub-array dims exceed 64.
    c.tree("array_plus_subarray_dims", portable((1,) * 40, ("u1", (1,) * 40), b"\0"), protos=(5,))

    # --- dtype BUILD states -------------------------------------------------------------
    states: dict[str, tuple[Any, Any]] = {
        "version5": ("<i4", dstate(version=5)),
        "version_neg": ("<i4", dstate(version=-1)),
        "version_huge": ("<i4", dstate(version=2**70)),
        "endian_x": ("<i4", dstate(endian="x")),
        "endian_empty": ("<i4", dstate(endian="")),
        "endian_long": ("<i4", dstate(endian="<<")),
        "endian_int": ("<i4", dstate(endian=1)),
        "elsize_huge_S": ("|S1", dstate("|", elsize=2**62)),
        "elsize_2p31_S": ("|S1", dstate("|", elsize=2**31)),
        "elsize_huge_V": ("|V1", dstate("|", elsize=2**63 - 1)),
        "elsize_bigint_V": ("|V1", dstate("|", elsize=2**80)),
        "elsize_0_V": ("|V8", dstate("|", elsize=0)),
        "elsize_U_not4": ("<U1", dstate(elsize=5)),
        "elsize_U_huge": ("<U1", dstate(elsize=2**62)),
        "elsize_neg2": ("|V4", dstate("|", elsize=-2)),
        "flags_huge": ("<i4", dstate(flags=2**70)),
        "flags_neg": ("<i4", dstate(flags=-(2**40))),
        "flags_object": ("|V8", dstate("|", flags=0x3F)),
        "alignment_huge": ("|V8", dstate("|", alignment=2**62)),
        "names_without_fields": ("|V8", dstate("|", names=("a",))),
        "fields_without_names": ("|V8", dstate("|", fields={"a": (i4, 0)})),
        "field_missing": ("|V8", dstate("|", names=("a", "b"), fields={"a": (i4, 0)}, elsize=8)),
        "field_not_dtype": ("|V8", dstate("|", names=("a",), fields={"a": ("i4", 0)}, elsize=8)),
        "field_offset_neg": ("|V8", dstate("|", names=("a",), fields={"a": (i4, -4)}, elsize=8)),
        "field_offset_2p31": ("|V8", dstate("|", names=("a",), fields={"a": (i4, 2**31)}, elsize=8)),
        "field_offset_huge": ("|V8", dstate("|", names=("a",), fields={"a": (i4, 2**63 - 2)}, elsize=-1)),
        "field_beyond_elsize": ("|V8", dstate("|", names=("a",), fields={"a": (f8, 4)}, elsize=8)),
        "field_object": ("|V8", dstate("|", names=("a",), fields={"a": (dt("|O", dstate("|")), 0)}, elsize=8)),
        "field_dup_title": ("|V8", dstate("|", names=("a", "b"), fields={"a": (i4, 0, "t"), "b": (i4, 4, "t")}, elsize=8)),
        "field_title_eq_name": ("|V8", dstate("|", names=("a", "b"), fields={"a": (i4, 0, "b"), "b": (i4, 4)}, elsize=8)),
        "field_tuple_4": ("|V8", dstate("|", names=("a",), fields={"a": (i4, 0, None, 1)}, elsize=8)),
        "names_dup": ("|V8", dstate("|", names=("a", "a"), fields={"a": (i4, 0)}, elsize=8)),
        "names_int": ("|V8", dstate("|", names=(1,), fields={1: (i4, 0)}, elsize=8)),
        "fields_on_int": ("<i4", dstate(names=("a",), fields={"a": (i4, 0)}, elsize=4)),
        "elsize_2p31_struct": ("|V8", dstate("|", names=("a",), fields={"a": (i4, 0)}, elsize=2**31)),
        "subarray_bad": ("|V8", dstate("|", sub=(i4,), elsize=8)),
        "subarray_not_dtype": ("|V8", dstate("|", sub=("i4", (2,)), elsize=8)),
        "subarray_size_lie": ("|V8", dstate("|", sub=(i4, (3,)), elsize=8)),
        "subarray_huge": ("|V8", dstate("|", sub=(i4, (2**40, 2**40)), elsize=8)),
        "subarray_neg": ("|V8", dstate("|", sub=(i4, (-2,)), elsize=-8)),
        "subarray_65": ("|V1", dstate("|", sub=(dt("u1", dstate("|")), (1,) * 65), elsize=1)),
        "subarray_object": ("|V16", dstate("|", sub=(dt("|O", dstate("|")), (2,)), elsize=16)),
        "old_v1_no_names": ("|V8", (1, "|", None, {"a": (i4, 0)}, 8, 1, 0)),
        "old_v1_names_int": ("|V8", (1, "|", None, {-1: 5, "a": (i4, 0)}, 8, 1, 0)),
        "old_v0": ("|V8", ("|", None, {"a": (i4, 0)}, 8, 1)),
        "state_10_items": ("<i4", (3, "<", None, None, None, -1, -1, 0, None, None)),
        "state_4_items": ("<i4", (3, "<", None, None)),
        "state_not_tuple": ("<i4", [3, "<", None, None, None, -1, -1, 0]),
        "state_str": ("<i4", "hello"),
        "meta_unit_overflow": ("<M8", dstate(meta=(None, (b"s", 2**62, 1, 1)), version=4)),
        "meta_unit_2p31": ("<M8", dstate(meta=(None, (b"s", 2**31, 1, 1)), version=4)),
        "meta_unit_zero": ("<M8", dstate(meta=(None, (b"D", 0, 1, 1)), version=4)),
        "meta_unit_neg": ("<M8", dstate(meta=(None, (b"D", -1, 1, 1)), version=4)),
        "meta_unit_bigint": ("<M8", dstate(meta=(None, (b"D", 2**80, 1, 1)), version=4)),
        "meta_unit_bad": ("<M8", dstate(meta=(None, (b"zz", 1, 1, 1)), version=4)),
        "meta_unit_str": ("<m8", dstate(meta=(None, ("as", 1, 1, 1)), version=4)),
        "meta_den": ("<M8", dstate(meta=(None, (b"s", 1, 3, 1)), version=4)),
        "meta_den_zero": ("<M8", dstate(meta=(None, (b"s", 1, 0, 1)), version=4)),
        "meta_short": ("<M8", dstate(meta=(None, (b"s",)), version=4)),
        "meta_not_tuple": ("<M8", dstate(meta=(None, "s"), version=4)),
        "meta_3": ("<M8", dstate(meta=(None, (b"s", 1, 1), 5), version=4)),
        "meta_on_int": ("<i8", dstate(meta=(None, (b"s", 1, 1, 1)), version=4)),
        "ml_swapped": (G("ml_dtypes", "bfloat16"), dstate(">")),
        "ml_elsize": (G("ml_dtypes", "bfloat16"), dstate(elsize=8)),
    }
    for name, (spec, state) in states.items():
        c.tree(f"dtype_state_{name}", dt(spec, state), protos=(2, 5))
        c.tree(f"dtype_state_{name}_in_reconstruct", recon((2,), dt(spec, state), b"\0" * 16), protos=(2,))
    # dtype call arity and argument types.
    c.tree("dtype_no_args", R(DTYPE, ()), protos=(2,))
    c.tree("dtype_4_args", R(DTYPE, ("<i4", False, True, 1)), protos=(2,))
    c.tree("dtype_kwargs_like_align", R(DTYPE, ("<i4", [1], {"a": 1})), protos=(2,))
    c.tree("dtype_align_struct_bigint", R(DTYPE, ([("a", "u1"), ("b", "<f8")], 2**70)), protos=(2,))

    # --- _reconstruct -------------------------------------------------------------------
    v0 = dt("|V0", dstate("|"))
    empty_struct = dt({"names": [], "formats": []})
    for name, tree in {
        "ok": recon((3,), i4, data12),
        "ok_fortran": recon((2, 2), dt("<i2", dstate()), b"\0" * 8, True),
        "type_not_ndarray": B(R(RECON, (DTYPE, (0,), b"b")), (1, (3,), i4, False, data12)),
        "type_int": B(R(RECON, (5, (0,), b"b")), (1, (3,), i4, False, data12)),
        "args_2": B(R(RECON, (NDARRAY, (0,))), (1, (3,), i4, False, data12)),
        "no_state": R(RECON, (NDARRAY, (0,), b"b")),
        "state_none": B(R(RECON, (NDARRAY, (0,), b"b")), None),
        "state_3": B(R(RECON, (NDARRAY, (0,), b"b")), ((3,), i4, False)),
        "state_6": B(R(RECON, (NDARRAY, (0,), b"b")), (1, 1, (3,), i4, False, data12)),
        "state_list": B(R(RECON, (NDARRAY, (0,), b"b")), [1, (3,), i4, False, data12]),
        "shape_neg": recon((-3,), i4, data12),
        "shape_neg_pair": recon((-1, -12), dt("u1", dstate("|")), data12),
        "shape_int": recon(3, i4, data12),
        "shape_none": recon(None, i4, data12),
        "shape_float": recon((3.0,), i4, data12),
        "shape_2p40_tiny": recon((2**40,), i4, data12),
        "shape_overflow": recon((2**32, 2**32, 2**32), i4, b""),
        "shape_overflow_zero": recon((0, 2**62, 2**62), i4, b""),
        "shape_zero_huge": recon((0, 2**63 - 1), i4, b""),
        "shape_bigint": recon((2**70,), i4, b""),
        "dtype_spec_str": recon((3,), "<i4", data12),
        "dtype_none": recon((3,), None, data12),
        "dtype_object": recon((1,), dt("|O", dstate("|")), [None]),
        "dtype_object_struct": recon((1,), dt([("a", "<i8"), ("o", "O")]), b"\0" * 16),
        "dtype_object_subarray": recon((1,), dt(("O", (2,))), b"\0" * 16),
        "v0_huge": recon((2**62,), v0, b""),
        "v0_huge_2d": recon((2**31, 2**31), v0, b""),
        "v0_max": recon((2**63 - 1,), v0, b""),
        "v0_huge_fortran": recon((2**40, 2**20), v0, b"", True),
        "empty_struct_huge": recon((2**40, 2**40), empty_struct, b""),
        "S0_huge": recon((2**62,), dt("|S0", dstate("|")), b""),
        "U0_huge": recon((2**62,), dt("<U0", dstate()), b""),
        "v0_subarray_huge": recon((2**31,), dt(("V0", (2**31,))), b""),
        "data_short": recon((3,), i4, data12[:11]),
        "data_long": recon((3,), i4, data12 + b"x"),
        "data_str_latin1": recon((3,), i4, "\xff" * 12),
        "data_str_nonlatin": recon((3,), i4, "\u20ac" * 12),
        "data_list": recon((3,), i4, [1, 2, 3]),
        "data_int": recon((3,), i4, 12),
        "data_none": recon((3,), i4, None),
        "data_bytearray": recon((3,), i4, bytearray(data12)),
        "fortran_str": recon((3,), i4, data12, "yes"),
        "fortran_list": recon((3,), i4, data12, [1]),
        "fortran_bigint": recon((3,), i4, data12, 2**80),
        "version_str": recon((3,), i4, data12, False, ("x",)),
        "numpy1_module": B(R(RECON1, (NDARRAY, (0,), b"b")), (1, (3,), i4, False, data12)),
        "subarray_dtype_expand_huge": recon((2**20,), dt(("<i4", (2**20, 2**20))), b""),
    }.items():
        c.tree(f"reconstruct_{name}", tree, protos=(0, 2, 5) if name == "ok" else (2, 5))

    # --- _frombuffer --------------------------------------------------------------------
    for name, tree in {
        "ok": frombuf(data12, i4, (3,), "C"),
        "ok_K": frombuf(data12, i4, (3, 1), "K", (1, 0)),
        "size_not_multiple": frombuf(data12[:10], i4, (3,), "C"),
        "count_mismatch": frombuf(data12, i4, (4,), "C"),
        "shape_neg": frombuf(data12, i4, (-3,), "C"),
        "shape_neg_pair": frombuf(data12, i4, (-1, -3), "C"),
        "shape_huge_pair": frombuf(b"", i4, (2**62, 0), "C"),
        "shape_overflow": frombuf(b"", i4, (2**33, 2**33, 0), "C"),
        "order_bad": frombuf(data12, i4, (3,), "Z"),
        "order_int": frombuf(data12, i4, (3,), 1),
        "order_empty": frombuf(data12, i4, (3,), ""),
        "axis_dup": frombuf(data12, i4, (3, 1), "K", (0, 0)),
        "axis_huge": frombuf(data12, i4, (3, 1), "K", (0, 2**62)),
        "axis_neg": frombuf(data12, i4, (3, 1), "K", (0, -1)),
        "axis_short": frombuf(data12, i4, (3, 1), "K", (0,)),
        "axis_missing": frombuf(data12, i4, (3, 1), "K"),
        "axis_not_tuple": frombuf(data12, i4, (3, 1), "K", 5),
        "v0": frombuf(b"", v0, (2**62,), "C"),
        "empty_struct": frombuf(b"", empty_struct, (2**40,), "C"),
        "dtype_object": frombuf(b"\0" * 8, "O", (1,), "C"),
        "dtype_object_struct": frombuf(b"\0" * 16, [("a", "i8"), ("o", "O")], (1,), "C"),
        "dtype_subarray": frombuf(data12, ("<i4", (3,)), (1,), "C"),
        "dtype_int": frombuf(data12, 4, (3,), "C"),
        "buffer_str": frombuf("abcd", i4, (1,), "C"),
        "buffer_int": frombuf(12, i4, (3,), "C"),
        "buffer_none": frombuf(None, i4, (0,), "C"),
        "args_3": frombuf(data12, i4, (3,)),
        "args_6": frombuf(data12, i4, (3,), "C", None, 1),
    }.items():
        c.tree(f"frombuffer_{name}", tree, protos=(3, 5))
    c.tree("frombuffer_oob_ok", frombuf(NB(), i4, (3,), "C"), protos=(5,), buffers=[data12])
    c.tree("frombuffer_oob_short", frombuf(NB(), i4, (3,), "C"), protos=(5,), buffers=[data12[:8]])
    c.tree("frombuffer_oob_0d", frombuf(NB(), "<i8", (1,), "C"), protos=(5,), buffers=[b"\1" * 8], kinds=["0d"])
    c.tree("frombuffer_oob_missing", frombuf(NB(), i4, (3,), "C"), protos=(5,))
    c.tree("frombuffer_oob_readonly_writable", frombuf(NB(True), i4, (3,), "C"), protos=(5,), buffers=[data12], kinds=["bytearray"])

    # --- portable numpy.ndarray(shape, dtype, buffer, offset, strides, order) -----------
    buf16 = bytes(range(16))
    for name, tree in {
        "ok": portable((4,), "<i4", buf16, 0, (4,)),
        "ok_view": portable((2,), "<i4", buf16, 4, (8,)),
        "ok_negative_stride": portable((4,), "<i4", buf16, 12, (-4,)),
        "ok_broadcast": portable((1000,), "<i4", buf16, 0, (0,)),
        "offset_past_end": portable((1,), "<i4", buf16, 16, (4,)),
        "offset_at_end_empty": portable((0,), "<i4", buf16, 16, (4,)),
        "offset_huge": portable((1,), "<i4", buf16, 2**63 - 1, (4,)),
        "offset_2p64": portable((1,), "<i4", buf16, 2**64, (4,)),
        "offset_neg": portable((1,), "<i4", buf16, -4, (4,)),
        "offset_float": portable((1,), "<i4", buf16, 1.0, (4,)),
        "offset_unaligned_read_past": portable((4,), "<i4", buf16, 1, (4,)),
        "stride_neg_before_start": portable((4,), "<i4", buf16, 0, (-4,)),
        "stride_neg_partly": portable((4,), "<i4", buf16, 8, (-4,)),
        "stride_past_end": portable((4,), "<i4", buf16, 0, (8,)),
        "stride_huge": portable((2,), "<i4", buf16, 0, (2**62,)),
        "stride_neg_huge": portable((2,), "<i4", buf16, 12, (-(2**62),)),
        "stride_min": portable((2,), "<i4", buf16, 12, (-(2**63),)),
        "stride_2p63": portable((2,), "<i4", buf16, 0, (2**63,)),
        "stride_overflow_product": portable((2**32, 2**32), "u1", buf16, 0, (2**32, 1)),
        "stride_overflow_sum": portable((3, 3), "u1", buf16, 0, (2**62, 2**62)),
        "stride_overflow_wrap": portable((2, 2), "u1", buf16, 0, (2**63 - 1, 2)),
        "stride_wrap_to_zero": portable((2,), "<u8", buf16, 0, (-(2**63),)),
        "strides_too_many": portable((4,), "<i4", buf16, 0, (4, 4)),
        "strides_too_few": portable((2, 2), "<i4", buf16, 0, (4,)),
        "strides_float": portable((4,), "<i4", buf16, 0, (4.0,)),
        "strides_str": portable((4,), "<i4", buf16, 0, "abc"),
        "strides_bigint": portable((1,), "<i4", buf16, 0, (2**70,)),
        "stride_unaligned_itemsize": portable((5,), "<i4", buf16, 0, (3,)),
        "stride_zero_past_end": portable((3,), "<i4", buf16, 14, (0,)),
        "shape_2p40_tiny": portable((2**40,), "<i4", buf16),
        "shape_2p40_stride0": portable((2**40,), "<i4", buf16, 0, (0,)),
        "shape_neg": portable((-1,), "<i4", buf16),
        "shape_neg_stride": portable((-4,), "<i4", buf16, 0, (4,)),
        "shape_neg_pair": portable((-2, -2), "<i4", buf16, 0, (8, 4)),
        "shape_int": portable(4, "<i4", buf16),
        "shape_none": portable(None, "<i4", buf16),
        "shape_list": portable([4], "<i4", buf16),
        "shape_float": portable((4.0,), "<i4", buf16),
        "shape_bigint": portable((2**70,), "<i4", buf16, 0, (0,)),
        "shape_overflow": portable((2**32, 2**32, 2**32), "<i4", b"", 0, (0, 0, 0)),
        "shape_zero_huge_stride": portable((0, 2**62), "<i4", b"", 0, (2**62, 2**62)),
        "v0_huge": portable((2**62,), "|V0", b""),
        "v0_huge_strides0": portable((2**62,), "|V0", b"", 0, (0,)),
        "v0_huge_strides": portable((2**62,), "|V0", b"", 0, (1,)),
        "v0_huge_2d": portable((2**31, 2**31), "|V0", b""),
        "v0_max": portable((2**63 - 1,), "|V0", b"", 0, (0,)),
        "v0_offset": portable((2**62,), "|V0", buf16, 2**40, (0,)),
        "empty_struct_huge": portable((2**40, 2**40), {"names": [], "formats": []}, b""),
        "empty_struct_huge_strides": portable((2**40,), {"names": [], "formats": []}, b"", 0, (7,)),
        "S0_huge": portable((2**62,), "|S0", b""),
        "v0_subarray_huge": portable((2**31,), ("V0", (2**31,)), b""),
        "buffer_none": portable((4,), "<i4", None),
        "buffer_missing": portable((4,), "<i4"),
        "buffer_int": portable((4,), "<i4", 16),
        "buffer_str": portable((4,), "<i4", "x" * 16),
        "buffer_list": portable((4,), "<i4", [0] * 16),
        "buffer_array_view": portable((2,), "<i4", portable((4,), "<i4", buf16), 8),
        "buffer_array_noncontig": portable((2,), "<i4", portable((2,), "<i4", buf16, 0, (8,))),
        "buffer_array_broadcast": portable((4,), "<i4", portable((4,), "<i4", buf16[:4], 0, (0,))),
        "buffer_array_v0": portable((4,), "<i4", portable((2**62,), "|V0", b"")),
        "buffer_array_nested": portable(
            (1,), "<i4", portable((4,), "<i4", portable((16,), "u1", buf16)), 12
        ),
        "buffer_array_object": portable((1,), "<i8", portable((1,), "O", b"\0" * 8)),
        "order_bad": portable((4,), "<i4", buf16, 0, None, "Q"),
        "order_int": portable((4,), "<i4", buf16, 0, None, 7),
        "dtype_object": portable((2,), "O", buf16),
        "dtype_object_struct": portable((1,), [("a", "<i8"), ("o", "O")], buf16),
        "dtype_object_deep": portable((1,), {"names": ["a"], "formats": [[("o", ("O", (1,)))]]}, buf16),
        "dtype_object_dtype_call": portable((2,), dt("|O", dstate("|")), buf16),
        "dtype_object_state_field": portable(
            (1,), dt("|V8", dstate("|", names=("a",), fields={"a": (dt("|O", dstate("|")), 0)}, elsize=8)), buf16
        ),
        "args_7": portable((4,), "<i4", buf16, 0, (4,), "C", 1),
        "args_0": portable(),
        "subarray_dims_strides": portable((2,), ("<i4", (2,)), buf16, 0, (8,)),
    }.items():
        c.tree(f"ndarray_{name}", tree, protos=(2, 3, 5))
    # Stride-0 arrays asked to be writable: a 2 GiB copy from a few bytes.
    c.tree("ndarray_writable_stride0_2GiB", portable((2**28,), "<f8", bytearray(8), 0, (0,)), protos=(5,))
    c.tree("ndarray_writable_stride0_2GiB_2d", portable((2**14, 2**14), "<f8", bytearray(8), 0, (0, 0)), protos=(5,))
    c.tree("ndarray_writable_stride0_16GiB", portable((2**31,), "<f8", bytearray(8), 0, (0,)), protos=(5,))
    c.tree("ndarray_writable_stride0_oob", portable((2**28,), "<f8", NB(), 0, (0,)), protos=(5,), buffers=[b"\0" * 8])
    c.tree(
        "ndarray_writable_stride0_oob_bytearray",
        portable((2**28,), "<f8", NB(), 0, (0,)),
        protos=(5,),
        buffers=[b"\0" * 8],
        kinds=["bytearray"],
    )
    c.tree("ndarray_readonly_stride0_2GiB", portable((2**28,), "<f8", NB(True), 0, (0,)), protos=(5,), buffers=[b"\0" * 8])
    c.tree("ndarray_writable_huge_row_repeat", portable((2**16, 4096), "<f8", bytearray(8 * 4096), 0, (0, 8)), protos=(5,))
    # Out-of-band buffers: 0-d, missing, extra, readonly flags.
    c.tree("ndarray_oob_ok", portable((4,), "<i4", NB(), 0, (4,)), protos=(5,), buffers=[buf16])
    c.tree("ndarray_oob_0d", portable((1,), "<i8", NB()), protos=(5,), buffers=[b"\1" * 8], kinds=["0d"])
    c.tree("ndarray_oob_0d_readonly", portable((1,), "<i8", NB(True)), protos=(5,), buffers=[b"\1" * 8], kinds=["0d"])
    c.tree("ndarray_oob_0d_bare", NB(), protos=(5,), buffers=[b"\1" * 8], kinds=["0d"])
    c.tree("ndarray_oob_missing", portable((4,), "<i4", NB()), protos=(5,))
    c.tree("ndarray_oob_two_missing_one", [portable((4,), "<i4", NB()), NB()], protos=(5,), buffers=[buf16])
    c.tree("ndarray_oob_extra", portable((4,), "<i4", NB()), protos=(5,), buffers=[buf16, buf16])
    c.tree("ndarray_oob_offset_past", portable((4,), "<i4", NB(), 2**40), protos=(5,), buffers=[buf16])
    c.tree("ndarray_oob_stride_out", portable((4,), "<i4", NB(), 0, (-4,)), protos=(5,), buffers=[buf16])
    c.tree("ndarray_oob_empty_buffer_shape", portable((2**40,), "<i4", NB()), protos=(5,), buffers=[b""])
    c.tree("ndarray_oob_empty_buffer_v0", portable((2**62,), "|V0", NB()), protos=(5,), buffers=[b""])
    c.tree("bare_oob_readonly", NB(True), protos=(5,), buffers=[buf16], kinds=["bytearray"])
    c.tree("bare_oob_empty", NB(), protos=(5,), buffers=[b""])
    c.tree("bare_oob_twice_same", [NB(), NB()], protos=(5,), buffers=[buf16])

    # --- scalar(dtype, bytes) -------------------------------------------------------------
    for name, tree in {
        "ok": R(SCALAR, (i4, b"\1\0\0\0")),
        "short": R(SCALAR, (i4, b"\1\0\0")),
        "long": R(SCALAR, (i4, b"\1\0\0\0\0")),
        "empty": R(SCALAR, (i4, b"")),
        "str_latin1": R(SCALAR, (i4, "\x01\x00\x00\x00")),
        "str_nonlatin": R(SCALAR, (i4, "\u20ac\x00\x00\x00")),
        "dtype_str": R(SCALAR, ("<i4", b"\1\0\0\0")),
        "dtype_none": R(SCALAR, (None, b"")),
        "object": R(SCALAR, (dt("|O", dstate("|")), 5)),
        "object_struct": R(SCALAR, (dt([("a", "i8"), ("o", "O")]), b"\0" * 16)),
        "v0": R(SCALAR, (v0, b"")),
        "empty_struct": R(SCALAR, (empty_struct, b"")),
        "subarray_huge": R(SCALAR, (dt(("<i4", (2**30, 2**30))), b"")),
        "subarray_ok": R(SCALAR, (dt(("<i2", (2,))), b"\0" * 4)),
        "data_int": R(SCALAR, (i4, 1)),
        "data_list": R(SCALAR, (i4, [1])),
        "args_1": R(SCALAR, (i4,)),
        "args_3": R(SCALAR, (i4, b"\0" * 4, 1)),
        "datetime_ok": R(SCALAR, (dt("<M8[s]", dstate()), i64(5))),
        "datetime_nat": R(SCALAR, (dt("<M8[ns]", dstate()), i64(-(2**63)))),
        "unicode_bad_codepoint": R(SCALAR, (dt("<U1", dstate()), struct.pack("<I", 0x110000))),
        "unicode_surrogate": R(SCALAR, (dt("<U1", dstate()), struct.pack("<I", 0xD800))),
        "bool_2": R(SCALAR, (dt("|b1", dstate("|")), b"\x02")),
        "ml_bfloat16": R(SCALAR, (dt(G("ml_dtypes", "bfloat16"), dstate()), b"\0\0")),
        "ml_bfloat16_short": R(SCALAR, (dt(G("ml_dtypes", "bfloat16"), dstate()), b"\0")),
        "ml_int4": R(SCALAR, (dt(G("ml_dtypes", "int4"), dstate("|")), b"\xff")),
    }.items():
        c.tree(f"scalar_{name}", tree, protos=(2, 4))
    # Arrays whose values numpy would refuse to print / convert: still data, must be usable.
    c.tree("ndarray_bool_values_2", portable((4,), "|b1", bytes([0, 1, 2, 255])), protos=(5,))
    c.tree("ndarray_unicode_bad_codepoints", portable((2,), "<U1", struct.pack("<2I", 0x110000, 0xFFFFFFFF)), protos=(5,))
    c.tree("ndarray_datetime_extremes", portable((3,), "<M8[as]", i64(-(2**63), 2**63 - 1, 0)), protos=(5,))


# ---------------------------------------------------------------------------------------
# pyarrow


def pyarrow_cases(c: Corpus) -> None:
    """pyarrow reconstructors and factories with malformed states and arguments."""
    int64 = alias("int64")
    int32 = alias("int32")
    string = alias("string")
    ok_str_bufs = [None, pbuf(i32(0, 1, 3)), pbuf(b"abc")]
    P = (2, 5)

    def arr(name: str, tree: Any, protos: Iterable[int] = P, **kw: Any) -> None:
        c.tree(f"{name}", tree, protos=protos, **kw)

    # --- string / binary --------------------------------------------------------------
    arr("string_ok", restore(string, 2, 0, 0, ok_str_bufs, []))
    for name, (length, nulls, offset, bufs) in {
        "offsets_past_data": (2, 0, 0, [None, pbuf(i32(0, 1, 300)), pbuf(b"abc")]),
        "offsets_huge": (2, 0, 0, [None, pbuf(i32(0, 1, 2**31 - 1)), pbuf(b"abc")]),
        "offsets_negative": (2, 0, 0, [None, pbuf(i32(-5, 1, 3)), pbuf(b"abc")]),
        "offsets_decreasing": (2, 0, 0, [None, pbuf(i32(0, 3, 1)), pbuf(b"abc")]),
        "offsets_short": (5, 0, 0, [None, pbuf(i32(0, 1, 3)), pbuf(b"abc")]),
        "offsets_empty": (2, 0, 0, [None, pbuf(b""), pbuf(b"abc")]),
        "length_2p40": (2**40, 0, 0, ok_str_bufs),
        "length_2p62": (2**62, 0, 0, ok_str_bufs),
        "length_neg": (-1, 0, 0, ok_str_bufs),
        "length_bigint": (2**70, 0, 0, ok_str_bufs),
        "offset_neg": (2, 0, -1, ok_str_bufs),
        "offset_past": (2, 0, 5, ok_str_bufs),
        "offset_2p62": (2, 0, 2**62, ok_str_bufs),
        "offset_overflow": (2**62, 0, 2**62, ok_str_bufs),
        "nulls_lie_zero": (2, 0, 0, [pbuf(b"\x01"), pbuf(i32(0, 1, 3)), pbuf(b"abc")]),
        "nulls_lie_high": (2, 2, 0, [pbuf(b"\x03"), pbuf(i32(0, 1, 3)), pbuf(b"abc")]),
        "nulls_more_than_length": (2, 5, 0, [pbuf(b"\x00"), pbuf(i32(0, 1, 3)), pbuf(b"abc")]),
        "nulls_no_bitmap": (2, 1, 0, ok_str_bufs),
        "nulls_neg": (2, -5, 0, ok_str_bufs),
        "bitmap_short": (20, 1, 0, [pbuf(b"\x01"), pbuf(i32(*range(21))), pbuf(b"x" * 20)]),
        "invalid_utf8": (1, 0, 0, [None, pbuf(i32(0, 2)), pbuf(b"\xff\xfe")]),
        "missing_data_buffer": (2, 0, 0, [None, pbuf(i32(0, 1, 3))]),
        "missing_all_buffers": (2, 0, 0, []),
        "data_buffer_none": (2, 0, 0, [None, pbuf(i32(0, 1, 3)), None]),
        "offsets_buffer_none": (2, 0, 0, [None, None, pbuf(b"abc")]),
        "extra_buffers": (2, 0, 0, ok_str_bufs + [pbuf(b"zz")]),
        "buffer_not_buffer": (2, 0, 0, [None, i32(0, 1, 3), b"abc"]),
        "buffer_int": (2, 0, 0, [None, 5, 6]),
        "unaligned_offsets": (1, 0, 0, [None, pbuf(b"\0" + i32(0, 1)), pbuf(b"a")]),
    }.items():
        arr(f"string_{name}", restore(string, length, nulls, offset, bufs, []))
        if name in ("offsets_past_data", "offsets_negative", "length_2p40", "missing_data_buffer"):
            arr(f"binary_{name}", restore(alias("binary"), length, nulls, offset, bufs, []))
    for name, (length, bufs) in {
        "offsets_past_data": (2, [None, pbuf(i64(0, 1, 300)), pbuf(b"abc")]),
        "offsets_negative": (2, [None, pbuf(i64(-5, 1, 3)), pbuf(b"abc")]),
        "offsets_huge": (2, [None, pbuf(i64(0, 1, 2**62)), pbuf(b"abc")]),
        "length_2p40": (2**40, [None, pbuf(i64(0, 1, 3)), pbuf(b"abc")]),
        "missing_data_buffer": (2, [None, pbuf(i64(0, 1, 3))]),
    }.items():
        arr(f"large_string_{name}", restore(alias("large_string"), length, 0, 0, bufs, []))
    arr("string_oob_offsets_past", restore(string, 2, 0, 0, [None, pbuf(NB()), pbuf(NB())], []), protos=(5,),
        buffers=[i32(0, 1, 300), b"abc"])
    arr("string_oob_0d", restore(string, 1, 0, 0, [None, pbuf(NB()), pbuf(NB())], []), protos=(5,),
        buffers=[i32(0, 1), b"a"], kinds=["bytes", "0d"])
    # --- primitive --------------------------------------------------------------------
    arr("int64_ok", restore(int64, 2, 0, 0, [None, pbuf(i64(1, 2))], []))
    for name, (length, nulls, offset, bufs) in {
        "buffer_short": (4, 0, 0, [None, pbuf(i64(1, 2))]),
        "length_2p40": (2**40, 0, 0, [None, pbuf(i64(1, 2))]),
        "length_neg": (-2, 0, 0, [None, pbuf(i64(1, 2))]),
        "offset_past": (2, 0, 2, [None, pbuf(i64(1, 2))]),
        "offset_neg": (2, 0, -2, [None, pbuf(i64(1, 2))]),
        "missing_values": (2, 0, 0, [None]),
        "no_buffers": (2, 0, 0, []),
        "values_none": (2, 0, 0, [None, None]),
        "nulls_lie": (2, 0, 0, [pbuf(b"\x00"), pbuf(i64(1, 2))]),
        "nulls_over": (2, 3, 0, [pbuf(b"\x00"), pbuf(i64(1, 2))]),
        "bitmap_empty": (2, 1, 0, [pbuf(b""), pbuf(i64(1, 2))]),
        "data_not_list": (2, 0, 0, (None, pbuf(i64(1, 2)))),
        "children_extra": (2, 0, 0, [None, pbuf(i64(1, 2))]),
    }.items():
        children: Any = [restore(int64, 2, 0, 0, [None, pbuf(i64(1, 2))], [])] if name == "children_extra" else []
        arr(f"int64_{name}", restore(int64, length, nulls, offset, bufs, children))
    arr("bool_short", restore(alias("bool"), 100, 0, 0, [None, pbuf(b"\x01")], []))
    arr("fixed_size_binary_short", restore(pa("fixed_size_binary", 8), 3, 0, 0, [None, pbuf(b"x" * 10)], []))
    arr("fixed_size_binary_neg", restore(pa("fixed_size_binary", -1), 1, 0, 0, [None, pbuf(b"x")], []))
    arr("fixed_size_binary_huge", restore(pa("fixed_size_binary", 2**31), 1, 0, 0, [None, pbuf(b"x")], []))
    arr("decimal128_short", restore(pa("decimal128", 10, 2), 2, 0, 0, [None, pbuf(b"\0" * 16)], []))
    arr("null_type_huge_length", restore(alias("null"), 2**40, 2**40, 0, [None], []))
    arr("null_type_nulls_lie", restore(alias("null"), 5, 0, 0, [None], []))
    arr("null_type_with_buffer", restore(alias("null"), 5, 5, 0, [None, pbuf(b"\0" * 40)], []))
    arr("timestamp_tz_bad", restore(pa("timestamp", "s", "Not/AZone"), 1, 0, 0, [None, pbuf(i64(0))], []))
    arr("timestamp_tz_ok", restore(pa("timestamp", "s", "UTC"), 1, 0, 0, [None, pbuf(i64(0))], []))
    arr("date64_short", restore(alias("date64"), 2, 0, 0, [None, pbuf(i64(0))], []))
    # --- nested -----------------------------------------------------------------------
    child = restore(int64, 3, 0, 0, [None, pbuf(i64(1, 2, 3))], [])
    list_t = pa("list_", int64)
    arr("list_ok", restore(list_t, 2, 0, 0, [None, pbuf(i32(0, 1, 3))], [child]))
    arr("list_offsets_past_child", restore(list_t, 2, 0, 0, [None, pbuf(i32(0, 1, 30))], [child]))
    arr("list_offsets_negative", restore(list_t, 2, 0, 0, [None, pbuf(i32(-7, 1, 3))], [child]))
    arr("list_offsets_decreasing", restore(list_t, 2, 0, 0, [None, pbuf(i32(0, 3, 1))], [child]))
    arr("list_no_child", restore(list_t, 2, 0, 0, [None, pbuf(i32(0, 1, 3))], []))
    arr("list_two_children", restore(list_t, 2, 0, 0, [None, pbuf(i32(0, 1, 3))], [child, child]))
    arr("list_child_wrong_type", restore(list_t, 2, 0, 0, [None, pbuf(i32(0, 1, 3))], [restore(string, 2, 0, 0, ok_str_bufs, [])]))
    arr("list_child_as_restore_call", restore_raw(list_t, 2, 0, 0, [None, pbuf(i32(0, 1, 3))], [child], None))
    arr("dictionary_as_restore_call", restore_raw(dict_t := pa("dictionary", alias("int8"), string), 2, 0, 0, [None, pbuf(i8(0, 1))], [],
                                                  restore(string, 2, 0, 0, ok_str_bufs, [])))
    arr("list_child_not_array", restore(list_t, 2, 0, 0, [None, pbuf(i32(0, 1, 3))], [5]))
    arr("list_child_invalid", restore(list_t, 1, 0, 0, [None, pbuf(i32(0, 1))],
                                      [restore(string, 1, 0, 0, [None, pbuf(i32(0, 99)), pbuf(b"a")], [])]))
    arr("large_list_offsets_past", restore(pa("large_list", int64), 1, 0, 0, [None, pbuf(i64(0, 2**40))], [child]))
    fsl = pa("list_", int64, 2)
    arr("fixed_size_list_child_short", restore(fsl, 5, 0, 0, [None], [child]))
    arr("fixed_size_list_size_neg", restore(pa("list_", int64, -3), 1, 0, 0, [None], [child]))
    arr("fixed_size_list_huge_length", restore(fsl, 2**40, 0, 0, [None], [child]))
    st = pa("struct", [pa("field", "a", int64), pa("field", "b", string)])
    arr("struct_ok", restore(st, 2, 0, 0, [None], [restore(int64, 2, 0, 0, [None, pbuf(i64(1, 2))], []), restore(string, 2, 0, 0, ok_str_bufs, [])]))
    arr("struct_no_children", restore(st, 2, 0, 0, [None], []))
    arr("struct_one_child", restore(st, 2, 0, 0, [None], [restore(int64, 2, 0, 0, [None, pbuf(i64(1, 2))], [])]))
    arr("struct_child_short", restore(st, 2, 0, 0, [None], [restore(int64, 1, 0, 0, [None, pbuf(i64(1))], []), restore(string, 2, 0, 0, ok_str_bufs, [])]))
    arr("struct_child_swapped", restore(st, 2, 0, 0, [None], [restore(string, 2, 0, 0, ok_str_bufs, []), restore(int64, 2, 0, 0, [None, pbuf(i64(1, 2))], [])]))
    arr("struct_length_huge", restore(st, 2**40, 0, 0, [None], [restore(int64, 2, 0, 0, [None, pbuf(i64(1, 2))], []), restore(string, 2, 0, 0, ok_str_bufs, [])]))
    arr("struct_empty_type_huge", restore(pa("struct", []), 2**40, 0, 0, [None], []))
    map_t = pa("map_", string, int64)
    arr("map_no_children", restore(map_t, 1, 0, 0, [None, pbuf(i32(0, 1))], []))
    entries = restore(pa("struct", [pa("field", "key", string, False), pa("field", "value", int64)]), 1, 0, 0, [None],
                      [restore(string, 1, 1, 0, [pbuf(b"\0"), pbuf(i32(0, 0)), pbuf(b"")], []), restore(int64, 1, 0, 0, [None, pbuf(i64(1))], [])])
    arr("map_null_key", restore(map_t, 1, 0, 0, [None, pbuf(i32(0, 1))], [entries]))
    # --- unions -----------------------------------------------------------------------
    fields = [pa("field", "i", int64), pa("field", "s", string)]
    ichild = restore(int64, 2, 0, 0, [None, pbuf(i64(1, 2))], [])
    schild = restore(string, 2, 0, 0, ok_str_bufs, [])
    sparse = pa("sparse_union", fields, [0, 1])
    dense = pa("dense_union", fields, [0, 1])
    arr("sparse_union_ok", restore(sparse, 2, 0, 0, [None, pbuf(i8(0, 1))], [ichild, schild]))
    arr("sparse_union_type_code_outside", restore(sparse, 2, 0, 0, [None, pbuf(i8(0, 7))], [ichild, schild]))
    arr("sparse_union_type_code_negative", restore(sparse, 2, 0, 0, [None, pbuf(i8(-1, 0))], [ichild, schild]))
    arr("sparse_union_type_ids_short", restore(sparse, 2, 0, 0, [None, pbuf(b"")], [ichild, schild]))
    arr("sparse_union_children_short", restore(sparse, 2, 0, 0, [None, pbuf(i8(0, 1))], [ichild]))
    arr("sparse_union_child_len_short", restore(sparse, 2, 0, 0, [None, pbuf(i8(0, 1))],
                                                [restore(int64, 1, 0, 0, [None, pbuf(i64(1))], []), schild]))
    arr("dense_union_ok", restore(dense, 2, 0, 0, [None, pbuf(i8(0, 1)), pbuf(i32(0, 0))], [ichild, schild]))
    arr("dense_union_offset_past_child", restore(dense, 2, 0, 0, [None, pbuf(i8(0, 1)), pbuf(i32(0, 99))], [ichild, schild]))
    arr("dense_union_offset_negative", restore(dense, 2, 0, 0, [None, pbuf(i8(0, 1)), pbuf(i32(-3, 0))], [ichild, schild]))
    arr("dense_union_type_code_outside", restore(dense, 2, 0, 0, [None, pbuf(i8(5, 1)), pbuf(i32(0, 0))], [ichild, schild]))
    arr("dense_union_missing_offsets", restore(dense, 2, 0, 0, [None, pbuf(i8(0, 1))], [ichild, schild]))
    arr("union_codes_dup", restore(pa("sparse_union", fields, [3, 3]), 1, 0, 0, [None, pbuf(i8(3))], [ichild, schild]))
    arr("union_codes_huge", restore(pa("sparse_union", fields, [0, 300]), 1, 0, 0, [None, pbuf(i8(0))], [ichild, schild]))
    arr("union_codes_short", restore(pa("sparse_union", fields, [0]), 1, 0, 0, [None, pbuf(i8(0))], [ichild, schild]))
    arr("union_mode_bad", restore(pa("union", fields, "weird"), 1, 0, 0, [None, pbuf(i8(0))], [ichild, schild]))
    arr("union_mode_int", restore(pa("union", fields, 9), 1, 0, 0, [None, pbuf(i8(0))], [ichild, schild]))
    # --- dictionary ---------------------------------------------------------------------
    dict_t = pa("dictionary", alias("int8"), string)
    dvals = restore(string, 2, 0, 0, ok_str_bufs, [])
    arr("dictionary_ok", restore(dict_t, 2, 0, 0, [None, pbuf(i8(0, 1))], [], dvals))
    arr("dictionary_index_out_of_range", restore(dict_t, 2, 0, 0, [None, pbuf(i8(0, 50))], [], dvals))
    arr("dictionary_index_negative", restore(dict_t, 2, 0, 0, [None, pbuf(i8(-1, 0))], [], dvals))
    arr("dictionary_missing", restore(dict_t, 2, 0, 0, [None, pbuf(i8(0, 1))], []))
    arr("dictionary_none", restore(dict_t, 2, 0, 0, [None, pbuf(i8(0, 1))], [], None))
    arr("dictionary_wrong_type", restore(dict_t, 2, 0, 0, [None, pbuf(i8(0, 1))], [], restore(int64, 2, 0, 0, [None, pbuf(i64(1, 2))], [])))
    arr("dictionary_values_invalid", restore(dict_t, 1, 0, 0, [None, pbuf(i8(0))], [], restore(string, 1, 0, 0, [None, pbuf(i32(0, 77)), pbuf(b"a")], [])))
    arr("dictionary_value_not_array", restore(dict_t, 2, 0, 0, [None, pbuf(i8(0, 1))], [], 5))
    arr("dictionary_float_index", restore(pa("dictionary", alias("float64"), string), 1, 0, 0, [None, pbuf(i64(0))], [], dvals))
    arr("dictionary_from_buffers_oob_index", pa("DictionaryArray.from_buffers", dict_t, 2, [None, pbuf(i8(0, 99))], dvals))
    # --- run-end encoded ----------------------------------------------------------------
    ree = pa("run_end_encoded", int32, int64)
    ends = lambda *e: restore(int32, len(e), 0, 0, [None, pbuf(i32(*e))], [])  # noqa: E731
    vals = lambda n: restore(int64, n, 0, 0, [None, pbuf(i64(*range(n)))], [])  # noqa: E731
    arr("ree_ok", restore(ree, 5, 0, 0, [None], [ends(2, 5), vals(2)]))
    arr("ree_ends_decreasing", restore(ree, 5, 0, 0, [None], [ends(4, 2), vals(2)]))
    arr("ree_ends_negative", restore(ree, 5, 0, 0, [None], [ends(-1, 5), vals(2)]))
    arr("ree_ends_short_of_length", restore(ree, 50, 0, 0, [None], [ends(2, 5), vals(2)]))
    arr("ree_ends_zero", restore(ree, 5, 0, 0, [None], [ends(0, 5), vals(2)]))
    arr("ree_values_short", restore(ree, 5, 0, 0, [None], [ends(2, 5), vals(1)]))
    arr("ree_no_children", restore(ree, 5, 0, 0, [None], []))
    arr("ree_one_child", restore(ree, 5, 0, 0, [None], [ends(2, 5)]))
    arr("ree_ends_with_nulls", restore(ree, 5, 0, 0, [None], [restore(int32, 2, 1, 0, [pbuf(b"\x02"), pbuf(i32(2, 5))], []), vals(2)]))
    arr("ree_huge_length", restore(ree, 2**40, 0, 0, [None], [ends(2, 2**31 - 1), vals(2)]))
    arr("ree_offset_past", restore(ree, 5, 0, 2**31, [None], [ends(2, 5), vals(2)]))
    arr("ree_bad_run_end_type", restore(pa("run_end_encoded", alias("float32"), int64), 1, 0, 0, [None], [ends(1), vals(1)]))
    # --- list views ---------------------------------------------------------------------
    lv = pa("list_view", int64)
    arr("list_view_ok", restore(lv, 2, 0, 0, [None, pbuf(i32(0, 1)), pbuf(i32(1, 2))], [child]))
    arr("list_view_past_child", restore(lv, 2, 0, 0, [None, pbuf(i32(0, 2)), pbuf(i32(1, 50))], [child]))
    arr("list_view_negative_size", restore(lv, 2, 0, 0, [None, pbuf(i32(0, 1)), pbuf(i32(1, -2))], [child]))
    arr("list_view_negative_offset", restore(lv, 2, 0, 0, [None, pbuf(i32(-9, 1)), pbuf(i32(1, 1))], [child]))
    arr("list_view_missing_sizes", restore(lv, 2, 0, 0, [None, pbuf(i32(0, 1))], [child]))
    arr("list_view_overflow", restore(lv, 1, 0, 0, [None, pbuf(i32(2**31 - 1)), pbuf(i32(2**31 - 1))], [child]))
    arr("large_list_view_overflow", restore(pa("large_list_view", int64), 1, 0, 0, [None, pbuf(i64(2**62)), pbuf(i64(2**62))], [child]))
    # --- string / binary views ------------------------------------------------------------
    sv = pa("string_view")

    def view(length: int, prefix: bytes, buf_index: int, offset: int) -> bytes:
        return struct.pack("<i4sii", length, prefix, buf_index, offset)

    inline = struct.pack("<i12s", 3, b"abc")
    arr("string_view_ok_inline", restore(sv, 1, 0, 0, [None, pbuf(inline)], []))
    arr("string_view_ok_ref", restore(sv, 1, 0, 0, [None, pbuf(view(20, b"abcd", 0, 0)), pbuf(b"abcd" + b"x" * 16)], []))
    arr("string_view_buffer_index_outside", restore(sv, 1, 0, 0, [None, pbuf(view(20, b"abcd", 5, 0)), pbuf(b"abcd" + b"x" * 16)], []))
    arr("string_view_offset_past", restore(sv, 1, 0, 0, [None, pbuf(view(20, b"abcd", 0, 1000)), pbuf(b"abcd" + b"x" * 16)], []))
    arr("string_view_length_negative", restore(sv, 1, 0, 0, [None, pbuf(view(-20, b"abcd", 0, 0)), pbuf(b"abcd" + b"x" * 16)], []))
    arr("string_view_no_data_buffers", restore(sv, 1, 0, 0, [None, pbuf(view(20, b"abcd", 0, 0))], []))
    arr("string_view_inline_too_long", restore(sv, 1, 0, 0, [None, pbuf(struct.pack("<i12s", 12, b"x" * 12))], []))
    arr("string_view_prefix_mismatch", restore(sv, 1, 0, 0, [None, pbuf(view(20, b"zzzz", 0, 0)), pbuf(b"abcd" + b"x" * 16)], []))
    arr("string_view_views_short", restore(sv, 4, 0, 0, [None, pbuf(inline)], []))
    arr("string_view_bad_utf8", restore(sv, 1, 0, 0, [None, pbuf(struct.pack("<i12s", 2, b"\xff\xfe"))], []))
    arr("binary_view_index_outside", restore(pa("binary_view"), 1, 0, 0, [None, pbuf(view(20, b"abcd", 2**31 - 1, 0)), pbuf(b"abcd" * 5)], []))
    # --- factories refusing their arguments --------------------------------------------------
    for name, tree in {
        "decimal128_precision_0": pa("decimal128", 0, 0),
        "decimal128_precision_100": pa("decimal128", 100, 2),
        "decimal256_precision_huge": pa("decimal256", 2**40, 2),
        "decimal32_bad": pa("decimal32", 20, 2),
        "decimal64_scale_str": pa("decimal64", 5, "x"),
        "timestamp_bad_unit": pa("timestamp", "xx"),
        "time32_ns": pa("time32", "ns"),
        "time64_s": pa("time64", "s"),
        "duration_bad": pa("duration", 5),
        "fixed_size_binary_str": pa("fixed_size_binary", "x"),
        "list_none": pa("list_", None),
        "list_int": pa("list_", 5),
        "list_size_bigint": pa("list_", int64, 2**70),
        "struct_not_fields": pa("struct", [5, 6]),
        "struct_dict_fields": pa("struct", {"a": 1}),
        "struct_none": pa("struct", None),
        "field_name_int": pa("field", 5, int64),
        "field_type_str_bad": pa("field", "a", "notatype"),
        "field_metadata_bad": pa("field", "a", int64, True, 5),
        "dictionary_bad_index": pa("dictionary", string, string),
        "dictionary_ordered_str": pa("dictionary", int32, string, "yes"),
        "map_bad_key": pa("map_", None, int64),
        "ree_bad": pa("run_end_encoded", string, int64),
        "union_codes_bigint": pa("sparse_union", fields, [0, 2**70]),
        "union_fields_int": pa("dense_union", 5),
        "type_for_alias_bad": alias("no_such_type"),
        "type_for_alias_int": pa("type_for_alias", 5),
        "schema_not_fields": pa("schema", [1, 2]),
        "schema_metadata_bad": pa("schema", [pa("field", "a", int64)], 5),
        "schema_dup_fields": pa("schema", [pa("field", "a", int64), pa("field", "a", int64)]),
        "kvmeta_bad": pa("KeyValueMetadata", 5),
        "kvmeta_non_bytes": pa("KeyValueMetadata", {"a": 5}),
        "py_buffer_int": pa("py_buffer", 5),
        "py_buffer_str": pa("py_buffer", "abc"),
        "py_buffer_none": pa("py_buffer", None),
        "chunked_mixed_types": pa("chunked_array", [restore(int64, 1, 0, 0, [None, pbuf(i64(1))], []), restore(string, 2, 0, 0, ok_str_bufs, [])]),
        "chunked_empty_no_type": pa("chunked_array", []),
        "chunked_invalid_chunk": pa("chunked_array", [restore(string, 1, 0, 0, [None, pbuf(i32(0, 99)), pbuf(b"a")], [])]),
        "chunked_type_mismatch": pa("chunked_array", [restore(int64, 1, 0, 0, [None, pbuf(i64(1))], [])], string),
        "chunked_not_list": pa("chunked_array", 5),
        "scalar_int": pa("scalar", 5),
        "scalar_typed": pa("scalar", 5, int64),
        "scalar_overflow": pa("scalar", 2**70, int64),
        "scalar_str_to_int": pa("scalar", "x", int64),
        "scalar_list": pa("scalar", [1, 2]),
        "scalar_dict": pa("scalar", {"a": 1}),
        "scalar_none": pa("scalar", None),
        "scalar_bytes": pa("scalar", b"abc"),
        "scalar_timestamp": pa("scalar", 5, pa("timestamp", "s", "UTC")),
        "scalar_decimal": pa("scalar", 5, pa("decimal128", 5, 2)),
        "from_buffers_length_huge": pa("Array.from_buffers", int64, 2**40, [None, pbuf(i64(1))]),
        "from_buffers_string_past": pa("Array.from_buffers", string, 2, [None, pbuf(i32(0, 1, 300)), pbuf(b"abc")]),
        "from_buffers_missing": pa("Array.from_buffers", string, 2, [None]),
        "from_buffers_struct_no_children": pa("Array.from_buffers", st, 2, [None], 0, 0, []),
        "from_buffers_neg_offset": pa("Array.from_buffers", int64, 1, [None, pbuf(i64(1))], 0, -5),
        "from_buffers_nulls_lie": pa("Array.from_buffers", int64, 2, [pbuf(b"\0"), pbuf(i64(1, 2))], 0),
        "from_buffers_union_outside": pa("Array.from_buffers", sparse, 2, [None, pbuf(i8(0, 9))], 0, 0, [ichild, schild]),
        "from_buffers_children_not_list": pa("Array.from_buffers", st, 2, [None], 0, 0, 5),
        "from_buffers_bad_type": pa("Array.from_buffers", 5, 2, [None]),
        "record_batch_len_mismatch": pa("RecordBatch.from_arrays", [restore(int64, 1, 0, 0, [None, pbuf(i64(1))], []), restore(string, 2, 0, 0, ok_str_bufs, [])], ["a", "b"]),
        "record_batch_names_short": pa("RecordBatch.from_arrays", [restore(int64, 1, 0, 0, [None, pbuf(i64(1))], [])], []),
        "record_batch_invalid_col": pa("RecordBatch.from_arrays", [restore(string, 1, 0, 0, [None, pbuf(i32(0, 99)), pbuf(b"a")], [])], ["a"]),
        "recon_batch_schema_mismatch": pa("_reconstruct_record_batch", [restore(int64, 1, 0, 0, [None, pbuf(i64(1))], [])], pa("schema", [pa("field", "a", string)])),
        "recon_batch_len_mismatch": pa("_reconstruct_record_batch", [restore(int64, 1, 0, 0, [None, pbuf(i64(1))], []), restore(int64, 2, 0, 0, [None, pbuf(i64(1, 2))], [])], pa("schema", [pa("field", "a", int64), pa("field", "b", int64)])),
        "recon_batch_cols_short": pa("_reconstruct_record_batch", [], pa("schema", [pa("field", "a", int64)])),
        "recon_batch_not_list": pa("_reconstruct_record_batch", 5, None),
        "recon_table_mismatch": pa("_reconstruct_table", [pa("chunked_array", [restore(int64, 1, 0, 0, [None, pbuf(i64(1))], [])])], pa("schema", [pa("field", "a", string)])),
        "recon_table_len_mismatch": pa("_reconstruct_table", [pa("chunked_array", [restore(int64, 1, 0, 0, [None, pbuf(i64(1))], [])]), pa("chunked_array", [restore(int64, 2, 0, 0, [None, pbuf(i64(1, 2))], [])])], pa("schema", [pa("field", "a", int64), pa("field", "b", int64)])),
        "table_from_batches_mismatch": pa("Table.from_batches", [pa("RecordBatch.from_arrays", [restore(int64, 1, 0, 0, [None, pbuf(i64(1))], [])], ["a"]), pa("RecordBatch.from_arrays", [restore(string, 2, 0, 0, ok_str_bufs, [])], ["a"])]),
        "table_from_batches_empty": pa("Table.from_batches", []),
        "table_from_arrays_mismatch": pa("Table.from_arrays", [restore(int64, 1, 0, 0, [None, pbuf(i64(1))], []), restore(string, 2, 0, 0, ok_str_bufs, [])], ["a", "b"]),
        "restore_not_tuple": pa("_restore_array", [int64, 1, 0, 0, [], []]),
        "restore_5_items": pa("_restore_array", (int64, 1, 0, 0, [])),
        "restore_6_items": pa("_restore_array", (int64, 1, 0, 0, [None, pbuf(i64(1))], [])),
        "restore_8_items": pa("_restore_array", (int64, 1, 0, 0, [None, pbuf(i64(1))], [], None, None)),
        "restore_type_not_type": restore("int64", 1, 0, 0, [None, pbuf(i64(1))], []),
        "restore_type_int": restore(5, 1, 0, 0, [None, pbuf(i64(1))], []),
        "restore_length_float": restore(int64, 1.0, 0, 0, [None, pbuf(i64(1))], []),
        "restore_two_args": pa("_restore_array", (int64, 1, 0, 0, [None, pbuf(i64(1))], []), 5),
        "restore_kw_build": B(restore(int64, 1, 0, 0, [None, pbuf(i64(1))], []), {"x": 1}),
        "restore_extension_type": restore(pa("field", "a", int64), 1, 0, 0, [None, pbuf(i64(1))], []),
        "global_bare_type": G(PA, "int64"),
        "global_not_listed": R(G(PA, "Array"), ()),
        "global_dunder": R(G(PA, "Array.__subclasses__"), ()),
        "global_deep_attr": R(G(PA, "Array.from_buffers.__self__"), ()),
        "global_pyarrow_module": R(G("pyarrow", "scalar"), (5,)),
        "global_pyarrow_compute": R(G("pyarrow.compute", "add"), (1, 2)),
        "global_pyarrow_ipc": R(G("pyarrow.ipc", "open_file"), ("/etc/passwd",)),
    }.items():
        arr(f"factory_{name}", tree)


# ---------------------------------------------------------------------------------------
# builtins allow-list


def builtins_cases(c: Corpus) -> None:
    """bytes, bytearray, set, frozenset, complex, OrderedDict, _codecs.encode,
    copyreg._reconstructor, and containers with unhashable keys/members."""
    BI = "builtins"
    for name, tree in {
        "bytes_huge_count": R(G(BI, "bytes"), (2**40,)),
        "bytes_1GiB_count": R(G(BI, "bytes"), (2**30,)),
        "bytes_neg_count": R(G(BI, "bytes"), (-1,)),
        "bytes_list": R(G(BI, "bytes"), ([1, 2, 300],)),
        "bytes_list_ok": R(G(BI, "bytes"), ([1, 2, 3],)),
        "bytes_str_no_encoding": R(G(BI, "bytes"), ("abc",)),
        "bytes_str_encoding": R(G(BI, "bytes"), ("abc", "utf-8")),
        "bytes_str_bad_encoding": R(G(BI, "bytes"), ("abc", "no-such-codec")),
        "bytes_str_rot13": R(G(BI, "bytes"), ("abc", "rot13")),
        "bytes_none": R(G(BI, "bytes"), (None,)),
        "bytes_3_args": R(G(BI, "bytes"), ("a", "utf-8", "strict", 1)),
        "bytearray_huge_count": R(G(BI, "bytearray"), (2**40,)),
        "bytearray_1GiB_count": R(G(BI, "bytearray"), (2**30,)),
        "bytearray_float": R(G(BI, "bytearray"), (1.5,)),
        "codecs_zlib": R(G("_codecs", "encode"), ("abc", "zlib")),
        "codecs_base64": R(G("_codecs", "encode"), ("abc", "base64")),
        "codecs_hex": R(G("_codecs", "encode"), ("abc", "hex")),
        "codecs_idna": R(G("_codecs", "encode"), ("a" * 100, "idna")),
        "codecs_utf7": R(G("_codecs", "encode"), ("\u20ac", "utf-7")),
        "codecs_latin1_nonlatin": R(G("_codecs", "encode"), ("\u20ac", "latin1")),
        "codecs_surrogate": R(G("_codecs", "encode"), ("\ud800", "utf-8")),
        "codecs_bytes_arg": R(G("_codecs", "encode"), (b"abc", "latin1")),
        "codecs_errors_arg": R(G("_codecs", "encode"), ("abc", "latin1", "ignore")),
        "codecs_unknown": R(G("_codecs", "encode"), ("abc", "x-no-such")),
        "codecs_int_encoding": R(G("_codecs", "encode"), ("abc", 5)),
        "complex_strs": R(G(BI, "complex"), ("1+2j",)),
        "complex_bad_str": R(G(BI, "complex"), ("1+2jj",)),
        "complex_bigint": R(G(BI, "complex"), (2**2000, 1)),
        "complex_bigint_huge": R(G(BI, "complex"), (2**70000,)),
        "complex_3": R(G(BI, "complex"), (1, 2, 3)),
        "complex_none": R(G(BI, "complex"), (None,)),
        "complex_list": R(G(BI, "complex"), ([1],)),
        "set_unhashable_list": S([[1, 2]]),
        "set_unhashable_dict": S([{}]),
        "set_unhashable_set": S([S([1])]),
        "set_unhashable_bytearray": S([bytearray(b"x")]),
        "set_unhashable_array": S([portable((1,), "u1", b"\1")]),
        "set_unhashable_pa": S([restore(alias("int64"), 1, 0, 0, [None, pbuf(i64(1))], [])]),
        "set_tuple_with_list": S([(1, [2])]),
        "set_call_unhashable": R(G(BI, "set"), ([[1]],)),
        "set_call_dict": R(G(BI, "set"), ({"a": 1},)),
        "set_call_str": R(G(BI, "set"), ("abc",)),
        "set_call_int": R(G(BI, "set"), (5,)),
        "frozenset_unhashable": FS([[1]]),
        "frozenset_call_unhashable": R(G(BI, "frozenset"), ([{}],)),
        "dict_key_list": D([([1], 2)]),
        "dict_key_dict": D([({}, 2)]),
        "dict_key_set": D([(S([1]), 2)]),
        "dict_key_bytearray": D([(bytearray(b"k"), 2)]),
        "dict_key_array": D([(portable((1,), "u1", b"\1"), 2)]),
        "dict_key_array_0d": D([(R(SCALAR, (dt("<i4", dstate()), b"\0\0\0\0")), 2)]),
        "dict_key_pa_array": D([(restore(alias("int64"), 1, 0, 0, [None, pbuf(i64(1))], []), 2)]),
        "dict_key_pa_type": D([(alias("int64"), 2)]),
        "dict_key_tuple_list": D([((1, [2]), 2)]),
        "dict_nested_unhashable": {"a": D([([1], 2)])},
        "ordereddict_unhashable": R(G("collections", "OrderedDict"), ([([1], 2)],)),
        "ordereddict_pairs_bad": R(G("collections", "OrderedDict"), ([(1, 2, 3)],)),
        "ordereddict_int": R(G("collections", "OrderedDict"), (5,)),
        "ordereddict_build": B(R(G("collections", "OrderedDict"), ()), {"x": 1}),
        "reconstructor_set_unhashable": R(G("copyreg", "_reconstructor"), (G(BI, "set"), G(BI, "set"), [[1]])),
        "reconstructor_object": R(G("copyreg", "_reconstructor"), (G(BI, "object"), G(BI, "object"), None)),
        "reconstructor_ndarray": R(G("copyreg", "_reconstructor"), (NDARRAY, G(BI, "object"), None)),
        "reconstructor_mismatch": R(G("copyreg", "_reconstructor"), (G(BI, "bytes"), G(BI, "bytearray"), b"x")),
        "reconstructor_bytes_huge": R(G("copyreg", "_reconstructor"), (G(BI, "bytes"), G(BI, "bytes"), 2**40)),
        "reconstructor_not_global": R(G("copyreg", "_reconstructor"), (1, 2, 3)),
        "reconstructor_os": R(G("copyreg", "_reconstructor"), (G("os", "system"), G("os", "system"), "id")),
        "object_call": R(G(BI, "object"), ()),
    }.items():
        c.tree(f"{name}", tree, protos=(0, 2, 4, 5) if "unhashable" in name else (2, 5),
               buffers=[b"k"] if "memoryview" in name else ())
    c.raw("dict_key_memoryview_oob", dumps(D([(NB(), 2)]), 5), [b"k"])


# ---------------------------------------------------------------------------------------
# compressed in-band data


def compressed_cases(c: Corpus) -> None:
    """ndpickle._decompress / _decompress_target / _decompress_into: bombs and malformed chunks."""
    import numpy as np

    import ndpickle
    from ndpickle import _native

    dec = G("ndpickle", "_decompress")
    target = G("ndpickle", "_decompress_target")
    into = G("ndpickle", "_decompress_into")

    def frames(raw: Any, codec: str, shuffle: bool = False, itemsize: int = 1) -> tuple[bytes, bytes]:
        out = _native.compress_buffers([memoryview(raw).cast("B")], [itemsize], codec, shuffle, None, None)
        header, frame = out[0][0], out[0][1]
        return bytes(header), bytes(frame)

    # A valid compressed pickle, for reference and for byte edits.
    good = ndpickle.dumps(np.arange(1000, dtype="<i8"), compression="zstd")
    c.raw("valid_zstd", good)
    c.raw("valid_lz4", ndpickle.dumps(np.arange(1000, dtype="<i8"), compression="lz4"))
    for cut in (len(good) // 3, len(good) // 2, len(good) - 3):
        c.raw(f"valid_zstd_truncated_{cut}", good[:cut])
    for i, pos in enumerate(range(40, len(good) - 2, max(1, (len(good) - 42) // 24))):
        b = bytearray(good)
        b[pos] ^= 0x5A
        c.raw(f"valid_zstd_flip_{i:02d}", bytes(b))

    # 1 GiB and 3 GiB of zeros in one frame: 55 KB / 166 KB pickles.
    zeros = np.zeros(1 << 30, dtype=np.uint8)
    h1, f1 = frames(zeros, "zstd")
    c.tree("bomb_zstd_1GiB", portable((1 << 30,), "u1", R(dec, (h1, f1, False))), protos=(5,))
    c.tree("bomb_zstd_1GiB_writable", portable((1 << 30,), "u1", R(dec, (h1, f1, True))), protos=(5,))
    c.tree("bomb_zstd_1GiB_bare", R(dec, (h1, f1, False)), protos=(5,))
    del zeros
    # 3 GiB: three chunks of the same 1 GiB frame, through the chunked form.
    chain: Any = R(target, (3 << 30,))
    for k in range(3):
        last = k == 2
        chain = R(into, (chain, k << 30, h1, f1) + ((False,) if last else ()))
    c.tree("bomb_chunked_3GiB", portable((3 << 30,), "u1", chain), protos=(5,))
    # 16 GiB from 64 MiB chunks referring to one memoised frame.
    z64 = np.zeros(64 << 20, dtype=np.uint8)
    h64, f64 = frames(z64, "zstd")
    h64l, f64l = frames(z64, "lz4")
    c.tree("bomb_lz4_64MiB_bare", R(dec, (h64l, f64l, False)), protos=(5,))
    del z64
    n = 80
    chain = R(target, (n << 26,))
    for k in range(n):
        chain = R(into, (chain, k << 26, h64, f64) + ((False,) if k == n - 1 else ()))
    c.tree("bomb_chunked_5GiB_repeated_frame", portable((n << 26,), "u1", chain), protos=(5,))

    small = np.arange(4096, dtype="<i8")
    hs, fs = frames(small, "zstd", True, 8)
    hl, fl = frames(small, "lz4", False, 8)
    raw = small.nbytes
    for name, tree in {
        "ok": portable((4096,), "<i8", R(dec, (hs, fs, False))),
        "ok_lz4": portable((4096,), "<i8", R(dec, (hl, fl, True))),
        "header_garbage": R(dec, (b"\xff" * len(hs), fs, False)),
        "header_empty": R(dec, (b"", fs, False)),
        "header_short": R(dec, (hs[:-1], fs, False)),
        "header_long": R(dec, (hs + b"\0", fs, False)),
        "header_lz4_frame_zstd": R(dec, (hl, fs, False)),
        "header_zstd_frame_lz4": R(dec, (hs, fl, False)),
        "frame_empty": R(dec, (hs, b"", False)),
        "frame_truncated": R(dec, (hs, fs[: len(fs) // 2], False)),
        "frame_garbage": R(dec, (hs, b"\x28\xb5\x2f\xfd" + b"\xff" * 40, False)),
        "frame_lz4_truncated": R(dec, (hl, fl[:-5], False)),
        "frame_trailing": R(dec, (hs, fs + b"\0" * 8, False)),
        "header_str": R(dec, ("abc", fs, False)),
        "frame_none": R(dec, (hs, None, False)),
        "writable_str": R(dec, (hs, fs, "yes")),
        "writable_bigint": R(dec, (hs, fs, 2**80)),
        "args_2": R(dec, (hs, fs)),
        "args_4": R(dec, (hs, fs, False, 1)),
        "array_too_big_for_data": portable((8192,), "<i8", R(dec, (hs, fs, False))),
        "array_stride_out": portable((4096,), "<i8", R(dec, (hs, fs, False)), 0, (16,)),
        "target_zero": R(target, (0,)),
        "target_neg": R(target, (-1,)),
        "target_huge": R(target, (2**62,)),
        "target_4GiB": R(target, (1 << 32,)),
        "target_bigint": R(target, (2**80,)),
        "target_str": R(target, ("10",)),
        "target_unfinished": R(into, (R(target, (2 * raw,)), 0, hs, fs)),
        "target_unfinished_last": R(into, (R(target, (2 * raw,)), 0, hs, fs, False)),
        "target_bare_unfinished_in_list": [R(target, (raw,))],
        "chunk_ok": portable((4096,), "<i8", R(into, (R(target, (raw,)), 0, hs, fs, False))),
        "chunk_offset_gap": R(into, (R(into, (R(target, (3 * raw,)), 0, hs, fs)), raw + 8, hs, fs, False)),
        "chunk_offset_overlap": R(into, (R(into, (R(target, (2 * raw,)), 0, hs, fs)), 8, hs, fs, False)),
        "chunk_offset_neg": R(into, (R(target, (raw,)), -8, hs, fs, False)),
        "chunk_offset_huge": R(into, (R(target, (raw,)), 2**62, hs, fs, False)),
        "chunk_past_end": R(into, (R(into, (R(target, (raw + 8,)), 0, hs, fs)), raw, hs, fs, False)),
        "chunk_out_bytes": R(into, (b"\0" * raw, 0, hs, fs, False)),
        "chunk_out_bytearray": R(into, (bytearray(raw), 0, hs, fs, False)),
        "chunk_out_int": R(into, (5, 0, hs, fs, False)),
        "chunk_after_last": R(into, (R(into, (R(target, (raw,)), 0, hs, fs, False)), raw, hs, fs, False)),
        "chunk_args_3": R(into, (R(target, (raw,)), 0, hs)),
        "chunk_args_6": R(into, (R(target, (raw,)), 0, hs, fs, False, 1)),
    }.items():
        c.tree(f"dec_{name}", tree, protos=(5,))
    # The same target referred to twice (memo): written by two chains.
    shared = bytearray(b"\x80\x05")
    shared += dumps(G("ndpickle", "_decompress_target"), 5)[2:-1] + dumps((raw,), 5)[2:-1] + b"R\x94"  # memo 0
    shared += b"0"  # pop it, keep memo
    shared += b"("  # list MARK
    for _ in range(2):
        shared += dumps(G("ndpickle", "_decompress_into"), 5)[2:-1] + b"(h\x00" + dumps(0, 5)[2:-1]
        shared += dumps(hs, 5)[2:-1] + dumps(fs, 5)[2:-1] + b"\x88tR"
    shared += b"l."
    c.raw("target_shared_by_two_chains", bytes(shared))
    dup = bytearray(b"\x80\x05")
    dup += dumps(G("ndpickle", "_decompress_target"), 5)[2:-1] + dumps((raw,), 5)[2:-1] + b"R"
    dup += b"2\x86."  # DUP, TUPLE2: the unfinished target twice
    c.raw("target_dup_unfinished", bytes(dup))
    # Shuffle headers with odd item sizes over a frame of another size.
    for isz in (3, 7, 16):
        h, f = frames(small, "zstd", True, isz)
        c.tree(f"shuffle_itemsize_{isz}", portable((4096,), "<i8", R(dec, (h, f, False))), protos=(5,))
    # Header edits, byte by byte.
    for i in range(len(hs)):
        for mask in (0x01, 0x80, 0xFF):
            h = bytearray(hs)
            h[i] ^= mask
            c.tree(f"header_edit_{i:02d}_{mask:02x}", R(dec, (bytes(h), fs, False)), protos=(5,))


# ---------------------------------------------------------------------------------------
# The opcode machine: memo, nesting, stacked pickles, malformed opcodes.


def vm_cases(c: Corpus) -> None:
    """Opcode-level cases: bombs, deep nesting, bad lengths, trailing data."""
    P5 = b"\x80\x05"
    # Memo expansion (billion laughs): each level is a tuple of the previous one twice.
    for levels in (30, 64):
        b = bytearray(b"\x80\x02")
        b += b"X\x00\x04\x00\x00" + b"a" * 1024 + b"q\x00"  # memo 0: a 1 KiB string
        b += b"0"
        for i in range(levels):
            b += b"h" + bytes([i % 250]) + b"h" + bytes([i % 250]) + b"\x86q" + bytes([(i + 1) % 250]) + b"0"
        b += b"h" + bytes([levels % 250]) + b"."
        c.raw(f"memo_tuple_expansion_{levels}", bytes(b))
    for levels in (30, 64):
        b = bytearray(b"\x80\x02]q\x00")  # memo 0: a list
        b += b"X\x00\x04\x00\x00" + b"a" * 1024 + b"a"
        for i in range(levels):
            b += b"]q" + bytes([(i + 1) % 250]) + b"(h" + bytes([i % 250]) + b"h" + bytes([i % 250]) + b"e"
        b += b"."
        c.raw(f"memo_list_expansion_{levels}", bytes(b))
    # DUP expansion: [x, x] nested by DUP, APPENDS.
    for levels in (30, 100):
        b = bytearray(P5 + b"\x8c\x03abc")
        for _ in range(levels):
            b += b"2\x86"  # DUP, TUPLE2
        b += b"."
        c.raw(f"dup_tuple_expansion_{levels}", bytes(b))
    b = bytearray(P5 + b"B" + struct.pack("<I", 1 << 20) + b"\0" * (1 << 20))
    for _ in range(40):
        b += b"2\x86"
    c.raw("dup_bytes_1MiB_expansion", bytes(b + b"."))
    b = bytearray(P5 + b"\x96" + struct.pack("<Q", 1 << 16) + b"\0" * (1 << 16))
    for _ in range(40):
        b += b"2\x86"
    c.raw("dup_bytearray_expansion", bytes(b + b"."))
    c.raw("memo_dict_self_ref", P5 + b"}\x94(K\x01h\x00u.")
    c.raw("memo_list_self_ref", P5 + b"]\x94h\x00a.")
    c.raw("memo_list_self_ref_appends", P5 + b"]\x94(h\x00h\x00h\x00e.")
    c.raw("memo_tuple_self_ref_via_list", P5 + b"]\x94h\x00\x85\x94a.")
    c.raw("memo_set_self_ref", P5 + b"\x8f\x94(h\x00\x90.")
    c.raw("memo_dict_key_self", P5 + b"}\x94(h\x00K\x01u.")
    # An array remembered and used many times, copy-on-GET.
    arr_t = portable((1 << 16,), "u1", b"\0" * (1 << 16))
    b = bytearray(P5) + dumps(arr_t, 5)[2:-1] + b"\x94" + b"("
    b += b"h\x00" * 20000 + b"l."
    c.raw("memo_array_20000_refs", bytes(b))
    b = bytearray(P5) + dumps(bytearray(1 << 16), 5)[2:-1] + b"\x94("
    b += b"h\x00" * 20000 + b"l."
    c.raw("memo_bytearray_20000_refs", bytes(b))
    b = bytearray(P5) + b"\x8c\x01a\x94("
    b += b"h\x00" * 200000 + b"l."
    c.raw("memo_str_200000_refs", bytes(b))
    # Deep nesting.
    for depth in (1000, 1001, 100000):
        c.raw(f"nested_lists_{depth}", P5 + b"]" * depth + b"a" * (depth - 1) + b".")
        c.raw(f"nested_tuples_{depth}", P5 + b")" + b"\x85" * depth + b".")
        c.raw(f"nested_marks_{depth}", P5 + b"(" * depth + b"t" * depth + b".")
    c.raw("nested_dicts_100000", P5 + b"}" * 100000 + b"0" * 99999 + b".")
    c.raw("nested_unclosed_marks", P5 + b"(" * 100000 + b".")
    c.raw("nested_sets_in_frozenset", P5 + b"(" * 50000 + b"\x91" * 50000 + b".")
    c.raw("nested_arrays_as_buffers", dumps(
        _nest(lambda inner: portable((1,), "u1", inner), b"\1", 300), 5))
    c.raw("nested_dtype_dict_500", dumps(dt(_nest(lambda inner: {"names": ["a"], "formats": [inner]}, "u1", 500)), 5))
    c.raw("nested_pyarrow_list_types_500", dumps(_nest(lambda inner: pa("list_", inner), alias("int8"), 500), 5))
    c.raw("nested_pyarrow_struct_arrays_300", dumps(
        _nest(lambda inner: restore(pa("struct", [pa("field", "a", R(G(PA, "int8"), ()))]), 1, 0, 0, [None], [inner]),
              restore(alias("int8"), 1, 0, 0, [None, pbuf(b"\1")], []), 300), 5))
    # Stacked pickles and trailing bytes.
    ok = dumps([1, 2, 3], 5)
    evil = dumps(R(G("os", "system"), ("echo pwned",)), 2)
    c.raw("stacked_evil_after_stop", ok + evil)
    c.raw("stacked_two_valid", ok + ok)
    c.raw("stacked_garbage_after_stop", ok + b"\xff" * 100)
    c.raw("stacked_array_then_evil", dumps(portable((2,), "<i4", b"\0" * 8), 5) + evil)
    c.raw("stop_only", b".")
    c.raw("empty", b"")
    c.raw("proto_only", b"\x80\x05")
    c.raw("no_stop", P5 + b"K\x01")
    c.raw("stop_empty_stack", P5 + b".")
    c.raw("stop_two_items", P5 + b"K\x01K\x02.")
    c.raw("stop_inside_mark", P5 + b"(K\x01.")
    # Malformed opcodes and lengths.
    for name, data in {
        "proto_6": b"\x80\x06K\x01.",
        "proto_255": b"\x80\xffK\x01.",
        "proto_twice": b"\x80\x05\x80\x02K\x01.",
        "unknown_opcode": P5 + b"\xffK\x01.",
        "unknown_opcode_z": P5 + b"zK\x01.",
        "frame_len_lie": P5 + b"\x95" + struct.pack("<Q", 1000) + b"K\x01.",
        "frame_len_huge": P5 + b"\x95" + struct.pack("<Q", 2**63) + b"K\x01.",
        "frame_len_max": P5 + b"\x95" + b"\xff" * 8 + b"K\x01.",
        "frame_nested_mid_op": P5 + b"\x95" + struct.pack("<Q", 3) + b"X\x01\x00\x95" + struct.pack("<Q", 4) + b"\x00\x00a.",
        "binbytes_len_lie": P5 + b"B" + struct.pack("<I", 2**31) + b"abc.",
        "binbytes8_len_huge": P5 + b"\x8e" + struct.pack("<Q", 2**63) + b"abc.",
        "binbytes8_len_max": P5 + b"\x8e" + b"\xff" * 8 + b".",
        "bytearray8_len_huge": P5 + b"\x96" + struct.pack("<Q", 2**62) + b"abc.",
        "binunicode8_len_huge": P5 + b"\x8d" + struct.pack("<Q", 2**62) + b"abc.",
        "binunicode_bad_utf8": P5 + b"X\x02\x00\x00\x00\xff\xfe.",
        "binunicode_surrogate": P5 + b"X\x03\x00\x00\x00\xed\xa0\x80.",
        "short_binunicode_overlong": P5 + b"\x8c\x02\xc0\xaf.",
        "unicode_p0_bad_escape": b"V\\u12\n.",
        "unicode_p0_big_escape": b"V\\U00110000\n.",
        "string_p0_unquoted": b"Sabc\n.",
        "string_p0_bad_escape": b"S'\\x4'\n.",
        "string_p0_mismatched": b"S'abc\"\n.",
        "binstring_neg_len": b"T\xff\xff\xff\xffabc.",
        "long_p0_huge_digits": b"L" + b"9" * 300000 + b"L\n.",
        "int_p0_huge_digits": b"I" + b"9" * 300000 + b"\n.",
        "int_p0_garbage": b"I12x\n.",
        "int_p0_01_bool_like": b"I01\n.",
        "float_p0_garbage": b"F1.2.3\n.",
        "float_p0_nan": b"Fnan\n.",
        "float_p0_huge_digits": b"F" + b"1" * 200000 + b"\n.",
        "long1_len_lie": P5 + b"\x8a\xff\x01.",
        "long4_len_lie": P5 + b"\x8b" + struct.pack("<I", 2**31) + b"\x01.",
        "long4_neg_len": P5 + b"\x8b\xff\xff\xff\xff\x01.",
        "long4_200KB": P5 + b"\x8b" + struct.pack("<I", 200000) + b"\x7f" * 200000 + b".",
        "get_missing": P5 + b"h\x05.",
        "long_binget_missing": P5 + b"j\xff\xff\xff\xff.",
        "get_p0_missing": b"g99\n.",
        "get_p0_garbage": b"gabc\n.",
        "put_p0_neg": b"K\x01p-1\n.",
        "long_binput_huge": P5 + b"K\x01r\xff\xff\xff\xff.",
        "long_binput_2p31": P5 + b"K\x01r\x00\x00\x00\x80.",
        "memoize_empty_stack": P5 + b"\x94.",
        "pop_empty": P5 + b"0.",
        "pop_mark_no_mark": P5 + b"1.",
        "append_no_list": P5 + b"K\x01K\x02a.",
        "appends_on_tuple": P5 + b")(K\x01e.",
        "setitem_on_list": P5 + b"]K\x01K\x02s.",
        "setitems_odd": P5 + b"}(K\x01u.",
        "additems_on_list": P5 + b"](K\x01\x90.",
        "build_on_int": P5 + b"K\x01}b.",
        "build_on_list": P5 + b"]}(\x8c\x01aK\x01ub.",
        "build_on_dict_slots": P5 + b"}N}\x86b.",
        "reduce_non_callable": P5 + b"K\x01)R.",
        "reduce_args_not_tuple": P5 + b"\x8c\x08builtins\x8c\x03set\x93]R.",
        "newobj_set": P5 + b"\x8c\x08builtins\x8c\x03set\x93)\x81.",
        "newobj_ex_set": P5 + b"\x8c\x08builtins\x8c\x03set\x93)}\x92.",
        "newobj_ndarray": P5 + b"\x8c\x05numpy\x8c\x07ndarray\x93K\x01\x85\x81.",
        "inst_p0": b"(ibuiltins\nset\n.",
        "obj_p1": b"(cbuiltins\nset\no.",
        "persid": b"Pabc\n.",
        "binpersid": P5 + b"\x8c\x03abc Q.",
        "ext1": P5 + b"\x82\x01.",
        "ext2": P5 + b"\x83\x01\x00.",
        "ext4": P5 + b"\x84\x01\x00\x00\x00.",
        "global_no_newline": b"cbuiltins set.",
        "global_empty": b"c\n\n.",
        "global_nul": b"cbuiltins\x00\nset\n.",
        "global_unicode": b"cbuilt\xc3\xafns\nset\n.",
        "stack_global_ints": P5 + b"K\x01K\x02\x93.",
        "stack_global_dotted_dunder": P5 + b"\x8c\x05numpy\x8c\x11ndarray.__class__\x93.",
        "stack_global_empty_name": P5 + b"\x8c\x05numpy\x8c\x00\x93.",
        "stack_global_huge_name": P5 + b"\x8c\x05numpy\x8d" + struct.pack("<Q", 1 << 20) + b"a" * (1 << 20) + b"\x93.",
        "next_buffer_none_given": P5 + b"\x97.",
        "readonly_buffer_on_int": P5 + b"K\x01\x98.",
        "readonly_buffer_on_bytes": P5 + b"C\x03abc\x98.",
        "frozenset_no_mark": P5 + b"K\x01\x91.",
        "tuple3_short_stack": P5 + b"K\x01\x87.",
        "dict_odd_p0": b"(K\x01d.",
        "list_p0_no_mark": b"l.",
        "bool_p0_bad": b"I02\n.",
        "newtrue_then_setitems": P5 + b"\x88(K\x01K\x02u.",
    }.items():
        c.raw(f"op_{name}", data)
    # Truncations of a rich valid pickle at many points.
    import numpy as np

    rich = pickle.dumps({"a": np.arange(6, dtype=">i2").reshape(2, 3)[:, ::-1], "s": {1, 2}, "t": (b"x", 1.5)}, 5)
    for cut in range(1, len(rich), max(1, len(rich) // 40)):
        c.raw(f"truncated_rich_{cut:04d}", rich[:cut])


def _nest(wrap: Callable[[Any], Any], leaf: Any, depth: int) -> Any:
    x = leaf
    for _ in range(depth):
        x = wrap(x)
    return x


# ---------------------------------------------------------------------------------------
# Our own payloads for the classes scanners generate in their test code.


def scanner_class_cases(c: Corpus) -> None:
    """Code-execution globals (each spelled through GLOBAL, STACK_GLOBAL, INST, memo tricks)
    in every protocol, numpy/pyarrow-looking bypass attempts, and archive-wrapped pickles."""
    evil = [
        ("os", "system"), ("posix", "system"), ("nt", "system"), ("subprocess", "Popen"),
        ("subprocess", "check_output"), ("builtins", "eval"), ("builtins", "exec"),
        ("builtins", "getattr"), ("builtins", "__import__"), ("builtins", "open"),
        ("builtins", "compile"), ("__builtin__", "eval"), ("runpy", "run_path"),
        ("runpy", "_run_code"), ("webbrowser", "open"), ("socket", "create_connection"),
        ("httplib", "HTTPSConnection"), ("requests.api", "get"), ("aiohttp.client", "ClientSession"),
        ("pty", "spawn"), ("shutil", "rmtree"), ("asyncio.unix_events", "_UnixSubprocessTransport"),
        ("importlib", "import_module"), ("marshal", "loads"), ("types", "FunctionType"),
        ("types", "CodeType"), ("ctypes", "CDLL"), ("pydoc", "locate"), ("pickle", "loads"),
        ("_pickle", "loads"), ("numpy", "load"), ("numpy.testing._private.utils", "runstring"),
        ("numpy", "__builtins__"), ("numpy.f2py.crackfortran", "myeval"), ("numpy", "poly1d"),
        ("torch", "load"), ("torch._utils", "_rebuild_tensor_v2"), ("operator", "attrgetter"),
        ("functools", "partial"), ("code", "InteractiveInterpreter"), ("cProfile", "run"),
        ("timeit", "timeit"), ("bdb", "Bdb.run"), ("pdb", "Pdb.run"), ("trace", "Trace.run"),
        ("idlelib.pyshell", "ModifiedInterpreter.runcode"), ("lib2to3.pgen2.pgen", "ParserGenerator.make_label"),
        ("venv", "create"), ("distutils.file_util", "write_file"), ("logging.config", "listen"),
        ("copyreg", "add_extension"), ("copy_reg", "_reconstructor.__globals__"),
        ("numpy.core.multiarray", "_reconstruct.__globals__"), ("pyarrow.lib", "_restore_array.__globals__"),
        ("pyarrow", "ipc.open_file"), ("pyarrow.parquet", "read_table"), ("pyarrow.fs", "LocalFileSystem"),
        ("ndpickle", "loads"), ("ndpickle", "_native.load_mapped"), ("ml_dtypes", "__builtins__"),
        ("collections", "OrderedDict.__init__"), ("_codecs", "decode"), ("codecs", "encode"),
        ("builtins", "bytes.fromhex"), ("builtins", "set.__class__"), ("__main__", "x"),
        ("numpy", "ndarray.__reduce_ex__"), ("numpy", "dtype.__new__"), ("builtins", "object.__subclasses__"),
    ]
    for module, name in evil:
        tree = R(G(module, name), ("echo pwned",))
        slug = f"{module}_{name}".replace(".", "_")
        c.tree(f"evil_{slug}", tree, protos=(0, 2, 4))
    # The same global via a memoised STACK_GLOBAL pair where the names arrive from the memo.
    P5 = b"\x80\x05"
    b = P5 + b"\x8c\x02os\x94\x8c\x06system\x94h\x00h\x01\x93\x8c\x02id\x85R."
    c.raw("evil_memo_stack_global", b)
    c.raw("evil_inst_os_system", b"(S'id'\nios\nsystem\n.")
    c.raw("evil_obj_os_system", b"(cos\nsystem\nS'id'\no.")
    c.raw("evil_newobj_ex", P5 + b"\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85}\x92.")
    c.raw("evil_build_setstate", P5 + b"\x8c\x08builtins\x8c\x03set\x93)R}\x8c\x0c__setstate__\x8c\x02os\x8c\x06system\x93sb.")
    c.raw("evil_ext_registry", P5 + b"\x82\x01\x8c\x02id\x85R.")
    c.raw("evil_persid", b"Pos.system\n.")
    c.raw("evil_after_valid_array", dumps(portable((1,), "u1", b"\0"), 5)[:-1] + b"0" + dumps(R(G("os", "system"), ("id",)), 5)[2:])
    c.raw("evil_hidden_in_dtype_spec", dumps(dt(R(G("os", "system"), ("id",))), 5))
    c.raw("evil_hidden_in_pyarrow_state", dumps(restore(R(G("os", "system"), ("id",)), 1, 0, 0, [], []), 5))
    c.raw("evil_hidden_in_buffer_list", dumps(restore(alias("int8"), 1, 0, 0, [None, R(G("os", "system"), ("id",))], []), 5))
    c.raw("evil_reconstruct_with_os_type", dumps(B(R(RECON, (G("os", "system"), (0,), b"b")), (1, (1,), "u1", False, b"\0")), 2))
    c.raw("evil_copyreg_os", dumps(R(G("copyreg", "_reconstructor"), (G("os", "system"), G("builtins", "object"), "id")), 2))
    c.raw("evil_pickle_in_bytes", dumps(R(G("_codecs", "encode"), (dumps(R(G("os", "system"), ("id",)), 0).decode("latin1"), "latin1")), 2))
    # Torch-style zip archives holding pickles: a zip is not a pickle.
    import io
    import zipfile

    for name, payload in (("benign", dumps({"w": portable((2,), "<f4", b"\0" * 8)}, 2)),
                          ("evil", dumps(R(G("os", "system"), ("id",)), 2))):
        bio = io.BytesIO()
        with zipfile.ZipFile(bio, "w") as z:
            # Fixed timestamps: the corpus rebuilds byte for byte.
            z.writestr(zipfile.ZipInfo("archive/data.pkl", (2020, 1, 1, 0, 0, 0)), payload)
            z.writestr(zipfile.ZipInfo("archive/version", (2020, 1, 1, 0, 0, 0)), "3\n")
        c.raw(f"torch_zip_{name}", bio.getvalue())
    # A pickle that is also a valid zip (polyglot): pickle first, zip appended.
    c.raw("polyglot_pickle_zip", dumps([1], 2) + bio.getvalue())
    # Legacy torch: magic number pickle, then protocol pickle, then storage pickle.
    legacy = dumps(0x1950A86A20F9469CFC6C, 2) + dumps(1001, 2) + dumps({"x": 1}, 2)
    c.raw("torch_legacy_stacked", legacy)


# ---------------------------------------------------------------------------------------
# Mutations of valid pickles.


def mutated_cases(c: Corpus) -> None:
    """Seeded byte mutations of valid numpy/pyarrow/builtin pickles (pickle.dumps and
    ndpickle.dumps, protocols 2 to 5, in-band and out-of-band)."""
    import numpy as np
    import pyarrow as pya

    import ndpickle

    base = np.arange(24, dtype="<f8").reshape(2, 3, 4)
    objs: dict[str, Any] = {
        "f8_3d": base,
        "view_t": base.transpose(2, 0, 1),
        "view_rev": base[:, ::-1, ::2],
        "struct": np.zeros(3, dtype=[("a", "<i4"), ("b", ">f8", (2,)), ("c", "S3")]),
        "dt64": np.array(["2020-01-01", "NaT"], dtype="M8[D]"),
        "u": np.array(["ab", "\u20ac"], dtype="<U2"),
        "bcast": np.broadcast_to(np.arange(3, dtype=">i2"), (4, 3)),
        "scalar": np.float32(1.5),
        "dtype": np.dtype([("x", "<i2"), ("y", "u1")], align=True),
        "builtins": {"a": [1, 2.5, None, True], "b": (b"x", bytearray(b"yz")), "c": {1, 2}, "d": frozenset("ab"), "e": 3 + 4j},
        "pa_int": pya.array([1, None, 3]),
        "pa_str": pya.array(["a", None, "bcd"]),
        "pa_list": pya.array([[1, 2], None, [3]]),
        "pa_struct": pya.array([{"a": 1, "b": "x"}, None]),
        "pa_dict": pya.array(["a", "b", "a"]).dictionary_encode(),
        "pa_table": pya.table({"a": [1, 2], "b": ["x", "y"]}),
        "pa_chunked": pya.chunked_array([[1], [2, 3]]),
        "pa_union": pya.UnionArray.from_sparse(pya.array([0, 1], pya.int8()), [pya.array([1, 2]), pya.array(["a", "b"])]),
        "pa_ree": pya.RunEndEncodedArray.from_arrays([2, 5], [1, 2]),
        "pa_sv": pya.array(["short", "a much longer string value"], pya.string_view()),
        "pa_lv": pya.array([[1], [2, 3]], pya.list_view(pya.int64())),
    }
    rng = random.Random(20261201)
    for name, obj in objs.items():
        variants: list[tuple[str, bytes, list[bytes]]] = []
        for proto in (2, 4, 5):
            variants.append((f"pickle_p{proto}", pickle.dumps(obj, proto), []))
        bufs: list[pickle.PickleBuffer] = []
        data = pickle.dumps(obj, 5, buffer_callback=bufs.append)
        variants.append(("pickle_oob", data, [bytes(b.raw()) for b in bufs]))
        if not name.startswith("pa_") and name not in ("builtins",):
            variants.append(("ndpickle", ndpickle.dumps(obj), []))
        for vname, data, buffers in variants:
            for k in range(3):
                b = bytearray(data)
                op = rng.randrange(5)
                pos = rng.randrange(2, len(b))
                if op == 0:
                    b[pos] ^= 1 << rng.randrange(8)
                elif op == 1:
                    b[pos] = rng.choice([0x00, 0xFF, 0x7F, 0x80, 0x01])
                elif op == 2:
                    del b[pos : pos + rng.randrange(1, 4)]
                elif op == 3:
                    b[pos:pos] = bytes([rng.randrange(256)])
                else:
                    # Overwrite a little-endian integer field with an extreme value.
                    v = rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0])
                    b[pos : pos + 4] = struct.pack("<I", v)
                mbufs = list(buffers)
                if mbufs and k == 2:
                    i = rng.randrange(len(mbufs))
                    mbufs[i] = mbufs[i][: len(mbufs[i]) // 2]
                c.raw(f"{name}_{vname}_m{k}", bytes(b), mbufs)


# ---------------------------------------------------------------------------------------
# Copied data files and archive members.


def copy_sources(root: Path, checkouts: dict[str, Path]) -> None:
    """Copies the listed data files from working trees of the source repositories."""
    for dest, (repo, paths) in COPIED.items():
        key = repo.split("/")[1]
        if key not in checkouts:
            continue
        out = root / dest
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        for p in paths:
            for f in sorted((checkouts[key] / p).iterdir()):
                if f.suffix.lower() in COPY_SUFFIXES and f.stat().st_size <= COPY_MAX:
                    shutil.copyfile(f, out / (f.name + ("" if f.suffix == ".pkl" else ".pkl")))


def _zip_members(data: bytes) -> list[tuple[str, bytes]]:
    """Pickle members of a zip, read from its local headers (CRCs and the central directory
    are ignored on purpose: scanner-bypass zips corrupt them)."""
    out = []
    pos = 0
    while True:
        pos = data.find(b"PK\x03\x04", pos)
        if pos < 0 or pos + 30 > len(data):
            return out
        (flags, method, csize, nlen, xlen) = (
            struct.unpack_from("<H", data, pos + 6)[0],
            struct.unpack_from("<H", data, pos + 8)[0],
            struct.unpack_from("<I", data, pos + 18)[0],
            struct.unpack_from("<H", data, pos + 26)[0],
            struct.unpack_from("<H", data, pos + 28)[0],
        )
        name = data[pos + 30 : pos + 30 + nlen].decode("utf-8", "replace")
        start = pos + 30 + nlen + xlen
        body = data[start : start + csize]
        pos = start
        if flags & 1:  # encrypted
            continue
        try:
            raw = body if method == 0 else zlib.decompress(body, -15) if method == 8 else None
        except zlib.error:
            raw = None
        if raw is not None and (name.endswith((".pkl", "data")) or raw[:1] == b"\x80"):
            out.append((name, raw))


def extract_members(root: Path) -> None:
    """Writes each pickle member of the copied zip/PyTorch archives as a case of its own."""
    for dest in COPIED:
        src = root / dest
        if not src.exists():
            continue
        out = root / f"{dest}_members"
        if out.exists():
            shutil.rmtree(out)
        for f in sorted(src.glob("*.pkl")):
            data = f.read_bytes()
            if not data.startswith(b"PK"):
                continue
            for i, (name, raw) in enumerate(_zip_members(data)):
                out.mkdir(exist_ok=True)
                stem = f.name[: -len(".pkl")].replace(".", "_")
                (out / f"{stem}_{i}_{Path(name).name.replace('.', '_')}.pkl").write_bytes(raw)


def main() -> None:
    sys.setrecursionlimit(100000)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkout", action="append", default=[], metavar="NAME=DIR",
                    help="working tree of picklescan / modelscan to copy data files from")
    ap.add_argument("--only", action="append", default=[], help="rebuild only these crafted dirs")
    args = ap.parse_args()
    checkouts = {k: Path(v) for k, v in (a.split("=", 1) for a in args.checkout)}
    copy_sources(HERE, checkouts)
    extract_members(HERE)
    builders = {
        "numpy": numpy_cases,
        "pyarrow": pyarrow_cases,
        "builtins": builtins_cases,
        "compressed": compressed_cases,
        "vm": vm_cases,
        "scanner_classes": scanner_class_cases,
        "mutated": mutated_cases,
    }
    for name in CRAFTED:
        if args.only and name not in args.only:
            continue
        corpus = Corpus(HERE, name)
        builders[name](corpus)
        print(f"{name}: {len(corpus.names)} cases")


if __name__ == "__main__":
    main()

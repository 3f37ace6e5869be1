"""A small pickle assembler for the hostile corpus: a tree of plain values and call nodes is
written as opcodes of a chosen protocol (0 to 5), byte by byte, with no object ever built.

Nodes: ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, ``bytearray``, ``tuple``,
``list``, :class:`D` (a dict whose keys need not be hashable), :class:`S` / :class:`FS`
(sets), :class:`G` (a global), :class:`R` (``callable(*args)``), :class:`B` (``BUILD``),
:class:`NB` (an out-of-band buffer, protocol 5) and :class:`Raw` (opcodes as given).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class G:
    """A global ``module.name``."""

    module: str
    name: str


@dataclass(frozen=True)
class R:
    """``callable(*args)`` through ``REDUCE``."""

    func: Any
    args: tuple = ()


@dataclass(frozen=True)
class B:
    """``obj`` then ``BUILD`` with ``state``."""

    obj: Any
    state: Any


@dataclass(frozen=True)
class NB:
    """``NEXT_BUFFER`` (then ``READONLY_BUFFER`` when ``readonly``)."""

    readonly: bool = False


@dataclass(frozen=True)
class Raw:
    """Opcodes inserted as they are."""

    data: bytes


@dataclass(frozen=True)
class D:
    """A dict as ``(key, value)`` pairs: keys are written, never hashed."""

    items: list = field(default_factory=list)


@dataclass(frozen=True)
class S:
    """A set of ``items`` (``EMPTY_SET``/``ADDITEMS`` from protocol 4, ``builtins.set`` before)."""

    items: list = field(default_factory=list)


@dataclass(frozen=True)
class FS:
    """A frozenset of ``items`` (``FROZENSET`` from protocol 4, ``builtins.frozenset`` before)."""

    items: list = field(default_factory=list)


def _text_str(s: str) -> bytes:
    """``s`` as the raw-unicode-escape text of protocol 0's ``UNICODE`` opcode."""
    return (
        s.replace("\\", "\\u005c")
        .replace("\0", "\\u0000")
        .replace("\n", "\\u000a")
        .replace("\r", "\\u000d")
        .replace("\x1a", "\\u001a")
        .encode("raw-unicode-escape")
    )


def _long_bytes(n: int) -> bytes:
    """Two's-complement little-endian bytes of ``n`` as ``LONG1``/``LONG4`` take them."""
    if n == 0:
        return b""
    length = (n.bit_length() + 8) // 8
    return n.to_bytes(length, "little", signed=True)


class Writer:
    """Writes one tree as a pickle of ``protocol``."""

    def __init__(self, protocol: int):
        if not 0 <= protocol <= 5:
            raise ValueError(protocol)
        self.p = protocol
        self.out = bytearray()

    def dumps(self, tree: Any, *, frame: bool = False) -> bytes:
        """The whole pickle: ``PROTO`` (protocol 2+), ``tree``, ``STOP``."""
        self.out = bytearray()
        self.emit(tree)
        body = bytes(self.out) + b"."
        head = b"\x80" + bytes([self.p]) if self.p >= 2 else b""
        if frame and self.p >= 4:
            head += b"\x95" + struct.pack("<Q", len(body))
        return head + body

    def w(self, b: bytes) -> None:
        self.out += b

    def emit(self, x: Any) -> None:  # noqa: C901 - one branch per node kind
        p = self.p
        if isinstance(x, Raw):
            self.w(x.data)
        elif x is None:
            self.w(b"N")
        elif x is True or x is False:
            if p >= 2:
                self.w(b"\x88" if x else b"\x89")
            else:
                self.w(b"I01\n" if x else b"I00\n")
        elif isinstance(x, int):
            self.int_(x)
        elif isinstance(x, float):
            if p >= 1:
                self.w(b"G" + struct.pack(">d", x))
            else:
                self.w(b"F" + repr(x).encode() + b"\n")
        elif isinstance(x, str):
            self.str_(x)
        elif isinstance(x, bytearray):
            if p >= 5:
                self.w(b"\x96" + struct.pack("<Q", len(x)) + bytes(x))
            else:
                self.emit(R(G("builtins", "bytearray"), (bytes(x),)))
        elif isinstance(x, bytes):
            if p >= 3:
                if len(x) < 256:
                    self.w(b"C" + bytes([len(x)]) + x)
                else:
                    self.w(b"B" + struct.pack("<I", len(x)) + x)
            else:
                self.emit(R(G("_codecs", "encode"), (x.decode("latin1"), "latin1")))
        elif isinstance(x, tuple):
            if p >= 2 and 1 <= len(x) <= 3:
                for v in x:
                    self.emit(v)
                self.w(b"\x84\x85\x86\x87"[len(x) : len(x) + 1])
            elif p >= 1 and not x:
                self.w(b")")
            else:
                self.w(b"(")
                for v in x:
                    self.emit(v)
                self.w(b"t")
        elif isinstance(x, list):
            if p >= 1:
                self.w(b"]")
                if x:
                    self.w(b"(")
                    for v in x:
                        self.emit(v)
                    self.w(b"e")
            else:
                self.w(b"(l")
                for v in x:
                    self.emit(v)
                    self.w(b"a")
        elif isinstance(x, (dict, D)):
            items = list(x.items()) if isinstance(x, dict) else x.items
            if p >= 1:
                self.w(b"}")
                if items:
                    self.w(b"(")
                    for k, v in items:
                        self.emit(k)
                        self.emit(v)
                    self.w(b"u")
            else:
                self.w(b"(d")
                for k, v in items:
                    self.emit(k)
                    self.emit(v)
                    self.w(b"s")
        elif isinstance(x, S):
            if p >= 4:
                self.w(b"\x8f")
                if x.items:
                    self.w(b"(")
                    for v in x.items:
                        self.emit(v)
                    self.w(b"\x90")
            else:
                self.emit(R(G("builtins", "set"), (list(x.items),)))
        elif isinstance(x, FS):
            if p >= 4:
                self.w(b"(")
                for v in x.items:
                    self.emit(v)
                self.w(b"\x91")
            else:
                self.emit(R(G("builtins", "frozenset"), (list(x.items),)))
        elif isinstance(x, G):
            if p >= 4:
                self.str_(x.module)
                self.str_(x.name)
                self.w(b"\x93")
            else:
                self.w(b"c" + x.module.encode() + b"\n" + x.name.encode() + b"\n")
        elif isinstance(x, R):
            self.emit(x.func)
            self.emit(tuple(x.args))
            self.w(b"R")
        elif isinstance(x, B):
            self.emit(x.obj)
            self.emit(x.state)
            self.w(b"b")
        elif isinstance(x, NB):
            if p < 5:
                raise ValueError("out-of-band buffers need protocol 5")
            self.w(b"\x97" + (b"\x98" if x.readonly else b""))
        else:
            raise TypeError(f"cannot write {type(x).__name__}")

    def int_(self, n: int) -> None:
        p = self.p
        if p >= 1 and 0 <= n < 256:
            self.w(b"K" + bytes([n]))
        elif p >= 1 and 0 <= n < 65536:
            self.w(b"M" + struct.pack("<H", n))
        elif p >= 1 and -(2**31) <= n < 2**31:
            self.w(b"J" + struct.pack("<i", n))
        elif p >= 2:
            b = _long_bytes(n)
            if len(b) < 256:
                self.w(b"\x8a" + bytes([len(b)]) + b)
            else:
                self.w(b"\x8b" + struct.pack("<I", len(b)) + b)
        elif -(2**31) <= n < 2**31:
            self.w(b"I" + str(n).encode() + b"\n")
        else:
            self.w(b"L" + str(n).encode() + b"L\n")

    def str_(self, s: str) -> None:
        p = self.p
        if p >= 1:
            b = s.encode("utf-8", "surrogatepass")
            if p >= 4 and len(b) < 256:
                self.w(b"\x8c" + bytes([len(b)]) + b)
            else:
                self.w(b"X" + struct.pack("<I", len(b)) + b)
        else:
            self.w(b"V" + _text_str(s) + b"\n")


def dumps(tree: Any, protocol: int, *, frame: bool = False) -> bytes:
    """``tree`` as a pickle of ``protocol``."""
    return Writer(protocol).dumps(tree, frame=frame)

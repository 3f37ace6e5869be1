"""The ``ndpickle`` command (also ``python -m ndpickle``): look into pickles safely.

- ``ndpickle inspect FILE [BUFFER_FILE ...] [--depth N] [--max-items N] [--json]`` shows what a
  pickle holds without executing anything: containers, arrays (dtype, shape, strides, bytes,
  and where the data lives: in the pickle at a byte offset, in out-of-band buffer *k*, a view
  of an array shown earlier, or memory the reader made), scalars as Python prints them, and
  unknown globals as the calls they would make. The same code as the Rust binary's
  ``ndpickle inspect`` (``ndpickle::inspect``).
- ``ndpickle verify FILE [BUFFER_FILE ...]``: would :func:`ndpickle.safe_load` accept it? Prints
  what it loads to, or the first refusal.
- ``ndpickle convert IN OUT [--compression auto|lz4|zstd|none]``: reads IN safely
  (memory-mapped) and writes it to OUT as a dataset file (:func:`ndpickle.dump`: 64-byte
  aligned, memory-mappable, streamed from the mapping; OUT replaced only once written), with
  a progress bar on stderr for inputs over 100 MB (``--progress`` / ``--no-progress``).

Exit status: 0 success, 1 refused, corrupt or unreadable input, 2 usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from . import DecodeError, _native, _progress, dump, safe_load

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2

#: ``convert`` shows a progress bar for inputs larger than this (unless ``--no-progress``).
PROGRESS_MIN_BYTES = 100_000_000

_MISSING_BUFFERS_HINT = (
    "hint: this pickle has out-of-band buffers: give their files after it, in order"
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ndpickle",
        description="Look into pickles of numpy and Arrow arrays safely (nothing is executed).",
        epilog="exit status: 0 ok, 1 refused, corrupt or unreadable input, 2 usage error",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    ins = sub.add_parser("inspect", help="show what a pickle holds, read safely",
                         description="Show what a pickle holds, read safely: nothing is executed, "
                         "unknown globals are shown as the calls they would make.")
    ins.add_argument("file", metavar="FILE", help="the pickle")
    ins.add_argument("buffers", metavar="BUFFER_FILE", nargs="*",
                     help="its out-of-band buffers, one raw file each, in order")
    ins.add_argument("--depth", type=_count, default=8, metavar="N",
                     help="expand containers down to this depth (default 8)")
    ins.add_argument("--max-items", type=_count, default=20, metavar="N",
                     help="show at most N items of a container (default 20)")
    ins.add_argument("--json", action="store_true", help="print one JSON document instead")

    ver = sub.add_parser("verify", help="say whether ndpickle.safe_load accepts a pickle",
                         description="Say whether ndpickle.safe_load accepts a pickle; "
                         "print the first refusal.")
    ver.add_argument("file", metavar="FILE", help="the pickle")
    ver.add_argument("buffers", metavar="BUFFER_FILE", nargs="*",
                     help="its out-of-band buffers, one raw file each, in order")

    con = sub.add_parser("convert", help="rewrite a pickle as an aligned, mmap-able dataset file",
                         description="Read IN safely (memory-mapped) and write it to OUT as a "
                         "dataset file: a standard pickle with 64-byte aligned array data that "
                         "ndpickle.load(OUT, mmap_mode='r') maps with zero copies.")
    con.add_argument("input", metavar="IN", help="the pickle to read")
    con.add_argument("output", metavar="OUT", help="the dataset file to write (replaced atomically)")
    con.add_argument("--compression", choices=["auto", "lz4", "zstd", "none"], default="none",
                     help="compress each buffer (needs ndpickle to load; default none)")
    con.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="show a progress bar on stderr (default: for inputs over 100 MB)")
    return p


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {n}")
    return n


def _refused(path: str, e: BaseException) -> int:
    msg = str(e)
    if isinstance(e, DecodeError):
        if getattr(e, "kind", None) == "MissingBuffer":
            msg += "\n  " + _MISSING_BUFFERS_HINT
        print(f"ndpickle: {path}: {msg}", file=sys.stderr)
    else:  # OSError: the message names the file already when it comes from the reader
        name = getattr(e, "filename", None)
        where = "" if (name or path in msg) else f"{path}: "
        print(f"ndpickle: {where}{msg}", file=sys.stderr)
    return EXIT_REFUSED


def _buffers(paths: Sequence[str]) -> list[bytes]:
    out = []
    for p in paths:
        with open(p, "rb") as f:
            out.append(f.read())
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "inspect":
        try:
            out = _native.inspect_files(
                args.file, args.buffers, args.depth, args.max_items, args.json, True
            )
        except (DecodeError, OSError) as e:
            return _refused(args.file, e)
        if not args.json:
            head = f"{args.file}: {os.path.getsize(args.file)} bytes"
            if args.buffers:
                head += f", {len(args.buffers)} out-of-band buffer file(s)"
            print(head)
        sys.stdout.write(out)
        return EXIT_OK
    if args.command == "verify":
        try:
            obj = safe_load(args.file, buffers=_buffers(args.buffers) or None)
        except (DecodeError, OSError) as e:
            return _refused(args.file, e)
        print(f"{args.file}: accepted ({type(obj).__module__}.{type(obj).__qualname__})"
              .replace("builtins.", ""))
        return EXIT_OK
    # convert
    try:
        obj = safe_load(args.input)
    except (DecodeError, OSError) as e:
        return _refused(args.input, e)
    compression = None if args.compression == "none" else args.compression
    show = args.progress
    if show is None:
        show = os.path.getsize(args.input) > PROGRESS_MIN_BYTES
    progress = _progress.bar(f"writing {args.output}") if show else None
    try:
        dump(obj, args.output, compression=compression, progress=progress)
    except OSError as e:
        return _refused(args.output, e)
    print(f"{args.input} -> {args.output}: {os.path.getsize(args.output)} bytes")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover - python -m ndpickle.cli
    sys.exit(main())

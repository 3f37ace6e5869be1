"""Progress reports of long file work: ``dump(..., progress=)``, ``load(..., progress=)`` and
the command line's bar.

A progress callable takes ``(done, total)`` in bytes; ``total`` is ``None`` when it is not
known in advance (a compressed dump). It is called at most every :data:`STEP` bytes and once
at the end, with ``done`` final (and equal to ``total`` when that is known).
"""

from __future__ import annotations

import sys
from typing import IO, Any, Callable, Optional

#: ``progress(done, total)``: bytes so far, and the total when it is known.
Progress = Callable[[int, Optional[int]], object]

#: Bytes between two reports.
STEP = 8 << 20


class _Counter:
    """Counts bytes and reports them every :data:`STEP` bytes."""

    def __init__(self, progress: Progress, total: Optional[int]) -> None:
        self.progress = progress
        self.total = total
        self.done = 0
        self._next = STEP

    def add(self, n: int) -> None:
        self.done += n
        if self.done >= self._next:
            self._next = self.done + STEP
            self.progress(self.done, self.total)

    def finish(self) -> None:
        """The last report: ``done`` is final (and becomes the total when it was estimated)."""
        if self.total is not None and self.done > self.total:
            self.total = self.done
        self.progress(self.done, self.done if self.total is not None else None)


class CountingWriter(_Counter):
    """A binary file's ``write`` that counts what goes through it."""

    def __init__(self, file: IO[bytes], progress: Progress, total: Optional[int]) -> None:
        super().__init__(progress, total)
        self.file = file

    def write(self, b: Any) -> int:
        n = self.file.write(b)
        self.add(memoryview(b).nbytes if n is None else n)
        return memoryview(b).nbytes if n is None else n

    def flush(self) -> None:
        self.file.flush()


class CountingReader(_Counter):
    """A binary file's reading methods (those ``pickle.Unpickler`` uses), counted."""

    def __init__(self, file: IO[bytes], progress: Progress, total: Optional[int]) -> None:
        super().__init__(progress, total)
        self.file = file

    def read(self, n: int = -1) -> bytes:
        b = self.file.read(n)
        self.add(len(b))
        return b

    def readline(self, n: int = -1) -> bytes:
        b = self.file.readline(n)
        self.add(len(b))
        return b

    def readinto(self, buf: Any) -> int:
        # A large array arrives in one readinto: read it in STEP pieces to report between.
        view = memoryview(buf).cast("B")
        got = 0
        while got < len(view):
            n = self.file.readinto(view[got : got + STEP])  # type: ignore[attr-defined]
            if not n:
                break
            got += n
            self.add(n)
        return got


def bar(label: str, stream: IO[str] = sys.stderr) -> Progress:
    """A progress bar on ``stream``: tqdm's when tqdm is installed, else one line rewritten
    in place."""
    try:
        from tqdm import tqdm  # type: ignore[import-untyped]
    except ImportError:
        tqdm = None
    if tqdm is not None:
        t = tqdm(desc=label, unit="B", unit_scale=True, file=stream)

        def report(done: int, total: Optional[int]) -> None:
            t.total = total
            t.update(done - t.n)
            if total is not None and done >= total:
                t.close()

        return report

    def plain(done: int, total: Optional[int]) -> None:
        mb = done / 1e6
        if total:
            line = f"\r{label}: {100 * done / total:5.1f} % ({mb:,.0f} of {total / 1e6:,.0f} MB)"
        else:
            line = f"\r{label}: {mb:,.0f} MB"
        stream.write(line)
        if total is not None and done >= total:
            stream.write("\n")
        stream.flush()

    return plain

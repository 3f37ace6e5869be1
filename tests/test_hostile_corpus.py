"""The hostile corpus (``tests/hostile/``, rebuilt by ``tests/hostile/generate.py``, sources in
``tests/hostile/SOURCES.md``) through ``ndpickle.safe_loads`` and ``ndpickle.safe_load``.

Every case is loaded in a watched subprocess (``tests/hostile/worker.py``, forked from a
multiprocessing fork server, many cases per process): it must not crash (signal or abort), hang (a wall-clock limit per case, and a CPU
budget of 2 s per MB checked by the worker), or grow its RSS by more than ``RSS_CAP``; each
load must raise ``ndpickle.DecodeError`` or return an object that is valid and usable (numpy
arrays read in full, pyarrow objects ``validate(full=True)``'d and read), and must import
nothing outside numpy, pyarrow, ml_dtypes and the standard library.

When a process dies or is killed, the case it was loading is the culprit; it is run again
alone to confirm, and the batch resumes after it.

Run one directory and list every problem::

    python tests/test_hostile_corpus.py numpy pyarrow
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import pytest

HOSTILE = Path(__file__).resolve().parent / "hostile"
# Most a load may grow the worker's resident memory (every corpus file is under 1 MB).
RSS_CAP = 1 << 30
# Address space the worker may map beyond what it has after importing numpy and pyarrow.
AS_CAP = 3 << 30
# A case (two loads and the checks) is killed as a hang when the worker has spent this much
# CPU time on it (the worker's own budget is 2 s per load and per MB) or, on a machine too
# loaded to give it that, this much wall time.
CPU_BASE = 6.0
CPU_PER_MB = 6.0
WALL_LIMIT = 120.0
POLL = 0.02
_TICK = os.sysconf("SC_CLK_TCK")


def corpus_dirs() -> list[str]:
    """Directories of cases."""
    return sorted(p.name for p in HOSTILE.iterdir() if p.is_dir() and any(p.glob("*.pkl")))


def cases(dirname: str) -> list[Path]:
    """The cases of one directory."""
    return sorted((HOSTILE / dirname).glob("*.pkl"))


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def _case_bytes(p: Path) -> int:
    return p.stat().st_size + sum(b.stat().st_size for b in p.parent.glob(p.stem + ".buf*"))


_CTX = None


def _context():  # type: ignore[no-untyped-def]
    """A multiprocessing fork server with numpy, pyarrow and the worker imported, so that a
    fresh worker after a crash costs a fork, not an interpreter start."""
    global _CTX
    if _CTX is None:
        import multiprocessing

        if str(HOSTILE) not in sys.path:
            sys.path.insert(0, str(HOSTILE))
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["numpy", "pyarrow", "ml_dtypes", "ndpickle", "worker"])
        _CTX = ctx
    return _CTX


def _run_batch(batch: list[Path]) -> tuple[dict[int, list[str]], int | None, str]:
    """Runs cases in one worker until it finishes or dies. Returns the problems of the
    cases it finished, the index of the case it was on when it died (or None) and why."""
    ctx = _context()
    import worker  # tests/hostile, put on sys.path by _context

    recv, send = ctx.Pipe(duplex=False)
    fd, err_path = tempfile.mkstemp(prefix="ndpickle-hostile-", suffix=".err")
    os.close(fd)
    proc = ctx.Process(target=worker.run_batch, args=([str(p) for p in batch], send, AS_CAP, err_path))
    proc.start()
    send.close()
    done: dict[int, list[str]] = {}
    current: int | None = None
    started = time.monotonic()
    cpu0 = 0.0
    base_rss = 0
    why = ""
    eof = False
    try:
        while True:
            while not eof and recv.poll(POLL):
                try:
                    msg = recv.recv()
                except (EOFError, OSError):
                    eof = True
                    break
                if msg[0] == "start":
                    current = msg[1]
                    started = time.monotonic()
                    cpu0 = _cpu(proc.pid)
                    if not base_rss:
                        base_rss = _rss(proc.pid)
                else:
                    done[msg[1]] = msg[2]
                    current = None
            if eof or not proc.is_alive():
                proc.join()
                break
            if current is not None:
                limit = CPU_BASE + CPU_PER_MB * _case_bytes(batch[current]) / 1e6
                used = _cpu(proc.pid) - cpu0
                wall = time.monotonic() - started
                if used > limit or wall > WALL_LIMIT:
                    why = f"hang: killed after {used:.1f} s of CPU, {wall:.0f} s of wall time"
                    break
                rss = _rss(proc.pid)
                if base_rss and rss - base_rss > RSS_CAP:
                    why = f"RSS grew by {(rss - base_rss) >> 20} MiB (cap {RSS_CAP >> 20} MiB)"
                    break
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        recv.close()
    with open(err_path, encoding="utf-8", errors="replace") as f:
        err = f.read()
    os.unlink(err_path)
    if current is None and proc.exitcode == 0 and len(done) == len(batch):
        return done, None, ""
    if not why:
        rc = proc.exitcode
        if rc is not None and rc < 0:
            why = f"crash: {signal.Signals(-rc).name}"
        else:
            why = f"crash: exit status {rc}"
        lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
        keys = ("panicked", "memory allocation", "Fatal Python error", "Error", "error:")
        tail = [ln for ln in lines if any(k in ln for k in keys)][:2] or lines[-2:]
        if tail:
            why += " (" + " | ".join(t[:200] for t in tail) + ")"
    if current is None:
        current = max(done, default=-1) + 1
    return done, current, why


def run_cases(paths: list[Path], batch_size: int = 150) -> dict[Path, list[str]]:
    """Problems per case (an empty list: the case passed)."""
    results: dict[Path, list[str]] = {}
    todo = list(paths)
    while todo:
        batch = todo[:batch_size]
        done, died, why = _run_batch(batch)
        for i, problems in done.items():
            results[batch[i]] = problems
        if died is None:
            todo = todo[len(batch) :]
            continue
        culprit = batch[died]
        if died > 0 and why.startswith("crash"):
            alone_done, alone_died, alone_why = _run_batch([culprit])
            if alone_died is None:
                why += "; alone it " + ("passes" if not alone_done[0] else "gives " + "; ".join(alone_done[0]))
        results[culprit] = [why]
        todo = todo[todo.index(culprit) + 1 :] if culprit in todo else todo[len(batch) :]
    return results


def _report(results: dict[Path, list[str]]) -> str:
    lines = []
    for p, problems in sorted(results.items()):
        for pr in problems:
            lines.append(f"{p.relative_to(HOSTILE)}: {pr}")
    return "\n".join(lines)


def test_corpus_size() -> None:
    """The corpus has at least 500 cases from at least 5 sources (see SOURCES.md)."""
    dirs = corpus_dirs()
    total = sum(len(cases(d)) for d in dirs)
    assert total >= 500, total
    assert len(dirs) >= 5, dirs


@pytest.mark.parametrize("dirname", corpus_dirs())
def test_hostile_corpus(dirname: str) -> None:
    """Each case of ``dirname`` is refused with DecodeError or gives a valid, usable object."""
    paths = cases(dirname)
    results = run_cases(paths)
    assert set(results) == set(paths)
    bad = {p: pr for p, pr in results.items() if pr}
    assert not bad, f"{len(bad)} of {len(paths)} cases fail:\n{_report(bad)}"


if __name__ == "__main__":
    t0 = time.monotonic()
    dirs = sys.argv[1:] or corpus_dirs()
    total = failed = 0
    for d in dirs:
        t1 = time.monotonic()
        res = run_cases(cases(d))
        print(f"# {d}: {sum(1 for v in res.values() if v)} of {len(res)} fail, {time.monotonic() - t1:.0f} s", flush=True)
        total += len(res)
        failed += sum(1 for v in res.values() if v)
        rep = _report({p: v for p, v in res.items() if v})
        if rep:
            print(rep, flush=True)
    print(f"# {failed} of {total} cases fail; {time.monotonic() - t0:.1f} s", flush=True)

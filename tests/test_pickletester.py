"""CPython's own unpickling test cases (``test.pickletester.AbstractUnpickleTests``, shipped
with CPython) run against the ndpickle reader.

The cases are collected at test time: every byte string that the CPython tests hand to
``loads`` is recorded and classified by what CPython's own unpickler does with it. Then the
``read_check`` example of the core crate reads all of them and reports one JSON line each.

* Inputs CPython rejects must be rejected by ndpickle with a clean ``DecodeError``.
* Inputs CPython accepts must load, or be refused cleanly because they name globals
  outside the allow-list (test classes from ``__main__``/``test.pickletester``) or use
  features ndpickle refuses by design (persistent ids, extension codes...).
* Nothing may panic, and every input is read in well under a second.
"""

import json
import os
import pickle
import subprocess
import unittest

import pytest

pickletester = pytest.importorskip("test.pickletester")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Clean refusals acceptable for inputs that CPython loads.
BY_DESIGN = ("is not allowed", "not supported", "persistent id", "recursive structure")


def collect():
    """Runs every AbstractUnpickleTests test with a recording ``loads``."""
    cases = []

    class Recorder(pickletester.AbstractUnpickleTests, unittest.TestCase):
        unpickler = pickle.Unpickler
        bad_stack_errors = (Exception,)
        bad_mark_errors = (Exception,)
        truncated_errors = (Exception,)
        size_overflow_errors = (Exception,)

        def loads(self, buf, **kwds):
            cases.append(bytes(buf))
            return pickle.loads(buf, **kwds)

        def check_unpickling_error(self, errors, data):
            cases.append(bytes(data))

    names = unittest.TestLoader().getTestCaseNames(Recorder)
    suite = unittest.TestSuite(Recorder(n) for n in names)
    suite.run(unittest.TestResult())
    return {data: cpython_accepts(data) for data in cases}, len(names)


def cpython_accepts(data):
    """Whether CPython loads ``data``, with the default ASCII decoding of Python 2 ``str``
    or with ``encoding='latin1'`` (ndpickle reads Python 2 ``str`` as latin-1, which
    numpy's Python 2 pickles need)."""
    for kwds in ({}, {"encoding": "latin1"}):
        try:
            pickle.loads(data, **kwds)
        except Exception:
            continue
        return True
    return False


def run_reader(tmp_path, cases, *flags):
    files = {}
    for i, (data, ok) in enumerate(cases.items()):
        name = tmp_path / f"{'good' if ok else 'bad'}_{i:05d}.bin"
        name.write_bytes(data)
        files[str(name)] = (data, ok)
    env = dict(os.environ)
    out = subprocess.run(
        ["cargo", "run", "-q", "-p", "ndpickle", "--example", "read_check", "--", *flags, str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    results = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(results) == len(files)
    return files, results


def test_cpython_unpickle_cases(tmp_path):
    cases, ntests = collect()
    assert ntests >= 40
    bad = sum(1 for ok in cases.values() if not ok)
    good = len(cases) - bad
    assert bad >= 100 and good >= 20, (bad, good)
    files, results = run_reader(tmp_path, cases)
    failures = []
    loaded_good = 0
    for r in results:
        data, ok = files[r["file"]]
        if r["panic"]:
            failures.append(f"panic on {data!r}")
            continue
        if r["ms"] > 1000:
            failures.append(f"slow ({r['ms']} ms) on {data[:40]!r}")
        if not ok and r["ok"]:
            failures.append(f"accepted bad input {data!r} as {r['summary']}")
        if ok and not r["ok"]:
            if not any(s in r["error"] for s in BY_DESIGN):
                failures.append(f"rejected good input {data[:60]!r}: {r['error']}")
        if ok and r["ok"]:
            loaded_good += 1
    assert not failures, "\n".join(failures)
    assert loaded_good >= 20, (loaded_good, good)
    # With opaque globals, inputs CPython accepts load (foreign classes become opaque
    # nodes) except self-referencing structures, which a tree cannot hold; bad
    # inputs are still rejected unless their only fault is what a foreign callable would
    # do when called (opaque nodes are never called).
    default = {r["file"]: r for r in results}
    files, results = run_reader(tmp_path, cases, "--opaque")
    for r in results:
        data, ok = files[r["file"]]
        assert not r["panic"], data
        if ok and not r["ok"]:
            # Self-references, and items added to opaque objects by APPEND/SETITEM (which
            # an opaque node has no place for), are refused clearly.
            assert "recursive structure" in r["error"] or "is not supported" in r["error"], (data[:80], r["error"])
        if not ok and r["ok"]:
            assert "is not allowed" in default[r["file"]]["error"], (data, r)

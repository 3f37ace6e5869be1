"""The package's types: ``mypy --strict`` on ``python/ndpickle`` (the source tree), and the
hand-written stub of the extension checked against the installed extension by
``mypy.stubtest``. Run by the default test run, so a typing regression fails CI."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_mypy_strict() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "python/ndpickle"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_stub_matches_the_extension() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "ndpickle._native"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert r.returncode == 0, r.stdout + r.stderr

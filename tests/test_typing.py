"""The package's types: ``mypy --strict`` on ``python/ndpickle`` (the source tree), in the
default test run, so a typing regression fails CI. (The stub of the extension is checked
against the installed extension by ``mypy.stubtest`` in ``test_python_api.py``.)"""

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


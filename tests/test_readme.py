"""Every Python block of the README runs as written: each is saved as a script of its own and
run by a fresh interpreter in an empty directory (so that files it writes land there and
``if __name__ == "__main__":`` guards work as they do for a reader who copies the block)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

README = (ROOT / "README.md").read_text()
BLOCKS = [
    (README.count("\n", 0, m.start()) + 1, m.group(1))
    for m in re.finditer(r"^```python\n(.*?)^```", README, re.S | re.M)
]


def test_the_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 9


@pytest.mark.parametrize("line,code", BLOCKS, ids=[f"line{line}" for line, _ in BLOCKS])
def test_readme_block_runs(line: int, code: str, tmp_path: Path) -> None:
    script = tmp_path / f"readme_line{line}.py"
    script.write_text(code)
    out = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, f"README block at line {line}:\n{out.stderr[-4000:]}"

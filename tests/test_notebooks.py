"""Executes every notebook under ``notebooks/`` with a fresh kernel (nbclient), as a reader
would run it: any cell that raises fails the test. The stored outputs are refreshed with
``.venv/bin/jupyter execute --inplace notebooks/*.ipynb``."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert len(names) >= 5, names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    # jupyter_client starts the "python3" kernel with this interpreter (the venv's), in
    # notebooks/ as a reader would.
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors, errors
    # Stored outputs exist: the committed notebook was executed before it was committed.
    stored = nbformat.read(path, as_version=4)
    assert all(c.get("execution_count") for c in stored.cells if c.cell_type == "code"), (
        f"{path.name} was committed without its outputs"
    )

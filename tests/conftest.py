"""Shared pytest fixtures: the repository root, and the writer's case files built by Rust."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CASES_DIR: Path | None = None


def cargo_example(
    name: str, *args: str, features: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Builds and runs a Rust example of the core crate in release mode."""
    feats = ["--features", ",".join(features)] if features else []
    return subprocess.run(
        ["cargo", "run", "--quiet", "--release", "-p", "ndpickle", *feats, "--example", name, "--", *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )


def writer_cases_dir() -> Path:
    """Directory of the writer's test cases: `$NDPICKLE_CASES_DIR`, or generated once."""
    global _CASES_DIR
    if _CASES_DIR is None:
        env = os.environ.get("NDPICKLE_CASES_DIR")
        if env and (Path(env) / "manifest.jsonl").exists():
            _CASES_DIR = Path(env)
        else:
            out = Path(env) if env else Path(tempfile.mkdtemp(prefix="ndpickle-cases-"))
            cargo_example("write_cases", str(out))
            _CASES_DIR = out
    return _CASES_DIR


def writer_manifest() -> list[dict]:
    """One dict per written case (see crates/ndpickle/examples/write_cases.rs)."""
    with open(writer_cases_dir() / "manifest.jsonl") as f:
        return [json.loads(line) for line in f]


_ARROW_DIR: Path | None = None


def arrow_cases_dir() -> Path:
    """Directory of the Arrow writer's cases: `$NDPICKLE_ARROW_CASES_DIR`, or generated once."""
    global _ARROW_DIR
    if _ARROW_DIR is None:
        env = os.environ.get("NDPICKLE_ARROW_CASES_DIR")
        if env and (Path(env) / "manifest.jsonl").exists():
            _ARROW_DIR = Path(env)
        else:
            out = Path(env) if env else Path(tempfile.mkdtemp(prefix="ndpickle-arrow-"))
            cargo_example("arrow_cases", str(out), features=("arrow",))
            _ARROW_DIR = out
    return _ARROW_DIR


def arrow_manifest() -> list[dict]:
    """One dict per Arrow case (see crates/ndpickle/examples/arrow_cases.rs)."""
    with open(arrow_cases_dir() / "manifest.jsonl") as f:
        return [json.loads(line) for line in f]

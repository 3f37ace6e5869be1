"""The ``ndpickle`` command: the Python entry point (``ndpickle`` script, ``python -m
ndpickle``) and the Rust binary, which share ``ndpickle::inspect``. Every command and every
error path, with the exit status each documents (0 ok, 1 refused/corrupt/unreadable, 2 usage)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ndpickle
from conftest import ROOT

SCRIPT = Path(sys.executable).with_name("ndpickle")


def py_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ndpickle", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def rust_cli() -> Path:
    exe = ROOT / "target" / "release" / "ndpickle"
    if not exe.exists():
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "ndpickle-cli"], cwd=ROOT, check=True)
    return exe


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    a = np.arange(128 * 128.0).reshape(128, 128)  # 128 KiB: views of it are written as views
    obj = {"a": a, "rev": a[::-1], "n": 3, "s": "it's", "f": 0.1, "c": 1 - 2j, "big": 2**70,
           "b": b"\x00ab", "t": (1, None, True), "many": list(range(30))}
    out = {}
    out["inband"] = d / "inband.pkl"
    ndpickle.dump(obj, out["inband"])
    header, fr = ndpickle.serialize(obj, compression=None)
    out["oob"] = d / "oob.pkl"
    out["oob"].write_bytes(bytes(fr[0]))
    for i, f in enumerate(fr[1:]):
        out[f"buf{i}"] = d / f"oob.buf.{i}"
        out[f"buf{i}"].write_bytes(bytes(f))
    out["nbufs"] = len(fr) - 1  # type: ignore[assignment]
    out["zstd"] = d / "zstd.pkl"
    ndpickle.dump({"a": a, "rev": a[::-1]}, out["zstd"], compression="zstd")
    out["auto"] = d / "auto.pkl"
    ndpickle.dump({"a": a}, out["auto"], compression="auto")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    out["evil"] = d / "evil.pkl"
    out["evil"].write_bytes(pickle.dumps(Evil()))
    out["corrupt"] = d / "corrupt.pkl"
    out["corrupt"].write_bytes(b"\x80\x05\x8e" + (1 << 60).to_bytes(8, "little") + b".")
    out["empty"] = d / "empty.pkl"
    out["empty"].write_bytes(b"")
    out["dir"] = d
    return out


def bufs(files) -> list[str]:
    return [str(files[f"buf{i}"]) for i in range(files["nbufs"])]


def test_script_and_module_are_installed(files) -> None:
    assert SCRIPT.exists(), "pip install . gives an ndpickle command"
    a = subprocess.run([str(SCRIPT), "inspect", str(files["inband"])], capture_output=True, text=True)
    b = py_cli("inspect", str(files["inband"]))
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    assert a.stdout == b.stdout


def test_help_on_every_command() -> None:
    for cmd in ([], ["inspect"], ["verify"], ["convert"]):
        r = py_cli(*cmd, "--help")
        assert r.returncode == 0 and "usage: ndpickle" in r.stdout, r.stderr


def test_inspect_text(files) -> None:
    r = py_cli("inspect", str(files["inband"]))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{files['inband']}: ")
    assert lines[1] == "dict of 10"
    assert "'a': numpy.ndarray dtype=<f8 shape=(128, 128) strides=(1024, 8) nbytes=131072, in-band at byte " in r.stdout
    assert "'rev': numpy.ndarray dtype=<f8 shape=(128, 128) strides=(-1024, 8) nbytes=131072, view of obj['a']" in r.stdout
    for line in ["'n': 3", "'s': \"it's\"", "'f': 0.1", "'c': complex (1-2j)", f"'big': {2**70}",
                 "'b': bytes b'\\x00ab'", "'t': tuple of 3", "    [1]: None", "    [2]: True",
                 "'many': list of 30", "    … 10 more"]:
        assert line in r.stdout, (line, r.stdout)


def test_inspect_out_of_band_depth_items_json(files) -> None:
    r = py_cli("inspect", str(files["oob"]), *bufs(files), "--max-items", "2", "--depth", "1")
    assert r.returncode == 0, r.stderr
    assert "'a': numpy.ndarray dtype=<f8 shape=(128, 128) strides=(1024, 8) nbytes=131072, out-of-band buffer 0" in r.stdout
    assert "… 8 more" in r.stdout
    j = py_cli("inspect", str(files["oob"]), *bufs(files), "--json")
    assert j.returncode == 0, j.stderr
    doc = json.loads(j.stdout)
    assert doc["type"] == "dict" and doc["len"] == 10
    first = doc["items"][0]
    assert first["key"] == "'a'" and first["shape"] == [128, 128] and first["data"] == "out-of-band buffer 0"
    deep = json.loads(py_cli("inspect", str(files["inband"]), "--json", "--depth", "0").stdout)
    assert deep["omitted"] == 10 and "items" not in deep


def test_inspect_names_codec_and_ratio_of_compressed_data(files, rust_cli) -> None:
    """Compressed buffers are shown with their codec, sizes and ratio; a view of one as a view."""
    r = py_cli("inspect", str(files["zstd"]))
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.strip().startswith("'a':"))
    assert "nbytes=131072, decompressed (shuffle+zstd, 131072 bytes from " in line, line
    compressed = int(line.split(" bytes from ")[1].split(":")[0])
    ratio = float(line.split(": ")[-1].rstrip("x)"))
    assert compressed < 131072 and ratio == pytest.approx(131072 / compressed, abs=0.01), line
    assert "'rev': numpy.ndarray dtype=<f8 shape=(128, 128) strides=(-1024, 8) nbytes=131072, view of obj['a']" in r.stdout
    doc = json.loads(py_cli("inspect", str(files["auto"]), "--json").stdout)
    a = doc["items"][0]
    assert a["codec"] == "shuffle+lz4" and 0 < a["compressed_nbytes"] < a["nbytes"], a
    assert a["data"].startswith("decompressed (shuffle+lz4, 131072 bytes from "), a
    rs = subprocess.run([str(rust_cli), "inspect", str(files["zstd"])], capture_output=True, text=True)
    assert rs.returncode == 0 and rs.stdout.splitlines()[1:] == r.stdout.splitlines()[1:], rs.stderr


def test_inspect_shows_what_it_would_not_run(files) -> None:
    r = py_cli("inspect", str(files["evil"]))
    assert r.returncode == 0, r.stderr
    assert "object callable=posix.system args=1" in r.stdout and "'echo pwned'" in r.stdout


def test_verify(files) -> None:
    ok = py_cli("verify", str(files["inband"]))
    assert ok.returncode == 0 and ok.stdout.strip() == f"{files['inband']}: accepted (dict)", ok
    ok = py_cli("verify", str(files["oob"]), *bufs(files))
    assert ok.returncode == 0, ok.stderr
    bad = py_cli("verify", str(files["evil"]))
    assert bad.returncode == 1 and "global 'posix.system' is not allowed" in bad.stderr
    assert str(files["evil"]) in bad.stderr


def test_convert(files, tmp_path) -> None:
    out = tmp_path / "out.pkl"
    r = py_cli("convert", str(files["oob"]), str(out))
    assert r.returncode == 1 and "hint: this pickle has out-of-band buffers" in r.stderr
    for compression in ("none", "lz4", "zstd", "auto"):
        r = py_cli("convert", str(files["inband"]), str(out), "--compression", compression)
        assert r.returncode == 0, r.stderr
        back = ndpickle.load(out)
        assert np.array_equal(back["rev"], np.arange(128 * 128.0).reshape(128, 128)[::-1]) and back["many"] == list(range(30))
    plain = tmp_path / "plain.pkl"
    assert py_cli("convert", str(files["inband"]), str(plain)).returncode == 0
    m = ndpickle.load(plain, mmap_mode="r")
    assert not m["a"].flags.writeable and m["a"].base is not None  # a view of the mapping
    with open(plain, "rb") as f:
        assert pickle.load(f)["s"] == "it's"  # anywhere, pickle alone


@pytest.mark.parametrize(
    "args,status,message",
    [
        (["inspect", "{dir}/nope.pkl"], 1, "No such file or directory"),
        (["inspect", "{dir}"], 1, "{dir}"),
        (["inspect", "{corrupt}"], 1, "BINBYTES8 bytes needs"),
        (["inspect", "{empty}"], 1, "{empty}"),
        (["inspect", "{oob}"], 1, "hint: this pickle has out-of-band buffers"),
        (["inspect", "{oob}", "{dir}/nope.buf"], 1, "nope.buf"),
        (["verify", "{corrupt}"], 1, "{corrupt}"),
        (["verify", "{dir}/nope.pkl"], 1, "nope.pkl"),
        (["convert", "{corrupt}", "{dir}/x.pkl"], 1, "{corrupt}"),
        (["convert", "{inband}", "{dir}/no/such/dir/x.pkl"], 1, "x.pkl"),
        (["inspect"], 2, "the following arguments are required: FILE"),
        (["inspect", "{inband}", "--depth", "x"], 2, "not a number"),
        (["inspect", "{inband}", "--max-items", "-1"], 2, "must be 0 or more"),
        (["convert", "{inband}", "{dir}/x.pkl", "--compression", "gzip"], 2, "invalid choice"),
        (["frobnicate"], 2, "invalid choice"),
        ([], 2, "required: COMMAND"),
    ],
)
def test_error_paths(files, args, status, message) -> None:
    fmt = {k: v for k, v in files.items() if isinstance(v, Path)}
    argv = [a.format(**fmt) for a in args]
    r = py_cli(*argv)
    assert r.returncode == status, (r.stdout, r.stderr)
    assert message.format(**fmt) in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_rust_binary_prints_the_same_tree(files, rust_cli) -> None:
    for args in ([str(files["inband"])], [str(files["oob"]), *bufs(files), "--max-items", "3"]):
        py = py_cli("inspect", *args)
        rs = subprocess.run([str(rust_cli), "inspect", *args], capture_output=True, text=True)
        assert py.returncode == rs.returncode == 0, rs.stderr
        # The first line (file summary) differs in wording; the tree is the same code's.
        assert py.stdout.splitlines()[1:] == rs.stdout.splitlines()[1:]
    j = subprocess.run([str(rust_cli), "inspect", str(files["inband"]), "--json"], capture_output=True, text=True)
    assert json.loads(j.stdout) == json.loads(py_cli("inspect", str(files["inband"]), "--json").stdout)


@pytest.mark.parametrize(
    "args,status,message",
    [
        (["inspect", "{dir}/nope.pkl"], 1, "cannot read {dir}/nope.pkl"),
        (["inspect", "{corrupt}"], 1, "{corrupt}: at byte 2 (BINBYTES8)"),
        (["inspect", "{oob}"], 1, "hint: this pickle has out-of-band buffers"),
        (["verify", "{evil}"], 1, "global 'posix.system' is not allowed"),
        (["inspect"], 2, "no FILE given"),
        (["inspect", "{inband}", "--depth"], 2, "--depth needs a number"),
        (["inspect", "{inband}", "--bogus"], 2, "unknown option --bogus"),
        (["frobnicate"], 2, "unknown command"),
    ],
)
def test_rust_binary_error_paths(files, rust_cli, args, status, message) -> None:
    fmt = {k: v for k, v in files.items() if isinstance(v, Path)}
    r = subprocess.run([str(rust_cli), *[a.format(**fmt) for a in args]], capture_output=True, text=True)
    assert r.returncode == status, (r.stdout, r.stderr)
    assert message.format(**fmt) in r.stderr, r.stderr


def test_rust_binary_help(rust_cli) -> None:
    r = subprocess.run([str(rust_cli), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "usage: ndpickle inspect" in r.stdout
    r = subprocess.run([str(rust_cli)], capture_output=True, text=True)
    assert r.returncode == 2 and "usage:" in r.stdout

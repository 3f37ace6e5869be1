"""pytest plugin for running pyarrow's own pickle tests with ndpickle's writer.

Loaded by tests/test_pickler_arrow.py as ``-p pyarrow_pickle_plugin`` on the installed
``pyarrow/tests``: the ``builtin_pickle`` fixture (one of the two params of pyarrow's
``pickle_module`` fixture) becomes a module whose ``dumps`` is ``ndpickle.dumps`` and whose
``loads`` is ``pickle.loads`` (``NDPICKLE_PICKLE_LOADS=pickle``) or ``ndpickle.safe_loads``
(``=safe``). Each test's outcome is appended to ``$NDPICKLE_PICKLE_REPORT``: ``passed``,
``failed`` or, for a test that failed on a ``DecodeError`` of ``safe_loads``, ``refused``
with the error; ``wrote`` lines count the pickles ndpickle's Arrow writer produced.
"""

from __future__ import annotations

import os
import pickle
import types
from typing import Any, Optional

import pytest

import ndpickle

_REPORT = os.environ.get("NDPICKLE_PICKLE_REPORT", "ndpickle-pickle-report.txt")
_MODE = os.environ.get("NDPICKLE_PICKLE_LOADS", "pickle")
_last_refusal: Optional[str] = None


def _log(line: str) -> None:
    with open(_REPORT, "a") as f:
        f.write(line.replace("\n", " ") + "\n")


def _dumps(obj: Any, protocol: Optional[int] = None, **kwargs: Any) -> bytes:
    kwargs.pop("fix_imports", None)
    proto = 5 if protocol is None or protocol < 0 else protocol
    data = ndpickle.dumps(obj, protocol=proto, **kwargs)
    if b"Array.from_buffers" in data:
        _log(f"wrote {type(obj).__name__}")
    return data


def _loads(data: Any, **kwargs: Any) -> Any:
    global _last_refusal
    if _MODE == "pickle":
        return pickle.loads(data, **kwargs)
    try:
        return ndpickle.safe_loads(data, **kwargs)
    except ndpickle.DecodeError as e:
        _last_refusal = f"{getattr(e, 'kind', '?')}: {e}"
        raise


def _module() -> types.ModuleType:
    m = types.ModuleType("ndpickle_as_pickle")
    m.__dict__.update({k: v for k, v in vars(pickle).items() if not k.startswith("__")})
    m.dumps = _dumps  # type: ignore[attr-defined]
    m.loads = _loads  # type: ignore[attr-defined]
    m.HIGHEST_PROTOCOL = 5  # type: ignore[attr-defined]
    return m


_MOD = _module()


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(fixturedef: Any, request: Any) -> Any:
    if fixturedef.argname == "builtin_pickle":
        fixturedef.cached_result = (_MOD, fixturedef.cache_key(request), None)
        return _MOD
    return None


def pytest_runtest_setup(item: Any) -> None:
    global _last_refusal
    _last_refusal = None


def pytest_runtest_logreport(report: Any) -> None:
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if report.passed:
            _log(f"passed {report.nodeid}")
        elif report.skipped:
            _log(f"skipped {report.nodeid}")
        elif _last_refusal is not None:
            _log(f"refused {report.nodeid}: {_last_refusal}")
        else:
            _log(f"failed {report.nodeid}: {str(report.longrepr)[-600:]}")

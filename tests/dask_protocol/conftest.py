"""Runs distributed's own protocol tests (copied unchanged beside this file) against ndpickle.

Every test runs in two modes:

- ``family``: ndpickle's ``"ndpickle"`` family comes first wherever Dask picks serializers:
  a call with Dask's default (``None``) uses ``("ndpickle", "dask", "pickle")`` and an
  explicit list that names ``"pickle"`` gets ``"ndpickle"`` just before it (after the
  test's own families; deserializer lists naming ``"pickle"`` accept ``"ndpickle"`` too).
  Lists without ``"pickle"`` (a test asking for msgpack alone, say) are left as they are.
- ``dispatch``: Dask's own serializers, with ``ndpickle.dask``'s switch on (numpy arrays go
  through ndpickle inside Dask's ``"dask"`` family), as in a preloaded process.

A few tests check Dask internals that ndpickle changes by design; they are listed in
``DIFFERENT_BY_DESIGN`` with the reason, and must fail (``xfail(strict=True)``): a test that
starts passing there is a sign the list is stale. Each test runs twice in one process, so
what a run registers with cloudpickle is undone after it.
"""

from __future__ import annotations

import re
import sys
from typing import Any, Iterator

import cloudpickle
import pytest

pytest.importorskip("distributed")

import distributed.protocol  # noqa: E402
import ndpickle.dask  # noqa: E402
from distributed.utils_test import *  # noqa: E402,F401,F403  (distributed's fixtures)

_S = sys.modules["distributed.protocol.serialize"]
_serialize = _S.serialize
_deserialize = _S.deserialize
_mode = {"family": False}


def _family_first(serializers: Any) -> Any:
    if not _mode["family"]:
        return serializers
    if serializers is None:
        return ("ndpickle", "dask", "pickle")
    names = list(serializers)
    if "pickle" in names and "ndpickle" not in names:
        names.insert(names.index("pickle"), "ndpickle")
        return names
    return serializers


def serialize(x: Any, serializers: Any = None, on_error: Any = "message", context: Any = None,
              iterate_collection: Any = None) -> Any:
    """Dask's ``serialize`` with the family first (in ``family`` mode)."""
    return _serialize(x, _family_first(serializers), on_error, context, iterate_collection)


def deserialize(header: Any, frames: Any, deserializers: Any = None) -> Any:
    """Dask's ``deserialize``, accepting the family where ``pickle`` is accepted."""
    if deserializers is not None:
        deserializers = _family_first(deserializers)
    return _deserialize(header, frames, deserializers=deserializers)


serialize.__doc__ = _serialize.__doc__
# Dask's own modules call these by their global names; the tests import them from
# distributed.protocol (after this conftest ran).
_S.serialize = serialize
_S.deserialize = deserialize
distributed.protocol.serialize = serialize  # type: ignore[attr-defined]
distributed.protocol.deserialize = deserialize  # type: ignore[attr-defined]

# (test id prefix, modes, reason)
_FRAME0 = ("ndpickle sends the pickle (dtype, shape, strides) as a frame of its own, where "
           "Dask's numpy serializer puts them in the msgpack header: one more frame, ~100 "
           "bytes more")
_NAME = "with the family first, the family (not pickle) serializes what pickle would"
# Test ids (regular expressions, matched whole) that ndpickle changes by design.
DIFFERENT_BY_DESIGN: list[tuple[str, str]] = [
    (r"test_serialize\[family\]", "the family's header is not the 'dask' family's"),
    (r"test_serialize\[dispatch\]", _FRAME0),
    (r"test_zero_strided_numpy_array\[\w+-\w+-x2\]", _FRAME0),  # 5 elements, 40 bytes
    (r"test_non_zero_strided_array\[\w+\]", _FRAME0),
    (r"test_compress_numpy\[\w+\]",
     "ndpickle compresses with its own codec (byte-shuffle + lz4) when the comm names one, "
     "so Dask's header names no codec of its own"),
    (r"test_pickle_empty\[family-5\]", _NAME),
    (r"test_dumps_serialize\[family\]", _NAME),
    (r"test_errors\[family\]", _NAME),
]


@pytest.fixture(params=["family", "dispatch"], autouse=True)
def ndpickle_mode(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs each test with the family first, then with only the dispatch switch."""
    _mode["family"] = request.param == "family"
    ndpickle.dask.install()
    # Each test runs twice in one process: undo what a run registers with cloudpickle.
    by_value = set(cloudpickle.cloudpickle._PICKLE_BY_VALUE_MODULES)
    yield request.param
    _mode["family"] = False
    cloudpickle.cloudpickle._PICKLE_BY_VALUE_MODULES.clear()
    cloudpickle.cloudpickle._PICKLE_BY_VALUE_MODULES.update(by_value)


# The suite's tests that move 100 MB and more (tens of seconds on a busy 2-core machine,
# twice): marked slow, run with `python -m pytest -m slow tests/dask_protocol`.
SLOW = ("test_large_pickled_object[", "test_serialize_bytes[", "test_dumps_large[")


@pytest.hookimpl(tryfirst=True)  # before `-m "not slow"` deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks the tests of ``DIFFERENT_BY_DESIGN`` as failures that must happen, and the
    ``SLOW`` ones slow."""
    for item in items:
        test_id = item.nodeid.split("::", 1)[-1]
        if test_id.startswith(SLOW):
            item.add_marker(pytest.mark.slow)
        for pattern, reason in DIFFERENT_BY_DESIGN:
            if re.fullmatch(pattern, test_id):
                item.add_marker(pytest.mark.xfail(reason=reason, strict=True))

"""``ndpickle.Pickler`` combined with another pickler's ``reducer_override`` creates no
reference cycle: the pickler, and everything it pickled, is freed as soon as it is dropped.

CPython's own hook tests (``test.pickletester.AbstractHookTests``, shipped with CPython, among
them ``test_reducer_override_no_reference_cycle``, bpo-39492) run against a subclass of
``ndpickle.Pickler`` and CPython's ``AbstractCustomPicklerClass``, as CPython's
``test_pickle.py`` runs them against ``_pickle.Pickler``; then the README's
``CloudPickler(ndpickle.Pickler, cloudpickle.Pickler)``.
"""

from __future__ import annotations

import gc
import io
import pickle
import unittest
import weakref

import numpy as np
import pytest

import ndpickle

pickletester = pytest.importorskip("test.pickletester")


class NdCustomPickler(ndpickle.Pickler, pickletester.AbstractCustomPicklerClass):
    """ndpickle's pickler in front of CPython's test hook (f -> 5, MyClass -> 'some str')."""


class TestCPythonHooks(pickletester.AbstractHookTests, unittest.TestCase):
    """CPython's ``AbstractHookTests`` with ndpickle's pickler."""

    pickler_class = NdCustomPickler


class Marker:
    """Something pickled, whose lifetime the tests watch."""


def _assert_freed_without_gc(make_pickler: type) -> None:
    """Dumps an array and a marker with a pickler of ``make_pickler``, drops both, and
    checks that the pickler and the marker are gone with the collector disabled."""

    gc.disable()
    try:
        bio = io.BytesIO()
        p = make_pickler(bio, 5)
        array = np.arange(10.0)
        marker = Marker()
        p.dump([array, marker])
        p_ref, marker_ref = weakref.ref(p), weakref.ref(marker)
        del p, marker
        assert p_ref() is None, "the pickler outlived its last reference"
        assert marker_ref() is None, "the pickler kept what it pickled alive"
        got = pickle.loads(bio.getvalue())
        np.testing.assert_array_equal(got[0], array)
    finally:
        gc.enable()


def test_pickler_with_a_python_reducer_is_freed() -> None:
    _assert_freed_without_gc(NdCustomPickler)


def test_cloudpickler_combination_is_freed() -> None:
    cloudpickle = pytest.importorskip("cloudpickle")

    class CloudPickler(ndpickle.Pickler, cloudpickle.Pickler):
        pass

    _assert_freed_without_gc(CloudPickler)
    # The combination still sends lambdas by value through cloudpickle.
    bio = io.BytesIO()
    CloudPickler(bio, 5).dump(lambda x: x + 1)
    assert pickle.loads(bio.getvalue())(1) == 2


def test_a_strong_fallback_is_visible_to_the_collector() -> None:
    """A reducer given a strong bound method (not through ndpickle.Pickler) forms a cycle
    with its pickler; the collector must see it (``__traverse__``) and free both."""

    class Holder(pickle.Pickler):
        def other(self, obj: object) -> object:
            return NotImplemented

    holder = Holder(io.BytesIO(), 5)
    holder.reducer = ndpickle.ArrayReducer(5, fallback=holder.other)
    ref = weakref.ref(holder)
    del holder
    gc.collect()
    assert ref() is None


def test_weak_fallback_of_a_dropped_pickler_answers_not_implemented() -> None:
    class Owner:
        def reduce(self, obj: object) -> object:
            return (int, (5,))

    owner = Owner()
    reducer = ndpickle.ArrayReducer(5, fallback=weakref.WeakMethod(owner.reduce))
    assert reducer(object()) == (int, (5,))
    del owner
    gc.collect()
    assert reducer(object()) is NotImplemented

"""Shared references and recursive structures through ``safe_loads``, against ``pickle.loads``.

What a pickle refers to twice (a memo ``GET`` or ``DUP``) comes back as one object, whatever
its type and size, and recursive lists and dicts are rebuilt recursive, as ``pickle.loads``
rebuilds them. Each case is pickled by CPython's ``pickle`` at every protocol.
"""

import pickle

import numpy as np
import pytest

import ndpickle

PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)


def both(obj, proto):
    data = pickle.dumps(obj, proto)
    return pickle.loads(data), ndpickle.safe_loads(data)


def identity_pattern(x, seen=None):
    """The object graph of ``x`` as ids numbered in first-visit order (for comparing
    the sharing of two graphs)."""
    seen = {} if seen is None else seen
    out = []

    def walk(v):
        if isinstance(v, (int, float, str, bytes, type(None), np.generic)):
            out.append(repr(v) if not isinstance(v, np.generic) else ("np", v.item()))
            return
        if id(v) in seen:
            out.append(("ref", seen[id(v)]))
            return
        seen[id(v)] = len(seen)
        out.append(("new", type(v).__name__))
        if isinstance(v, dict):
            for k, x in v.items():
                walk(k)
                walk(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)
        elif isinstance(v, (set, frozenset)):
            for x in sorted(v, key=repr):
                walk(x)
        elif isinstance(v, np.ndarray):
            out.append((v.dtype.str, v.shape, v.tolist()))
        elif isinstance(v, bytearray):
            out.append(bytes(v))

    walk(x)
    return out


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_shared_objects_of_every_type_are_one_object(proto):
    a = np.arange(3.0)
    big = np.zeros(100_000)
    items = [[1], {"k": 2}, {3, 4}, bytearray(b"ab"), a, big, (5, [6]), frozenset({7})]
    obj = [items, items[::-1], {"again": items}]
    want, got = both(obj, proto)
    assert identity_pattern(got) == identity_pattern(want)
    for i, x in enumerate(items):
        if isinstance(x, (tuple, frozenset)) and proto == 0:
            continue  # protocol 0 pickles no tuple or frozenset by reference
        assert got[0][i] is got[1][len(items) - 1 - i] is got[2]["again"][i], (i, x)


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_recursive_list_dict_and_tuple_of_list(proto):
    lst = []
    lst.append(lst)
    got = ndpickle.safe_loads(pickle.dumps(lst, proto))
    assert type(got) is list and len(got) == 1 and got[0] is got

    d = {}
    d["self"] = d
    d["list"] = [d]
    got = ndpickle.safe_loads(pickle.dumps(d, proto))
    assert got["self"] is got and got["list"][0] is got

    t = ([],)
    t[0].append(t)
    got = ndpickle.safe_loads(pickle.dumps(t, proto))
    assert type(got) is tuple and got[0][0] is got

    d2 = {}
    t2 = (d2, 1)
    d2["t"] = t2
    got = ndpickle.safe_loads(pickle.dumps([t2, d2], proto))
    assert got[0][0] is got[1] and got[1]["t"] is got[0]
    assert identity_pattern(got) == identity_pattern(pickle.loads(pickle.dumps([t2, d2], proto)))


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_mutual_recursion_and_sets_of_shared_tuples(proto):
    a, b = [], []
    a.append(b)
    b.append(a)
    s = {(1, 2)}
    want, got = both([a, b, s, s], proto)
    assert got[0][0] is got[1] and got[1][0] is got[0] and got[2] is got[3]
    assert identity_pattern(got) == identity_pattern(want)


def test_shared_array_in_call_arguments_and_outside():
    # The dtype is memoised: used by the arrays' reconstruction (a call) and as a value.
    dt = np.dtype(">i4")
    a = np.arange(4, dtype=dt)
    for proto in (2, 3, 4, 5):
        want, got = both([dt, a, a, dt], proto)
        assert got[0] == dt and got[0] is got[3]
        assert got[1] is got[2] and got[1].tolist() == [0, 1, 2, 3]
        assert identity_pattern(got) == identity_pattern(want)


def test_dup_bomb_costs_its_input():
    # A list doubled 100 times: 2**100 items as a tree, 101 objects as a graph.
    lst = [1]
    for _ in range(100):
        lst = [lst, lst]
    data = pickle.dumps(lst, 4)
    got = ndpickle.safe_loads(data)
    node = got
    for _ in range(100):
        assert node[0] is node[1]
        node = node[0]
    assert node == [1]
    # The copy limit applies only where copies are made: a memoised list inside a call's
    # arguments (here none), so even a tiny limit lets the graph load.
    assert ndpickle.safe_loads(data, max_copied_bytes=0)[0] is not None


def test_recursion_through_call_arguments_is_refused():
    # An OrderedDict (a call) holding itself: call arguments are trees.
    from collections import OrderedDict

    od = OrderedDict()
    od["x"] = [od]
    data = pickle.dumps(od, 2)
    with pytest.raises(ndpickle.DecodeError, match="recursive"):
        ndpickle.safe_loads(data)


def test_safe_load_of_a_mapped_file_keeps_sharing(tmp_path):
    lst = []
    lst.append(lst)
    p = tmp_path / "x.pkl"
    p.write_bytes(pickle.dumps([lst, lst], 5))
    got = ndpickle.safe_load(p)
    assert got[0] is got[1] and got[0][0] is got[0]

"""Standard-library plain data through ``safe_loads``, pickled by CPython at protocols 0-5
and compared with ``pickle.loads``; the variants that would call out are refused."""

import collections
import datetime
import decimal
import fractions
import pickle
import uuid

import pytest

import ndpickle

PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)
TZ = datetime.timezone(datetime.timedelta(hours=-3, minutes=-30), "X")

VALUES = [
    datetime.date(2020, 1, 2),
    datetime.date.min,
    datetime.time(1, 2, 3, 4),
    datetime.time(23, 59, tzinfo=datetime.timezone.utc),
    datetime.time(1, fold=1),
    datetime.datetime(2020, 1, 2, 3, 4, 5, 6),
    datetime.datetime(2020, 1, 2, 3, 4, 5, 6, tzinfo=TZ),
    datetime.datetime(2021, 11, 7, 1, 30, fold=1),
    datetime.datetime.max,
    datetime.timedelta(1, 2, 3),
    datetime.timedelta(-999999999),
    datetime.timezone.utc,
    TZ,
    datetime.timezone(datetime.timedelta(hours=5)),
    decimal.Decimal("1.5"),
    decimal.Decimal("-0"),
    decimal.Decimal("NaN"),
    decimal.Decimal("-Infinity"),
    decimal.Decimal("1E+999999"),
    fractions.Fraction(3, 4),
    fractions.Fraction(-(10**40), 3),
    uuid.UUID(int=0),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    uuid.UUID(int=2**128 - 1, is_safe=uuid.SafeUUID.safe),
    collections.deque(),
    collections.deque([1, "a", (2,)]),
    collections.deque([1, 2, 3], maxlen=2),
    collections.deque([], maxlen=0),
    collections.Counter("abracadabra"),
    collections.Counter(),
    collections.defaultdict(list, {1: [2], "k": []}),
    collections.defaultdict(int),
    collections.defaultdict(None, {1: 2}),
    collections.defaultdict(set),
    collections.OrderedDict([("b", 1), ("a", 2)]),
    collections.OrderedDict(),
    range(10),
    range(1, 5, 2),
    range(-(10**30), 10**30, 7),
    slice(1, 2, None),
    slice(None),
    slice(-1, None, -2),
    Ellipsis,
    NotImplemented,
    1j,
    complex(-0.0, float("inf")),
    frozenset({1, "a", (2, 3)}),
    frozenset(),
    int,
    str,
    type(None),
    type(Ellipsis),
    type(NotImplemented),
]


def same(a, b):
    assert type(a) is type(b), (a, b)
    assert repr(a) == repr(b), (a, b)
    if isinstance(a, collections.defaultdict):
        assert a.default_factory is b.default_factory
    if isinstance(a, collections.deque):
        assert a.maxlen == b.maxlen
    if isinstance(a, (datetime.time, datetime.datetime)):
        assert a.fold == b.fold and a.tzinfo == b.tzinfo


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_stdlib_value(value, proto):
    data = pickle.dumps(value, proto)
    same(pickle.loads(data), ndpickle.safe_loads(data))


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_stdlib_values_nested_and_shared(proto):
    d = datetime.datetime(2020, 1, 1, tzinfo=TZ)
    obj = {"when": [d, d], "od": collections.OrderedDict(x=[1]), "dq": collections.deque([TZ])}
    data = pickle.dumps(obj, proto)
    want, got = pickle.loads(data), ndpickle.safe_loads(data)
    assert got == want and type(got["od"]) is collections.OrderedDict
    assert got["when"][0] is got["when"][1]


def hostile(proto, *parts):
    return b"\x80" + bytes([proto]) + b"".join(parts) + b"."


def glob(m, n):
    return b"c" + m.encode() + b"\n" + n.encode() + b"\n"


HOSTILE = {
    "defaultdict(os.system)": glob("collections", "defaultdict") + glob("os", "system") + b"\x85R",
    "defaultdict(eval)": glob("collections", "defaultdict") + glob("builtins", "eval") + b"\x85R",
    "defaultdict(numpy.dtype)": glob("collections", "defaultdict") + glob("numpy", "dtype") + b"\x85R",
    "defaultdict(Ellipsis)": glob("collections", "defaultdict") + glob("builtins", "Ellipsis") + b"\x85R",
    "defaultdict(a str)": glob("collections", "defaultdict") + b"X\x02\x00\x00\x00id\x85R",
    "getattr chain": glob("builtins", "getattr") + glob("builtins", "list") + b"X\x06\x00\x00\x00append\x86R",
    "decimal.getcontext": glob("decimal", "getcontext") + b")R",
    "Decimal of a tuple": glob("decimal", "Decimal") + b"(K\x00(K\x01tK\x00t\x85R",
    "Decimal with a context": glob("decimal", "Decimal") + b"X\x01\x00\x00\x001N\x86R",
    "date of an int": glob("datetime", "date") + b"M\xe4\x07K\x01K\x01\x87R",
    "date of 5 bytes": glob("datetime", "date") + b"C\x05\x07\xe4\x01\x02\x03\x85R",
    "bad date bytes": glob("datetime", "date") + b"C\x04\x07\xe4\x0d\x02\x85R",
    "datetime with a list tzinfo": glob("datetime", "datetime") + b"C\x0a" + b"\x07\xe4\x01\x02" + b"\x00" * 6 + b"]\x86R",
    "timezone of an int": glob("datetime", "timezone") + b"K\x01\x85R",
    "timedelta of a str": glob("datetime", "timedelta") + b"X\x01\x00\x00\x001\x85R",
    "Fraction of floats": glob("fractions", "Fraction") + b"G?\xf8\x00\x00\x00\x00\x00\x00\x85R",
    "Fraction over zero": glob("fractions", "Fraction") + b"K\x01K\x00\x86R",
    "UUID with args": glob("uuid", "UUID") + b"X\x01\x00\x00\x001\x85R",
    "UUID without state": glob("uuid", "UUID") + b")\x81",
    "UUID with extra state": glob("uuid", "UUID") + b")\x81}(X\x03\x00\x00\x00intK\x01X\x01\x00\x00\x00xK\x01ub",
    "deque with a str maxlen": glob("collections", "deque") + b")X\x01\x00\x00\x001\x86R",
    "deque with a negative maxlen": glob("collections", "deque") + b")J\xff\xff\xff\xff\x86R",
    "deque with state": glob("collections", "deque") + b")\x85R}b",
    "range of floats": glob("builtins", "range") + b"G?\xf8\x00\x00\x00\x00\x00\x00\x85R",
    "range step 0": glob("builtins", "range") + b"K\x00K\x01K\x00\x87R",
    "slice of a list": glob("builtins", "slice") + b"]\x85R",
    "str of an int": glob("builtins", "str") + b"K\x01\x85R",
    "type(1)": glob("builtins", "type") + b"K\x01\x85R",
    "type with three args": glob("builtins", "type") + b"(X\x01\x00\x00\x00A)}t" + b"R",
    "calling Ellipsis": glob("builtins", "Ellipsis") + b")R",
    "Counter with SETITEMS through a non-dict": glob("collections", "Counter") + b"K\x01\x85R",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_stdlib_variants_are_refused(name):
    data = hostile(2, HOSTILE[name])
    with pytest.raises(ndpickle.DecodeError):
        ndpickle.safe_loads(data)


def test_fix_imports_maps_python2_names():
    data = b"c__builtin__\nxrange\n(K\x01K\x05tR."
    assert ndpickle.safe_loads(data) == range(1, 5) == pickle.loads(data)
    with pytest.raises(ndpickle.DecodeError):
        ndpickle.safe_loads(data, fix_imports=False)


def numpy_corner_cases():
    import numpy as np

    rec = np.array([(1, 2.5), (3, -1.0)], dtype=[("a", "<i4"), ("b", ">f8")])
    return {
        "S0": np.empty(3, dtype="S0"),
        "U0": np.empty((2, 0), dtype="U0"),
        "record scalar": rec[1],
        "void scalar": np.void(b"\x01\x02\x03"),
        "V4 array": np.frombuffer(b"abcdefgh", "V4").copy(),
        "0-d struct": np.array((5, 6.0), dtype=rec.dtype),
        # An aligned struct with a sub-array of an aligned struct (found by the differential:
        # the pickler took the sub-array for a struct).
        "aligned sub-array of structs": np.zeros(
            2,
            np.dtype(
                {"names": ["a", "s"], "formats": ["?", (np.dtype({"names": ["x", "y"], "formats": ["?", "<i4"]}, align=True), (2,))]},
                align=True,
            ),
        ),
    }


@pytest.mark.parametrize("proto", range(2, pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("name", sorted(numpy_corner_cases()))
def test_numpy_corner_cases_as_numpy_gives_them(name, proto):
    value = numpy_corner_cases()[name]
    data = pickle.dumps(value, proto)
    assert ndpickle.safe_loads(ndpickle.dumps(value, protocol=proto)).dtype == value.dtype
    want, got = pickle.loads(data), ndpickle.safe_loads(data)
    assert type(got) is type(want) and got.dtype == want.dtype and got.dtype.str == want.dtype.str
    assert got.shape == want.shape and got.tobytes() == want.tobytes()
    if hasattr(want, "flags"):
        assert got.flags.writeable == want.flags.writeable

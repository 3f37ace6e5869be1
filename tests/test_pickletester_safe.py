"""CPython's own pickling tests (``test.pickletester.AbstractPickleTests``, shipped with
CPython) with ``pickle.dumps`` writing and ``ndpickle.safe_loads`` reading.

Every test whose objects are builtins or the standard-library types ``safe_loads`` rebuilds
passes as it does with ``pickle.loads``. The tests whose pickles name other globals (the
test module's own classes, builtin functions, ``getattr`` chains) must be refused with
``DecodeError``: they are listed below, each an ``xfail(strict=True, raises=DecodeError)``,
so a test that starts passing, or fails any other way, fails this module.
"""

import pickle
import unittest

import pytest

import ndpickle

pickletester = pytest.importorskip("test.pickletester")


class SafeLoadsPickleTests(pickletester.AbstractPickleTests, unittest.TestCase):
    """``pickle.dumps`` + ``ndpickle.safe_loads`` (run by the tests below, not collected)."""

    __test__ = False

    pickler = pickle.Pickler
    unpickler = pickle.Unpickler

    def dumps(self, arg, proto=None, **kwargs):
        return pickle.dumps(arg, proto, **kwargs)

    def loads(self, buf, **kwds):
        return ndpickle.safe_loads(buf, **kwds)


CLASSES = "pickles instances of classes defined by the test (not on the allow-list)"

# Test name -> why safe_loads refuses its pickles.
REFUSED = {
    **{
        name: CLASSES
        for name in """
        test_appends_on_non_lists test_attribute_name_interning test_complex_newobj
        test_complex_newobj_ex test_dynamic_class test_evil_class_mutating_dict
        test_getinitargs test_global_ext1 test_global_ext2 test_global_ext4 test_metaclass
        test_misc test_newobj_generic test_newobj_list test_newobj_list_slots
        test_newobj_overridden_new test_newobj_proxies test_newobj_tuple
        test_recursive_dict_and_inst test_recursive_dict_key test_recursive_dict_like
        test_recursive_dict_like_key test_recursive_dict_subclass
        test_recursive_dict_subclass_and_inst test_recursive_dict_subclass_key
        test_recursive_frozenset_and_inst test_recursive_frozenset_subclass_and_inst
        test_recursive_inst test_recursive_inst_state test_recursive_list_and_inst
        test_recursive_list_like test_recursive_list_subclass
        test_recursive_list_subclass_and_inst test_recursive_multi
        test_recursive_nested_names test_recursive_set test_recursive_set_and_inst
        test_recursive_set_subclass_and_inst test_recursive_tuple_and_dict_key
        test_recursive_tuple_and_dict_like test_recursive_tuple_and_dict_like_key
        test_recursive_tuple_and_dict_subclass test_recursive_tuple_and_dict_subclass_key
        test_recursive_tuple_and_inst test_recursive_tuple_and_inst_state
        test_recursive_tuple_and_list_like test_recursive_tuple_and_list_subclass
        test_recursive_tuple_subclass_and_inst test_reduce_calls_base test_reduce_ex_called
        test_reduce_ex_calls_base test_reduce_ex_overrides_reduce
        test_reduce_overrides_default_reduce_ex test_roundtrip_equality
        test_setitems_on_non_dicts test_simple_newobj
        """.split()
    },
    "test_builtin_exceptions": "pickles exception classes (callables that are not data)",
    "test_builtin_functions": "pickles builtin functions (callables that are not data)",
    "test_builtin_types": "pickles every builtin type, importer classes included",
    "test_c_methods": "pickles methods, reached through builtins.getattr",
    "test_py_methods": "pickles methods, reached through builtins.getattr",
    "test_nested_names": "pickles nested classes, reached through builtins.getattr",
    "test_compat_pickle": "pickles itertools and other Python 2 module callables",
    "test_large_pickles": "pickles the builtin functions min and len",
    "test_in_band_buffers": "pickles the test's ZeroCopyBytes class through getattr",
    "test_oob_buffers": "pickles the test's ZeroCopyBytes class through getattr",
    "test_oob_buffers_writable_to_readonly": "pickles the test's ZeroCopyBytes class",
    "test_structseq": "pickles time.struct_time and os.stat_result (not on the allow-list)",
    "test_proto": "expects ValueError for an unknown protocol; safe_loads raises only DecodeError",
}

NAMES = unittest.TestLoader().getTestCaseNames(SafeLoadsPickleTests)


def params():
    for name in NAMES:
        marks = []
        if name in REFUSED:
            marks.append(
                pytest.mark.xfail(strict=True, raises=ndpickle.DecodeError, reason=REFUSED[name])
            )
        yield pytest.param(name, marks=marks, id=name)


def test_the_suite_is_there():
    assert len(NAMES) >= 100
    assert not set(REFUSED) - set(NAMES), set(REFUSED) - set(NAMES)
    # Most of CPython's pickling tests are about builtins: they all run.
    assert len(NAMES) - len(REFUSED) >= 40


@pytest.mark.parametrize("name", list(params()))
def test_cpython_pickle_test(name):
    case = SafeLoadsPickleTests(name)
    result = unittest.TestResult()
    case.run(result)
    problems = result.errors + result.failures
    if problems:
        _, tb = problems[0]
        if "ndpickle.DecodeError" in tb.strip().splitlines()[-1]:
            raise ndpickle.DecodeError(tb)
        pytest.fail(tb)
    if result.skipped:
        pytest.skip(result.skipped[0][1])

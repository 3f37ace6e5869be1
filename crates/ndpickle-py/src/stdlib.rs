//! Standard-library values the safe reader recognised ([`ndpickle`]'s `read::stdlib`): each is
//! rebuilt by calling its own type (`datetime.date`, `decimal.Decimal`, ...) with the plain
//! arguments the reader checked, the same call `pickle.loads` makes, and nothing else. Bare
//! builtin types and constants (`int`, `Ellipsis`...) come back as themselves.

// NAMEABLE: the builtin names a pickle may refer to as values, the reader's own list.
use ndpickle::read::NAMEABLE;
use ndpickle::{DecodeErrorKind, Object, Value};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::convert::Converter;
use crate::error::decode_msg;

/// Modules whose types [`object`] rebuilds (with `builtins.range` and `builtins.slice`).
const MODULES: &[&str] = &["datetime", "decimal", "fractions", "uuid", "collections"];

/// Whether `o` is a standard-library value for [`object`].
pub(crate) fn is_stdlib(o: &Object) -> bool {
    let g = &o.callable;
    MODULES.contains(&g.module.as_str())
        || (g.module == "builtins" && matches!(g.name.as_str(), "range" | "slice" | "type"))
}

/// The builtin type or constant a bare global names, if it is one of [`NAMEABLE`].
pub(crate) fn nameable<'py>(
    py: Python<'py>,
    g: &ndpickle::Global,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let module = match g.module.as_str() {
        "builtins" | "__builtin__" => "builtins",
        _ => return Ok(None),
    };
    // Python 2 names, as `pickle.loads(fix_imports=True)` maps them (the reader accepts
    // them only then).
    let name = match (g.module.as_str(), g.name.as_str()) {
        ("__builtin__", "long") => "int",
        ("__builtin__", "unicode") => "str",
        ("__builtin__", "xrange") => "range",
        (_, n) => n,
    };
    if !NAMEABLE.contains(&name) {
        return Ok(None);
    }
    Ok(Some(py.import(module)?.getattr(name)?))
}

fn bad(detail: String) -> PyErr {
    decode_msg(DecodeErrorKind::Invalid {
        what: "standard-library value",
        detail,
    })
}

/// Rebuilds a standard-library value.
pub(crate) fn object<'py>(
    conv: &Converter<'_>,
    py: Python<'py>,
    o: Object,
) -> PyResult<Bound<'py, PyAny>> {
    let g = o.callable;
    let module = py.import(g.module.as_str())?;
    let ty = module.getattr(g.name.as_str())?;
    let mut args = o.args.into_iter();
    match (g.module.as_str(), g.name.as_str()) {
        ("collections", "deque") => {
            let items = conv.to_py(py, args.next().unwrap_or_default())?;
            let maxlen = conv.to_py(py, args.next().unwrap_or_default())?;
            ty.call1((items, maxlen))
        }
        ("collections", "defaultdict") => {
            let factory = match args.next().unwrap_or_default() {
                Value::None => py.None().into_bound(py),
                Value::Global(f) => {
                    nameable(py, &f)?.ok_or_else(|| bad(format!("defaultdict factory {f}")))?
                }
                other => return Err(bad(format!("defaultdict factory {}", other.type_name()))),
            };
            let dd = ty.call1((factory,))?;
            fill(conv, py, &dd, args.next().unwrap_or_default())?;
            Ok(dd)
        }
        ("collections", "OrderedDict") => {
            let od = ty.call0()?;
            fill(conv, py, &od, args.next().unwrap_or_default())?;
            Ok(od)
        }
        ("collections", "Counter") => {
            let c = ty.call0()?;
            if let Some(d) = args.next() {
                fill(conv, py, &c, d)?;
            }
            Ok(c)
        }
        ("uuid", "UUID") => {
            let kwargs = PyDict::new(py);
            kwargs.set_item("int", conv.to_py(py, args.next().unwrap_or_default())?)?;
            let safe = conv.to_py(py, args.next().unwrap_or_default())?;
            kwargs.set_item("is_safe", module.getattr("SafeUUID")?.call1((safe,))?)?;
            ty.call((), Some(&kwargs))
        }
        // `type(x)` only of None, Ellipsis or NotImplemented (checked by the reader).
        ("datetime" | "decimal" | "fractions", _) | ("builtins", "range" | "slice" | "type") => {
            let args = args
                .map(|v| conv.to_py(py, v))
                .collect::<PyResult<Vec<_>>>()?;
            ty.call1(PyTuple::new(py, args)?)
        }
        _ => Err(bad(format!("{g} is not rebuilt"))),
    }
}

/// Sets the items of a dict `d` (a `Value::Dict`) on the mapping `m`.
fn fill<'py>(
    conv: &Converter<'_>,
    py: Python<'py>,
    m: &Bound<'py, PyAny>,
    d: Value,
) -> PyResult<()> {
    let Value::Dict(items) = d else {
        return Err(bad(format!("items of a {}", d.type_name())));
    };
    for (k, v) in items {
        m.set_item(conv.to_py(py, k)?, conv.to_py(py, v)?)?;
    }
    Ok(())
}

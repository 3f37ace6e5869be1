//! Plain data from the standard library: `datetime` values, `decimal.Decimal`,
//! `fractions.Fraction`, `uuid.UUID`, the `collections` containers, `range` and `slice`.
//!
//! Each call is matched against the exact form CPython's pickler writes for the type (its
//! `__reduce__`), with every argument checked to be plain data of the expected type, and
//! kept as a [`Value::Object`] naming the type by its Python 3 home: the Python bindings
//! rebuild it by calling that type's constructor with those checked arguments, which runs
//! no code the pickle chose. `defaultdict` factories must be builtin types.

use crate::error::DecodeErrorKind;
use crate::value::{Global, Object, Value};

use super::allow::{self, Known};
use super::args::{CallParts, arity, refused, type_err};
use super::options::ReadOptions;

/// A standard-library type the reader rebuilds from plain data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Std {
    /// `datetime.date`.
    Date,
    /// `datetime.time`.
    Time,
    /// `datetime.datetime`.
    DateTime,
    /// `datetime.timedelta`.
    TimeDelta,
    /// `datetime.timezone`.
    TimeZone,
    /// `decimal.Decimal`.
    Decimal,
    /// `fractions.Fraction`.
    Fraction,
    /// `uuid.UUID`.
    Uuid,
    /// `collections.deque`.
    Deque,
    /// `collections.Counter`.
    Counter,
    /// `collections.defaultdict`.
    DefaultDict,
    /// `collections.OrderedDict`.
    OrderedDict,
    /// `builtins.range` (`__builtin__.xrange`).
    Range,
    /// `builtins.slice`.
    Slice,
}

impl Std {
    /// The type's Python 3 module and name.
    pub(crate) fn global(self) -> Global {
        let (m, n) = match self {
            Std::Date => ("datetime", "date"),
            Std::Time => ("datetime", "time"),
            Std::DateTime => ("datetime", "datetime"),
            Std::TimeDelta => ("datetime", "timedelta"),
            Std::TimeZone => ("datetime", "timezone"),
            Std::Decimal => ("decimal", "Decimal"),
            Std::Fraction => ("fractions", "Fraction"),
            Std::Uuid => ("uuid", "UUID"),
            Std::Deque => ("collections", "deque"),
            Std::Counter => ("collections", "Counter"),
            Std::DefaultDict => ("collections", "defaultdict"),
            Std::OrderedDict => ("collections", "OrderedDict"),
            Std::Range => ("builtins", "range"),
            Std::Slice => ("builtins", "slice"),
        };
        Global::new(m, n)
    }
}

/// The standard-library type `module.name` names (after Python 2 names are mapped).
pub(crate) fn lookup(module: &str, name: &str) -> Option<Std> {
    Some(match (module, name) {
        ("datetime", "date") => Std::Date,
        ("datetime", "time") => Std::Time,
        ("datetime", "datetime") => Std::DateTime,
        ("datetime", "timedelta") => Std::TimeDelta,
        ("datetime", "timezone") => Std::TimeZone,
        ("decimal" | "_decimal" | "_pydecimal", "Decimal") => Std::Decimal,
        ("fractions", "Fraction") => Std::Fraction,
        ("uuid", "UUID") => Std::Uuid,
        ("collections", "deque") => Std::Deque,
        ("collections", "Counter") => Std::Counter,
        ("collections", "defaultdict") => Std::DefaultDict,
        ("collections", "OrderedDict") => Std::OrderedDict,
        ("builtins", "range") => Std::Range,
        ("builtins", "slice") => Std::Slice,
        _ => return None,
    })
}

/// Builtin types and constants a pickle may name without calling them (as a
/// `defaultdict` factory, or as a value: `pickle.dumps(int)`).
pub const NAMEABLE: &[&str] = &[
    "bool",
    "bytearray",
    "bytes",
    "complex",
    "dict",
    "float",
    "frozenset",
    "int",
    "list",
    "set",
    "str",
    "tuple",
    "object",
    "range",
    "slice",
    "type",
    "Ellipsis",
    "NotImplemented",
];

fn object(std: Std, args: Vec<Value>) -> Value {
    Value::Object(Box::new(Object {
        callable: std.global(),
        args,
        state: None,
    }))
}

fn is_int(v: &Value) -> bool {
    matches!(v, Value::Int(_) | Value::BigInt(_) | Value::Bool(_))
}

fn is_std(v: &Value, std: Std) -> bool {
    matches!(v, Value::Object(o) if o.callable == std.global() && o.state.is_none())
}

/// The packed bytes of a `date`, `time` or `datetime` (`n` of them): `bytes`, or a latin-1
/// `str` (Python 2's pickles).
fn packed(v: &Value, n: usize, std: Std) -> Result<(), DecodeErrorKind> {
    let len = match v {
        Value::Bytes(b) => b.len(),
        Value::Str(s) if s.chars().all(|c| (c as u32) < 256) => s.chars().count(),
        other => {
            return Err(type_err(
                format!("packed bytes for {}", std.global()),
                other,
            ));
        }
    };
    if len != n {
        return Err(refused(format!(
            "{} takes {n} packed bytes, not {len}",
            std.global()
        )));
    }
    Ok(())
}

fn tzinfo(v: &Value) -> Result<(), DecodeErrorKind> {
    if matches!(v, Value::None) || is_std(v, Std::TimeZone) {
        return Ok(());
    }
    Err(type_err("a datetime.timezone for tzinfo", v))
}

/// Interprets a call of a standard-library type.
pub(crate) fn call(std: Std, p: CallParts, opts: &ReadOptions) -> Result<Value, DecodeErrorKind> {
    match std {
        Std::Deque => return deque(p),
        Std::DefaultDict => return defaultdict(p, opts),
        Std::OrderedDict => return ordered_dict(p),
        Std::Uuid => return uuid(p),
        _ => {}
    }
    p.plain(false)?;
    match std {
        Std::Date => {
            arity(&p, 1, 1)?;
            packed(&p.args[0], 4, std)?;
        }
        Std::Time | Std::DateTime => {
            arity(&p, 1, 2)?;
            packed(&p.args[0], if std == Std::Time { 6 } else { 10 }, std)?;
            if let Some(tz) = p.args.get(1) {
                tzinfo(tz)?;
            }
        }
        Std::TimeDelta => {
            arity(&p, 0, 3)?;
            if let Some(v) = p.args.iter().find(|v| !is_int(v)) {
                return Err(type_err("an int for timedelta", v));
            }
        }
        Std::TimeZone => {
            arity(&p, 1, 2)?;
            if !is_std(&p.args[0], Std::TimeDelta) {
                return Err(type_err("a datetime.timedelta offset", &p.args[0]));
            }
            if let Some(name) = p.args.get(1).filter(|v| !matches!(v, Value::Str(_))) {
                return Err(type_err("a str for the timezone's name", name));
            }
        }
        Std::Decimal => {
            arity(&p, 1, 1)?;
            if !matches!(p.args[0], Value::Str(_)) {
                return Err(type_err("a str for decimal.Decimal", &p.args[0]));
            }
        }
        Std::Fraction => {
            arity(&p, 1, 2)?;
            let ok = match p.args.as_slice() {
                [Value::Str(_)] => true,
                [a] | [a, _] if !is_int(a) => false,
                [_] => true,
                [_, b] => is_int(b),
                _ => false,
            };
            if !ok {
                return Err(type_err(
                    "two ints or a str for fractions.Fraction",
                    &p.args[0],
                ));
            }
        }
        Std::Counter => {
            arity(&p, 0, 1)?;
            if let Some(v) = p.args.first().filter(|v| !matches!(v, Value::Dict(_))) {
                return Err(type_err("a dict of counts for collections.Counter", v));
            }
        }
        Std::Range => {
            arity(&p, 1, 3)?;
            if let Some(v) = p.args.iter().find(|v| !is_int(v)) {
                return Err(type_err("an int for range", v));
            }
        }
        Std::Slice => {
            arity(&p, 1, 3)?;
            if let Some(v) = p
                .args
                .iter()
                .find(|v| !is_int(v) && !matches!(v, Value::None))
            {
                return Err(type_err("an int or None for slice", v));
            }
        }
        _ => {}
    }
    Ok(object(std, p.args))
}

/// `deque(iterable=(), maxlen=None)` + `APPENDS`: kept as `deque([items], maxlen)`.
fn deque(p: CallParts) -> Result<Value, DecodeErrorKind> {
    if p.kwargs.as_ref().is_some_and(|k| !k.is_empty()) || !p.pairs.is_empty() {
        return Err(refused("collections.deque takes only items".into()));
    }
    if !matches!(&p.state, None | Some(Value::None)) {
        return Err(refused(
            "BUILD state on a collections.deque is not supported".into(),
        ));
    }
    arity(&p, 0, 2)?;
    let mut args = p.args.into_iter();
    let mut items = match args.next() {
        None => Vec::new(),
        Some(Value::List(v) | Value::Tuple(v)) => v,
        Some(other) => return Err(type_err("a list of deque items", &other)),
    };
    let maxlen = args.next().unwrap_or_default();
    match &maxlen {
        Value::None => {}
        Value::Int(n) if *n >= 0 => {}
        other => return Err(type_err("a non-negative int or None for maxlen", other)),
    }
    items.extend(p.items);
    Ok(object(Std::Deque, vec![Value::List(items), maxlen]))
}

/// `defaultdict(factory)` + `SETITEMS`, the factory a builtin type or `None`: kept as
/// `defaultdict(factory, {items})`.
fn defaultdict(p: CallParts, opts: &ReadOptions) -> Result<Value, DecodeErrorKind> {
    if p.kwargs.as_ref().is_some_and(|k| !k.is_empty()) || !p.items.is_empty() {
        return Err(refused("collections.defaultdict takes only items".into()));
    }
    if !matches!(&p.state, None | Some(Value::None)) {
        return Err(refused(
            "BUILD state on a collections.defaultdict is not supported".into(),
        ));
    }
    arity(&p, 0, 2)?;
    let mut args = p.args.into_iter();
    let factory = args.next().unwrap_or_default();
    match &factory {
        Value::None => {}
        Value::Global(g) => {
            let known = allow::resolve(&g.module, &g.name, opts)?;
            let a_type = matches!(
                known,
                Known::Nameable
                    | Known::ByteArray
                    | Known::Bytes
                    | Known::Set
                    | Known::FrozenSet
                    | Known::Complex
                    | Known::Stdlib(_)
            );
            if !a_type || matches!(g.name.as_str(), "Ellipsis" | "NotImplemented") {
                return Err(refused(format!(
                    "collections.defaultdict with factory {g}: only builtin types are accepted"
                )));
            }
        }
        other => return Err(type_err("a builtin type as defaultdict factory", other)),
    }
    let mut items = match args.next() {
        None => Vec::new(),
        Some(Value::Dict(d)) => d,
        Some(other) => return Err(type_err("a dict of defaultdict items", &other)),
    };
    items.extend(p.pairs);
    Ok(object(Std::DefaultDict, vec![factory, Value::Dict(items)]))
}

/// `OrderedDict()` / `OrderedDict(items)` + `SETITEMS`: kept as `OrderedDict({items})`.
fn ordered_dict(p: CallParts) -> Result<Value, DecodeErrorKind> {
    if p.kwargs.as_ref().is_some_and(|k| !k.is_empty()) || !p.items.is_empty() {
        return Err(refused("OrderedDict takes only items".into()));
    }
    if !matches!(&p.state, None | Some(Value::None))
        && !matches!(&p.state, Some(Value::Dict(d)) if d.is_empty())
    {
        return Err(refused(
            "BUILD state on an OrderedDict is not supported".into(),
        ));
    }
    arity(&p, 0, 1)?;
    let mut out = Vec::new();
    match p.args.into_iter().next() {
        None => {}
        Some(Value::Dict(d)) => out = d,
        Some(Value::List(v) | Value::Tuple(v)) => {
            for pair in v {
                match pair {
                    Value::List(kv) | Value::Tuple(kv) if kv.len() == 2 => {
                        let mut it = kv.into_iter();
                        if let (Some(k), Some(x)) = (it.next(), it.next()) {
                            out.push((k, x));
                        }
                    }
                    other => return Err(type_err("a (key, value) pair", &other)),
                }
            }
        }
        Some(other) => return Err(type_err("items for OrderedDict", &other)),
    }
    out.extend(p.pairs);
    Ok(object(Std::OrderedDict, vec![Value::Dict(out)]))
}

/// `UUID.__new__(UUID)` + `BUILD {'int': n[, 'is_safe': v]}`: kept as `UUID(n, is_safe)`.
fn uuid(p: CallParts) -> Result<Value, DecodeErrorKind> {
    if p.kwargs.as_ref().is_some_and(|k| !k.is_empty())
        || !p.items.is_empty()
        || !p.pairs.is_empty()
    {
        return Err(refused("uuid.UUID takes only its state".into()));
    }
    if !p.args.is_empty() {
        return Err(refused("uuid.UUID is rebuilt only from its state".into()));
    }
    let Some(Value::Dict(state)) = p.state else {
        return Err(refused("uuid.UUID without its state dict".into()));
    };
    let (mut int, mut safe) = (None, Value::None);
    for (k, v) in state {
        match (k.as_str(), v) {
            (Some("int"), v)
                if matches!(v, Value::Int(n) if n >= 0)
                    || matches!(&v, Value::BigInt(b) if b.sign() != num_bigint::Sign::Minus) =>
            {
                int = Some(v)
            }
            (Some("is_safe"), v @ (Value::None | Value::Int(_))) => safe = v,
            (k, _) => {
                return Err(refused(format!(
                    "uuid.UUID state {:?} is not supported",
                    k.unwrap_or("?")
                )));
            }
        }
    }
    let int = int.ok_or_else(|| refused("uuid.UUID state without its int".into()))?;
    Ok(object(Std::Uuid, vec![int, safe]))
}

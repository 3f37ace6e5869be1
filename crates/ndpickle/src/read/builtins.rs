//! Python builtins that pickles reach through globals: `bytearray`, `bytes`, `set`,
//! `frozenset`, `complex`, `_codecs.encode` and `copyreg._reconstructor` (only when it
//! rebuilds one of these or a `uuid.UUID`); standard-library types go to [`super::stdlib`].

use bytes::Bytes;
use num_complex::Complex64;

use crate::error::DecodeErrorKind;
use crate::value::Value;

use super::allow::{self, Known};
use super::args::{CallParts, arity, buffer_of, encode, refused, str_of, type_err};
use super::call::dispatch;
use super::options::ReadOptions;
use super::stdlib::{self, Std};

/// Interprets a call of a builtin.
pub(crate) fn call(p: CallParts, opts: &ReadOptions) -> Result<Value, DecodeErrorKind> {
    match p.known {
        Known::ByteArray => {
            p.plain(false)?;
            byte_string(&p).map(Value::ByteArray)
        }
        Known::Bytes => {
            p.plain(false)?;
            byte_string(&p).map(Value::Bytes)
        }
        Known::CodecsEncode => {
            p.plain(false)?;
            arity(&p, 1, 2)?;
            let s = p.args[0]
                .as_str()
                .ok_or_else(|| type_err("a str for _codecs.encode", &p.args[0]))?;
            let enc = match p.args.get(1) {
                Some(e) => str_of(e, "encoding")?.into_owned(),
                None => "utf-8".into(),
            };
            encode(s, &enc, "_codecs.encode argument").map(Value::Bytes)
        }
        Known::Set | Known::FrozenSet => {
            p.plain(false)?;
            arity(&p, 0, 1)?;
            let items = match p.args.into_iter().next() {
                None => Vec::new(),
                Some(Value::List(v) | Value::Tuple(v) | Value::Set(v) | Value::FrozenSet(v)) => v,
                Some(other) => return Err(type_err("a list of set items", &other)),
            };
            Ok(if p.known == Known::Set {
                Value::Set(items)
            } else {
                Value::FrozenSet(items)
            })
        }
        Known::Complex => {
            p.plain(false)?;
            arity(&p, 0, 2)?;
            let part = |i: usize| -> Result<f64, DecodeErrorKind> {
                match p.args.get(i) {
                    None => Ok(0.0),
                    Some(Value::Bool(b)) => Ok(f64::from(u8::from(*b))),
                    Some(v) => v
                        .as_f64()
                        .ok_or_else(|| type_err("a number for complex", v)),
                }
            };
            Ok(Value::Complex(Complex64::new(part(0)?, part(1)?)))
        }
        Known::Stdlib(std) => stdlib::call(std, p, opts),
        Known::Nameable => nameable_call(p),
        Known::CopyregReconstructor => {
            arity(&p, 3, 3)?;
            let (Value::Global(cls), Value::Global(base)) = (p.args[0].clone(), p.args[1].clone())
            else {
                return Err(type_err(
                    "two classes for copyreg._reconstructor",
                    &p.args[0],
                ));
            };
            let known = allow::resolve(&cls.module, &cls.name, opts)?;
            let base_known = allow::resolve(&base.module, &base.name, opts)?;
            let rebuildable = matches!(
                known,
                Known::ByteArray
                    | Known::Bytes
                    | Known::Set
                    | Known::FrozenSet
                    | Known::Complex
                    | Known::Stdlib(Std::OrderedDict)
            );
            // `uuid.UUID` at protocols 0 and 1: `_reconstructor(UUID, object, None)` + BUILD.
            if known == Known::Stdlib(Std::Uuid)
                && base_known == Known::Object
                && matches!(p.args.get(2), Some(Value::None))
            {
                return stdlib::call(
                    Std::Uuid,
                    CallParts {
                        global: &cls,
                        known,
                        args: Vec::new(),
                        kwargs: None,
                        state: p.state,
                        items: p.items,
                        pairs: p.pairs,
                    },
                    opts,
                );
            }
            if known != base_known || !rebuildable {
                if opts.opaque_globals() {
                    return p.into_object();
                }
                return Err(refused(format!(
                    "copyreg._reconstructor of {cls} on {base} is not supported"
                )));
            }
            p.plain(false)?;
            let state = p.args.into_iter().nth(2).unwrap_or_default();
            let args = if matches!(state, Value::None) {
                Vec::new()
            } else {
                vec![state]
            };
            dispatch(
                CallParts {
                    global: &cls,
                    known,
                    args,
                    kwargs: None,
                    state: None,
                    items: Vec::new(),
                    pairs: Vec::new(),
                },
                opts,
            )
        }
        _ => {
            if opts.opaque_globals() {
                return p.into_object();
            }
            Err(refused(format!("calling {} is not supported", p.global)))
        }
    }
}

/// A builtin type called the ways pickles of plain data call one: without arguments (its
/// empty value: `int()` is 0), on a value of that very type (`str(s)`, `int(i)`, `float(f)`,
/// `tuple(t)`, `list(l)`, `dict(d)`, `bool(b)`: the value itself), and `type(x)` of `None`,
/// `Ellipsis` or `NotImplemented` (kept as a `builtins.type` object the bindings rebuild).
fn nameable_call(p: CallParts) -> Result<Value, DecodeErrorKind> {
    p.plain(false)?;
    let name = match p.global.name.as_str() {
        "unicode" => "str",
        "long" => "int",
        n => n,
    };
    let Some(arg) = p.args.first() else {
        return Ok(match name {
            "int" => Value::Int(0),
            "float" => Value::Float(0.0),
            "bool" => Value::Bool(false),
            "str" => Value::Str(String::new()),
            "tuple" => Value::Tuple(Vec::new()),
            "list" => Value::List(Vec::new()),
            "dict" => Value::Dict(Vec::new()),
            _ => {
                return Err(refused(format!(
                    "calling {} without arguments is not supported",
                    p.global
                )));
            }
        });
    };
    if p.args.len() > 1 {
        return Err(refused(format!(
            "calling {} with {} arguments is not supported",
            p.global,
            p.args.len()
        )));
    }
    let same = matches!(
        (name, arg),
        ("str", Value::Str(_))
            | ("int", Value::Int(_) | Value::BigInt(_))
            | ("float", Value::Float(_))
            | ("tuple", Value::Tuple(_))
            | ("list", Value::List(_))
            | ("dict", Value::Dict(_))
            | ("bool", Value::Bool(_))
    );
    if same {
        return Ok(p.args.into_iter().next().unwrap_or_default());
    }
    let singleton = match arg {
        Value::None => true,
        Value::Global(g) => {
            matches!(g.module.as_str(), "builtins" | "__builtin__")
                && matches!(g.name.as_str(), "Ellipsis" | "NotImplemented")
        }
        _ => false,
    };
    if name == "type" && singleton {
        return Ok(Value::Object(Box::new(crate::value::Object {
            callable: crate::value::Global::new("builtins", "type"),
            args: p.args,
            state: None,
        })));
    }
    Err(refused(format!(
        "calling {} on a {} is not supported",
        p.global,
        arg.type_name()
    )))
}

/// `bytes(...)` / `bytearray(...)`: no argument, a bytes-like, a list of ints or
/// `(str, encoding)`.
fn byte_string(p: &CallParts) -> Result<Bytes, DecodeErrorKind> {
    arity(p, 0, 2)?;
    match p.args.as_slice() {
        [] => Ok(Bytes::new()),
        [Value::Str(s), enc] => encode(s, &str_of(enc, "encoding")?, "bytes argument"),
        [Value::List(items) | Value::Tuple(items)] => items
            .iter()
            .map(|v| match v.as_i64() {
                Some(i) => u8::try_from(i)
                    .map_err(|_| refused(format!("byte must be in range(0, 256), not {i}"))),
                None => Err(type_err("an int for a byte", v)),
            })
            .collect::<Result<Vec<u8>, _>>()
            .map(Bytes::from),
        [v] => buffer_of(v)
            .map(|(b, _)| b)
            .ok_or_else(|| type_err(format!("bytes for {}", p.global), v)),
        [v, _] => Err(type_err(format!("a str for {}", p.global), v)),
        _ => Err(refused(format!("unsupported arguments for {}", p.global))),
    }
}

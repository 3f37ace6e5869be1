//! A recorded call ([`CallParts`]) and the small value helpers the shape matchers
//! (`builtins`, `numpy`, `pyarrow`, `compressed`) share; `call` dispatches to them.

use bytes::Bytes;

use crate::error::DecodeErrorKind;
use crate::value::{Global, Object, Value};

use super::allow::Known;

/// A call with its arguments and everything later applied to its result, as values.
#[derive(Debug)]
pub(crate) struct CallParts {
    /// The callable as the stream names it.
    pub global: Global,
    /// What the callable stands for.
    pub known: Known,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments (`NEWOBJ_EX`).
    pub kwargs: Option<Vec<(Value, Value)>>,
    /// `BUILD` state.
    pub state: Option<Value>,
    /// Items from `APPEND`/`APPENDS`.
    pub items: Vec<Value>,
    /// Pairs from `SETITEM`/`SETITEMS`.
    pub pairs: Vec<(Value, Value)>,
}

impl CallParts {
    /// Fails if `APPEND`/`SETITEM` targeted an object that takes none, or if keyword
    /// arguments were given; `state_ok` says whether a `BUILD` state is acceptable.
    pub(crate) fn plain(&self, state_ok: bool) -> Result<(), DecodeErrorKind> {
        let g = &self.global;
        if self.kwargs.as_ref().is_some_and(|k| !k.is_empty()) {
            return Err(refused(format!(
                "keyword arguments to {g} are not supported"
            )));
        }
        if !self.items.is_empty() {
            return Err(refused(format!("APPEND on a {g} object is not supported")));
        }
        if !self.pairs.is_empty() {
            return Err(refused(format!("SETITEM on a {g} object is not supported")));
        }
        if !state_ok
            && self
                .state
                .as_ref()
                .is_some_and(|s| !matches!(s, Value::None))
        {
            return Err(refused(format!(
                "BUILD state on a {g} object is not supported"
            )));
        }
        Ok(())
    }

    /// The symbolic object node for this call.
    pub(crate) fn into_object(self) -> Result<Value, DecodeErrorKind> {
        self.plain(true)?;
        Ok(Value::Object(Box::new(Object {
            callable: self.global,
            args: self.args,
            state: self.state,
        })))
    }
}

/// A `Refused` error.
pub(crate) fn refused(msg: String) -> DecodeErrorKind {
    DecodeErrorKind::Refused(msg)
}

/// A type error naming what was expected and what was found.
pub(crate) fn type_err(expected: impl Into<String>, found: &Value) -> DecodeErrorKind {
    DecodeErrorKind::Type {
        expected: expected.into(),
        found: found.type_name().to_string(),
    }
}

/// A `BadArray` error.
pub(crate) fn bad_array(msg: String) -> DecodeErrorKind {
    DecodeErrorKind::BadArray(msg)
}

/// Checks the number of arguments.
pub(crate) fn arity(p: &CallParts, min: usize, max: usize) -> Result<(), DecodeErrorKind> {
    let n = p.args.len();
    if n < min || n > max {
        let want = if min == max {
            min.to_string()
        } else {
            format!("{min} to {max}")
        };
        return Err(refused(format!(
            "{} takes {want} arguments, not {n}",
            p.global
        )));
    }
    Ok(())
}

/// An integer argument.
pub(crate) fn int_of(v: &Value, what: &str) -> Result<i64, DecodeErrorKind> {
    match v {
        Value::Int(_) | Value::Bool(_) | Value::BigInt(_) => {
            v.as_i64().ok_or_else(|| DecodeErrorKind::Invalid {
                what: "integer",
                detail: format!("{what} does not fit in 64 bits"),
            })
        }
        other => Err(type_err(format!("an int for {what}"), other)),
    }
}

/// A non-negative integer argument as `usize`.
pub(crate) fn usize_of(v: &Value, what: &str) -> Result<usize, DecodeErrorKind> {
    let i = int_of(v, what)?;
    usize::try_from(i).map_err(|_| DecodeErrorKind::Invalid {
        what: "integer",
        detail: format!("{what} must be non-negative, not {i}"),
    })
}

/// A shape: a tuple or list of non-negative ints, or one int.
pub(crate) fn shape_of(v: &Value, what: &str) -> Result<Vec<usize>, DecodeErrorKind> {
    match v {
        Value::Tuple(items) | Value::List(items) => {
            items.iter().map(|d| usize_of(d, what)).collect()
        }
        Value::Int(_) | Value::BigInt(_) => Ok(vec![usize_of(v, what)?]),
        other => Err(type_err(format!("a tuple of ints for {what}"), other)),
    }
}

/// Whether a value is true in Python's sense, for the flag-like arguments numpy uses.
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::None => false,
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::Float(f) => *f != 0.0,
        Value::Str(s) => !s.is_empty(),
        Value::Bytes(b) | Value::ByteArray(b) => !b.is_empty(),
        Value::List(v) | Value::Tuple(v) => !v.is_empty(),
        Value::Dict(v) => !v.is_empty(),
        _ => true,
    }
}

/// A string argument (a `str`, or ASCII `bytes` from Python 2 streams read as bytes).
pub(crate) fn str_of<'v>(
    v: &'v Value,
    what: &str,
) -> Result<std::borrow::Cow<'v, str>, DecodeErrorKind> {
    match v {
        Value::Str(s) => Ok(std::borrow::Cow::Borrowed(s)),
        Value::Bytes(b) if b.is_ascii() => Ok(std::borrow::Cow::Owned(
            String::from_utf8_lossy(b).into_owned(),
        )),
        other => Err(type_err(format!("a str for {what}"), other)),
    }
}

/// Encodes a `str` as latin-1 (each character one byte), as numpy's Python-2-era rawdata
/// and `_codecs.encode(s, 'latin1')` need.
pub(crate) fn latin1(s: &str, what: &str) -> Result<Bytes, DecodeErrorKind> {
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        let b = u8::try_from(u32::from(c)).map_err(|_| DecodeErrorKind::Invalid {
            what: "latin-1 text",
            detail: format!(
                "{what} has character U+{:04X}, outside latin-1",
                u32::from(c)
            ),
        })?;
        out.push(b);
    }
    Ok(Bytes::from(out))
}

/// Encodes `s` in the named codec (latin-1, ASCII or UTF-8).
pub(crate) fn encode(s: &str, encoding: &str, what: &str) -> Result<Bytes, DecodeErrorKind> {
    match encoding.to_ascii_lowercase().replace('_', "-").as_str() {
        "latin1" | "latin-1" | "iso-8859-1" | "iso8859-1" | "l1" | "8859" | "cp819" => {
            latin1(s, what)
        }
        "utf-8" | "utf8" => Ok(Bytes::copy_from_slice(s.as_bytes())),
        "ascii" | "us-ascii" if s.is_ascii() => Ok(Bytes::copy_from_slice(s.as_bytes())),
        "ascii" | "us-ascii" => Err(DecodeErrorKind::Invalid {
            what: "ascii text",
            detail: format!("{what} is not ASCII"),
        }),
        other => Err(refused(format!("encoding '{other}' is not supported"))),
    }
}

/// The bytes of a bytes-like value and whether they are read-only.
pub(crate) fn buffer_of(v: &Value) -> Option<(Bytes, bool)> {
    match v {
        Value::Buffer { data, readonly } => Some((data.clone(), *readonly)),
        Value::Bytes(b) => Some((b.clone(), true)),
        Value::ByteArray(b) => Some((b.clone(), false)),
        _ => None,
    }
}

//! serde's error traits for [`DecodeError`], and the field path errors carry.

use std::fmt::Display;

use crate::error::{DecodeError, DecodeErrorKind};
use crate::value::Value;

impl ::serde::de::Error for DecodeError {
    fn custom<T: Display>(msg: T) -> Self {
        DecodeError::new(DecodeErrorKind::Serde {
            path: String::new(),
            message: msg.to_string(),
        })
    }
}

/// One step into a value: a struct field or dict key, or a sequence index.
pub(crate) enum Step<'v> {
    Key(&'v Value),
    /// A `str` key.
    KeyStr(&'v str),
    /// An `int` key.
    KeyInt(i64),
    /// A key of another type, by its Python type name.
    KeyOther(&'static str),
    Field(&'v str),
    Index(usize),
}

/// Prefixes the path of a deserialization error with `step` (errors of the reader itself
/// have no path and are passed through).
pub(crate) fn at(step: Step<'_>, mut e: DecodeError) -> DecodeError {
    if let DecodeErrorKind::Serde { path, .. } = &mut e.kind {
        let step = match step {
            Step::Key(Value::Str(s)) => Step::KeyStr(s),
            Step::Key(Value::Int(i)) => Step::KeyInt(*i),
            Step::Key(other) => Step::KeyOther(other.type_name()),
            step => step,
        };
        let head = match step {
            Step::Field(name) => name.to_string(),
            Step::KeyStr(s) if is_name(s) => s.to_string(),
            Step::KeyStr(s) => format!("[{s:?}]"),
            Step::Index(i) => format!("[{i}]"),
            Step::KeyInt(i) => format!("[{i}]"),
            Step::KeyOther(name) => format!("[<{name}>]"),
            // Turned into one of the above first.
            Step::Key(_) => String::new(),
        };
        let sep = if path.is_empty() || path.starts_with('[') {
            ""
        } else {
            "."
        };
        *path = format!("{head}{sep}{path}");
    }
    e
}

/// Whether `s` reads as a plain name in a path (`weights`, `layer_2`).
fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

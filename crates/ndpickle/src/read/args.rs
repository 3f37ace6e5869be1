//! A recorded call ([`CallParts`]) and the small value helpers the shape matchers
//! (`builtins`, `numpy`, `pyarrow`, `compressed`) share; `call` dispatches to them.

use bytes::Bytes;

use crate::error::DecodeErrorKind;
use crate::value::{Global, Object, Value};

use super::allow::Known;

/// A call with its arguments and everything later applied to its result, as values.
#[derive(Debug)]
pub(crate) struct CallParts<'g> {
    /// The callable as the stream names it (borrowed from the arena, where other calls of
    /// it read it too).
    pub global: &'g Global,
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

impl CallParts<'_> {
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
            callable: self.global.clone(),
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
    if s.is_ascii() {
        return Ok(Bytes::copy_from_slice(s.as_bytes()));
    }
    // `s` is UTF-8: code points below U+0100 are one byte, or 0xC2/0xC3 and one
    // continuation byte carrying the low six bits. Written without branches on the data
    // (float bytes are half non-ASCII); any other lead byte is caught at the end.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let (mut i, mut bad) = (0, false);
    while let Some(&c) = b.get(i) {
        let high = c >= 0x80;
        let next = b.get(i + 1).copied().unwrap_or(0);
        bad |= high & (c & 0xFE != 0xC2);
        out.push(if high {
            ((c & 0x03) << 6) | (next & 0x3F)
        } else {
            c
        });
        i += 1 + usize::from(high);
    }
    if bad {
        let at = s.chars().position(|c| u32::from(c) > 0xFF).unwrap_or(0);
        return Err(not_latin1(s, at, what));
    }
    Ok(Bytes::from(out))
}

/// The error for the character at index `at` of `s`, outside latin-1.
fn not_latin1(s: &str, at: usize, what: &str) -> DecodeErrorKind {
    let c = s.chars().nth(at).map_or(0, u32::from);
    DecodeErrorKind::Invalid {
        what: "latin-1 text",
        detail: format!("{what} has character U+{c:04X}, outside latin-1"),
    }
}

/// Whether codec name `name` is one of `names`, ignoring case and `_` against `-`.
fn codec_is(name: &str, names: &[&str]) -> bool {
    let norm = |b: u8| {
        if b == b'_' {
            b'-'
        } else {
            b.to_ascii_lowercase()
        }
    };
    names
        .iter()
        .any(|n| n.len() == name.len() && n.bytes().zip(name.bytes()).all(|(a, b)| a == norm(b)))
}

/// Encodes `s` in the named codec (latin-1, ASCII or UTF-8).
pub(crate) fn encode(s: &str, encoding: &str, what: &str) -> Result<Bytes, DecodeErrorKind> {
    const LATIN1: &[&str] = &[
        "latin1",
        "latin-1",
        "iso-8859-1",
        "iso8859-1",
        "l1",
        "8859",
        "cp819",
    ];
    if codec_is(encoding, LATIN1) {
        latin1(s, what)
    } else if codec_is(encoding, &["utf-8", "utf8"]) {
        Ok(Bytes::copy_from_slice(s.as_bytes()))
    } else if codec_is(encoding, &["ascii", "us-ascii"]) {
        if s.is_ascii() {
            Ok(Bytes::copy_from_slice(s.as_bytes()))
        } else {
            Err(DecodeErrorKind::Invalid {
                what: "ascii text",
                detail: format!("{what} is not ASCII"),
            })
        }
    } else {
        let other = encoding.to_ascii_lowercase().replace('_', "-");
        Err(refused(format!("encoding '{other}' is not supported")))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_maps_every_code_point_below_256_to_its_byte() {
        let all: String = (0u8..=255).map(char::from).collect();
        assert_eq!(
            &latin1(&all, "t").unwrap()[..],
            &(0u8..=255).collect::<Vec<_>>()[..]
        );
        assert_eq!(&latin1("abc", "t").unwrap()[..], b"abc");
        assert!(latin1("", "t").unwrap().is_empty());
    }

    #[test]
    fn latin1_names_the_first_character_outside_it() {
        for (s, want) in [
            ("a\u{e9}\u{20ac}x", "U+20AC"),
            ("\u{100}", "U+0100"),
            ("\u{1F600}", "U+1F600"),
        ] {
            let e = latin1(s, "rawdata").unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("rawdata"), "{e}");
        }
    }

    #[test]
    fn codec_names_ignore_case_and_underscores() {
        for name in ["latin1", "Latin-1", "ISO_8859_1", "L1", "cp819"] {
            assert_eq!(&encode("\u{e9}", name, "t").unwrap()[..], b"\xe9", "{name}");
        }
        assert_eq!(
            &encode("\u{e9}", "UTF_8", "t").unwrap()[..],
            "\u{e9}".as_bytes()
        );
        assert_eq!(&encode("ab", "US-ASCII", "t").unwrap()[..], b"ab");
        assert!(
            encode("\u{e9}", "ascii", "t")
                .unwrap_err()
                .to_string()
                .contains("not ASCII")
        );
        let e = encode("a", "Shift_JIS", "t").unwrap_err().to_string();
        assert!(e.contains("'shift-jis' is not supported"), "{e}");
    }
}

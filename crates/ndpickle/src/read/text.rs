//! Decoding of the text arguments of protocol 0 opcodes (`INT`, `LONG`, `FLOAT`, `STRING`,
//! `UNICODE`) and of `LONG1`/`LONG4` bytes.

use num_bigint::BigInt;

use bytes::Bytes;

use crate::error::DecodeErrorKind;
use crate::value::Value;

/// An integer from the stream: small ones stay machine integers.
#[derive(Debug, PartialEq)]
pub(crate) enum Int {
    /// Fits in an `i64`.
    Small(i64),
    /// Does not.
    Big(BigInt),
}

impl Int {
    fn from_big(b: BigInt) -> Int {
        match i64::try_from(&b) {
            Ok(i) => Int::Small(i),
            Err(_) => Int::Big(b),
        }
    }
}

fn invalid(what: &'static str, detail: impl Into<String>) -> DecodeErrorKind {
    DecodeErrorKind::Invalid {
        what,
        detail: detail.into(),
    }
}

fn show(line: &[u8]) -> String {
    let s = String::from_utf8_lossy(&line[..line.len().min(40)]).into_owned();
    if line.len() > 40 {
        format!("{s}...")
    } else {
        s
    }
}

/// Parses the decimal (or `0x`/`0o`/`0b`) text of `INT`/`LONG`, as Python's `int(s, 0)`
/// mostly does; `what` names the opcode argument.
pub(crate) fn parse_int(line: &[u8], what: &'static str) -> Result<Int, DecodeErrorKind> {
    let text = std::str::from_utf8(line)
        .map_err(|_| invalid(what, format!("'{}' is not an integer", show(line))))?
        .trim();
    let bad = || invalid(what, format!("'{}' is not an integer", show(line)));
    let (neg, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = rest.get(..2).map(|p| p.to_ascii_lowercase());
    let (radix, digits) = match lower.as_deref() {
        Some("0x") => (16, &rest[2..]),
        Some("0o") => (8, &rest[2..]),
        Some("0b") => (2, &rest[2..]),
        _ => (10, rest),
    };
    let digits = digits
        .strip_prefix('_')
        .filter(|_| radix != 10)
        .unwrap_or(digits);
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c == '_' || c.is_digit(radix))
    {
        return Err(bad());
    }
    let clean: Vec<u8> = digits.bytes().filter(|&b| b != b'_').collect();
    let mag = BigInt::parse_bytes(&clean, radix).ok_or_else(bad)?;
    Ok(Int::from_big(if neg { -mag } else { mag }))
}

/// Decodes the little-endian two's complement bytes of `LONG1`/`LONG4`.
pub(crate) fn decode_long(bytes: &[u8]) -> Int {
    if bytes.len() <= 8 {
        let mut buf = if bytes.last().is_some_and(|&b| b & 0x80 != 0) {
            [0xffu8; 8]
        } else {
            [0u8; 8]
        };
        buf[..bytes.len()].copy_from_slice(bytes);
        return Int::Small(i64::from_le_bytes(buf));
    }
    Int::from_big(BigInt::from_signed_bytes_le(bytes))
}

/// Parses the text of `FLOAT` as Python's `float()` would.
pub(crate) fn parse_float(line: &[u8]) -> Result<f64, DecodeErrorKind> {
    let bad = || invalid("FLOAT argument", format!("'{}' is not a float", show(line)));
    let text = std::str::from_utf8(line).map_err(|_| bad())?.trim();
    if text.is_empty() || text.contains("__") || text.starts_with('_') || text.ends_with('_') {
        return Err(bad());
    }
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    clean.parse::<f64>().map_err(|_| bad())
}

/// Decodes the quoted, backslash-escaped argument of `STRING` into bytes.
pub(crate) fn decode_string_literal(line: &[u8]) -> Result<Vec<u8>, DecodeErrorKind> {
    let n = line.len();
    if n < 2 || line[0] != line[n - 1] || (line[0] != b'\'' && line[0] != b'"') {
        return Err(invalid(
            "STRING argument",
            "the STRING opcode argument must be quoted",
        ));
    }
    let s = &line[1..n - 1];
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = s.get(i) else {
            return Err(invalid("STRING argument", "trailing \\ in string"));
        };
        i += 1;
        match e {
            b'\n' => {}
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match s.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            b'x' => {
                let hex = s.get(i..i + 2).and_then(|h| std::str::from_utf8(h).ok());
                let v = hex
                    .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        invalid(
                            "STRING argument",
                            format!("invalid \\x escape at position {}", i - 2),
                        )
                    })?;
                out.push(v);
                i += 2;
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Ok(out)
}

/// `bytes` as latin-1 text: each byte the character of the same number.
pub fn latin1_text(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Whether `b` is UTF-8 once three-byte encodings of surrogates (U+D800 to U+DFFF, which
/// CPython writes with `surrogatepass`) are allowed.
pub(crate) fn is_utf8_with_surrogates(b: &[u8]) -> bool {
    let mut rest = b;
    loop {
        match std::str::from_utf8(rest) {
            Ok(_) => return true,
            Err(e) => {
                rest = &rest[e.valid_up_to()..];
                match rest {
                    [0xED, 0xA0..=0xBF, 0x80..=0xBF, tail @ ..] => rest = tail,
                    _ => return false,
                }
            }
        }
    }
}

/// A string leaf as a tree holds it: Python 2 `str` decoded as latin-1; strings with lone
/// surrogates refused (a Rust `String` cannot hold them).
pub(crate) fn tree_leaf(v: Value) -> Result<Value, DecodeErrorKind> {
    match v {
        Value::Py2Str(b) => Ok(Value::Str(latin1_text(&b))),
        Value::SurrogateStr(_) => Err(invalid(
            "utf-8 string",
            "it holds a lone surrogate, which a Rust string cannot",
        )),
        v => Ok(v),
    }
}

/// A string from UTF-8 bytes that may encode lone surrogates: a [`Value::Str`], or a
/// [`Value::SurrogateStr`] when it has any.
pub(crate) fn str_value(bytes: Vec<u8>) -> Result<Value, DecodeErrorKind> {
    match String::from_utf8(bytes) {
        Ok(s) => Ok(Value::Str(s)),
        Err(e) if is_utf8_with_surrogates(e.as_bytes()) => {
            Ok(Value::SurrogateStr(Bytes::from(e.into_bytes())))
        }
        Err(e) => Err(invalid("utf-8 string", e.utf8_error().to_string())),
    }
}

/// Decodes the raw-unicode-escape argument of `UNICODE`; lone surrogates (`\ud800`) make
/// a [`Value::SurrogateStr`].
pub(crate) fn decode_raw_unicode_escape(s: &[u8]) -> Result<Value, DecodeErrorKind> {
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    let push = |out: &mut Vec<u8>, code: u32| {
        // UTF-8, surrogates included (generalized UTF-8); `code` is at most 0x10FFFF.
        if code < 0x80 {
            out.push(code as u8);
        } else if code < 0x800 {
            out.extend([0xC0 | (code >> 6) as u8, 0x80 | (code & 0x3F) as u8]);
        } else if code < 0x10000 {
            out.extend([
                0xE0 | (code >> 12) as u8,
                0x80 | ((code >> 6) & 0x3F) as u8,
                0x80 | (code & 0x3F) as u8,
            ]);
        } else {
            out.extend([
                0xF0 | (code >> 18) as u8,
                0x80 | ((code >> 12) & 0x3F) as u8,
                0x80 | ((code >> 6) & 0x3F) as u8,
                0x80 | (code & 0x3F) as u8,
            ]);
        }
    };
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' {
            push(&mut out, u32::from(s[i]));
            i += 1;
            continue;
        }
        let start = i;
        while i < s.len() && s[i] == b'\\' {
            out.push(b'\\');
            i += 1;
        }
        if (i - start) % 2 == 0 || i >= s.len() || (s[i] != b'u' && s[i] != b'U') {
            continue;
        }
        out.pop();
        let count = if s[i] == b'u' { 4 } else { 8 };
        i += 1;
        let hex = s
            .get(i..i + count)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| {
                invalid(
                    "UNICODE argument",
                    format!("truncated \\uXXXX escape at position {start}"),
                )
            })?;
        let code =
            u32::from_str_radix(hex, 16).map_err(|e| invalid("UNICODE argument", e.to_string()))?;
        if code > 0x10FFFF {
            return Err(invalid(
                "UNICODE argument",
                format!("code point 0x{code:x} is out of range"),
            ));
        }
        push(&mut out, code);
        i += count;
    }
    str_value(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints() {
        assert_eq!(parse_int(b"123", "x").unwrap(), Int::Small(123));
        assert_eq!(parse_int(b"-0x10", "x").unwrap(), Int::Small(-16));
        assert_eq!(parse_int(b"1_000", "x").unwrap(), Int::Small(1000));
        assert!(matches!(
            parse_int(b"99999999999999999999999", "x").unwrap(),
            Int::Big(_)
        ));
        for bad in [
            &b""[..],
            b"abc",
            b"1__0",
            b"_1",
            b"1_",
            b"0x",
            b"--1",
            b"1.5",
        ] {
            assert!(parse_int(bad, "x").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn longs() {
        assert_eq!(decode_long(&[]), Int::Small(0));
        assert_eq!(decode_long(&[0xff]), Int::Small(-1));
        assert_eq!(decode_long(&[0x00, 0x80]), Int::Small(-32768));
        assert_eq!(decode_long(&[0xff, 0x00]), Int::Small(255));
        let big = decode_long(&[0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(big, Int::Big(BigInt::from(1u128 << 64)));
    }

    #[test]
    fn literals() {
        assert_eq!(
            decode_string_literal(b"'a\\x41\\n\\101\\q'").unwrap(),
            b"aA\nA\\q"
        );
        assert!(decode_string_literal(b"'abc").is_err());
        assert!(decode_string_literal(b"'").is_err());
        assert!(decode_string_literal(b"'\\x4'").is_err());
        assert!(decode_string_literal(b"'\\'").is_err());
        assert_eq!(
            decode_raw_unicode_escape(b"a\\u00e9\\\\u0041").unwrap(),
            Value::Str("a\u{e9}\\\\u0041".into())
        );
        assert!(decode_raw_unicode_escape(b"\\u12").is_err());
        assert!(decode_raw_unicode_escape(b"\\U00110000").is_err());
        assert_eq!(
            decode_raw_unicode_escape(b"x\\ud800").unwrap(),
            Value::SurrogateStr(Bytes::from_static(b"x\xed\xa0\x80"))
        );
        assert!(is_utf8_with_surrogates(b"\xed\xbf\xbf"));
        assert!(!is_utf8_with_surrogates(b"\xed\xc0\x80"));
        assert!(tree_leaf(Value::SurrogateStr(Bytes::new())).is_err());
        assert_eq!(
            tree_leaf(Value::Py2Str(Bytes::from_static(b"\xe9"))).unwrap(),
            Value::Str("\u{e9}".into())
        );
        assert_eq!(parse_float(b"1.5").unwrap(), 1.5);
        assert!(parse_float(b"x").is_err());
    }
}

//! Decoding of the text arguments of protocol 0 opcodes (`INT`, `LONG`, `FLOAT`, `STRING`,
//! `UNICODE`) and of `LONG1`/`LONG4` bytes.

use num_bigint::BigInt;

use crate::error::DecodeErrorKind;

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

/// Decodes the raw-unicode-escape argument of `UNICODE`.
pub(crate) fn decode_raw_unicode_escape(s: &[u8]) -> Result<String, DecodeErrorKind> {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' {
            out.push(char::from(s[i]));
            i += 1;
            continue;
        }
        let start = i;
        while i < s.len() && s[i] == b'\\' {
            out.push('\\');
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
        let ch = char::from_u32(code).ok_or_else(|| {
            invalid(
                "UNICODE argument",
                format!("code point 0x{code:x} is a surrogate or out of range"),
            )
        })?;
        out.push(ch);
        i += count;
    }
    Ok(out)
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
            "a\u{e9}\\\\u0041"
        );
        assert!(decode_raw_unicode_escape(b"\\u12").is_err());
        assert!(decode_raw_unicode_escape(b"\\ud800").is_err());
        assert_eq!(parse_float(b"1.5").unwrap(), 1.5);
        assert!(parse_float(b"x").is_err());
    }
}

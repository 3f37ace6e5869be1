//! A description of what a pickle holds, for people (an indented tree) and for programs
//! (JSON): the structure of a [`Value`] the safe reader returned, with arrays shown as dtype,
//! shape, strides, bytes and where their data lives (in the pickle at a byte offset, in
//! out-of-band buffer *k*, a view of an array shown earlier, or memory the reader made:
//! decompressed or copied), and scalars as Python would print them.
//!
//! The `ndpickle inspect` command (the Rust binary and the Python package's entry point) is
//! this module plus argument parsing.
//!
//! ```
//! use ndpickle::inspect::{self, InspectOptions};
//! use ndpickle::ReadOptions;
//!
//! let data = bytes::Bytes::from(ndpickle::to_vec(&vec![1.5f64, 2.0])?);
//! let (value, sources) = inspect::read(data, Vec::new(), &ReadOptions::default())?;
//! let text = inspect::text(&value, &sources, &InspectOptions::default());
//! assert_eq!(text, "list of 2\n  [0]: 1.5\n  [1]: 2.0\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Data the reader decompressed is shown with its codec and ratio:
//!
//! ```
//! use ndpickle::inspect::{self, InspectOptions};
//! use ndpickle::codec::{Codec, Compression, Filter};
//! use ndpickle::{ReadOptions, WriteOptions};
//!
//! let a = ndarray::Array1::<f64>::zeros(4096);
//! let lz4 = Compression::Fixed(Codec::Lz4, Filter::None);
//! let opts = WriteOptions::builder().protocol(5).compression(lz4).build()?;
//! let data = bytes::Bytes::from(ndpickle::to_vec_with(&a, &opts)?);
//! let (value, sources) = inspect::read(data, Vec::new(), &ReadOptions::default())?;
//! let text = inspect::text(&value, &sources, &InspectOptions::default());
//! assert!(text.contains("decompressed (lz4, 32768 bytes from "), "{text}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt::Write as _;

use bytes::Bytes;

use crate::array::NdArray;
use crate::error::DecodeError;
use crate::read::{InBuffer, Inflated, ReadOptions};
use crate::value::Value;

/// Reads `pickle` and its out-of-band `buffers` with the safe reader (in place: arrays view
/// this memory where they can) and returns the value with the [`Sources`] that tell where
/// each array's data lives, decompressed buffers included (with their codec and compressed
/// size). Nothing is executed; `options` apply as to [`crate::from_bytes_payload_with`].
pub fn read(
    pickle: Bytes,
    buffers: Vec<InBuffer>,
    options: &ReadOptions,
) -> Result<(Value, Sources), DecodeError> {
    let raw = buffers.iter().map(|b| b.data().clone()).collect::<Vec<_>>();
    let (value, inflated) =
        crate::read::from_bytes_payload_inflated(pickle.clone(), buffers, options)?;
    let mut sources = Sources::new(&pickle, &raw);
    sources.inflated = inflated;
    Ok((value, sources))
}

/// How much of the tree to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InspectOptions {
    /// Containers deeper than this are summarised, not expanded (the root is depth 0).
    pub depth: usize,
    /// At most this many items of a container are shown; the rest are counted ("… N more").
    pub max_items: usize,
}

impl Default for InspectOptions {
    /// Depth 8, 20 items per container.
    fn default() -> InspectOptions {
        InspectOptions {
            depth: 8,
            max_items: 20,
        }
    }
}

/// The memory the pickle was read from: the pickle itself and its out-of-band buffers, so
/// that an array can be told to view one of them (by address; nothing is dereferenced).
#[derive(Clone, Debug)]
pub struct Sources {
    pickle: (usize, usize),
    buffers: Vec<(usize, usize)>,
    /// Buffers the reader decompressed (only [`read`] knows them).
    inflated: Vec<Inflated>,
}

impl Sources {
    /// The pickle's bytes and its out-of-band buffers, as given to the reader (the reader
    /// must have read them in place: [`crate::from_bytes`] or
    /// [`crate::from_bytes_payload_with`], so that arrays view this memory). Decompressed
    /// data is then shown as new memory; [`read`] knows its codec and ratio.
    pub fn new<B: AsRef<[u8]>>(pickle: &[u8], buffers: &[B]) -> Sources {
        let span = |b: &[u8]| (b.as_ptr() as usize, b.len());
        Sources {
            pickle: span(pickle),
            buffers: buffers.iter().map(|b| span(b.as_ref())).collect(),
            inflated: Vec::new(),
        }
    }
}

/// The tree as indented text, one line per node (see the module example).
pub fn text(value: &Value, sources: &Sources, options: &InspectOptions) -> String {
    let node = Walker::new(sources, options).node(value, "obj".into(), 0);
    let mut out = String::new();
    write_text(&node, None, 0, &mut out);
    out
}

/// The tree as one JSON document: every node an object with `"type"`, the node's facts
/// (`"dtype"`, `"shape"`, `"strides"`, `"nbytes"`, `"data"` for arrays; `"value"` for
/// scalars; `"len"` for containers), `"items"` (with `"key"` for dict entries) and
/// `"omitted"` when items were left out.
pub fn json(value: &Value, sources: &Sources, options: &InspectOptions) -> String {
    let node = Walker::new(sources, options).node(value, "obj".into(), 0);
    let mut out = String::new();
    write_json(&node, None, &mut out);
    out.push('\n');
    out
}

/// One fact about a node, as text and as JSON.
#[derive(Clone, Debug)]
enum Fact {
    Str(String),
    Int(i128),
    Ints(Vec<i128>),
    Bool(bool),
}

/// A node of the description: what it is, its facts, and its (possibly cut) children.
#[derive(Debug)]
struct Node {
    /// The Python type (`dict`, `numpy.ndarray`, ...).
    kind: String,
    /// The Python repr, for scalars.
    repr: Option<String>,
    facts: Vec<(&'static str, Fact)>,
    items: Vec<(Option<String>, Node)>,
    /// Items not shown (over `max_items`, or all of them below `depth`).
    omitted: usize,
}

impl Node {
    fn new(kind: impl Into<String>) -> Node {
        Node {
            kind: kind.into(),
            repr: None,
            facts: Vec::new(),
            items: Vec::new(),
            omitted: 0,
        }
    }

    fn scalar(kind: &str, repr: String) -> Node {
        let mut n = Node::new(kind);
        n.repr = Some(repr);
        n
    }

    fn fact(mut self, name: &'static str, f: Fact) -> Node {
        self.facts.push((name, f));
        self
    }
}

/// Walks a value, remembering the arrays seen (their memory and path) to spot views.
struct Walker<'a> {
    sources: &'a Sources,
    options: &'a InspectOptions,
    arrays: Vec<(usize, usize, String)>,
}

impl<'a> Walker<'a> {
    fn new(sources: &'a Sources, options: &'a InspectOptions) -> Walker<'a> {
        Walker {
            sources,
            options,
            arrays: Vec::new(),
        }
    }

    fn node(&mut self, v: &Value, path: String, depth: usize) -> Node {
        match v {
            Value::None => Node::scalar("NoneType", "None".into()),
            Value::Bool(b) => Node::scalar("bool", if *b { "True" } else { "False" }.into()),
            Value::Int(i) => Node::scalar("int", i.to_string()),
            Value::BigInt(i) => Node::scalar("int", i.to_string()),
            Value::Float(x) => Node::scalar("float", float_repr(*x)),
            Value::Complex(c) => Node::scalar("complex", complex_repr(c.re, c.im)),
            Value::Str(s) => Node::scalar("str", str_repr(s)),
            Value::Bytes(b) => {
                Node::scalar("bytes", bytes_repr(b)).fact("len", Fact::Int(b.len() as i128))
            }
            Value::ByteArray(b) => {
                Node::scalar("bytearray", format!("bytearray({})", bytes_repr(b)))
                    .fact("len", Fact::Int(b.len() as i128))
            }
            Value::Buffer { data, readonly } => {
                let n = Node::new("pickle.PickleBuffer")
                    .fact("nbytes", Fact::Int(data.len() as i128))
                    .fact("readonly", Fact::Bool(*readonly));
                self.placed(n, data.as_ptr() as usize, data.len())
            }
            Value::List(x) => self.seq("list", x, &path, depth),
            Value::Tuple(x) => self.seq("tuple", x, &path, depth),
            Value::Set(x) => self.seq("set", x, &path, depth),
            Value::FrozenSet(x) => self.seq("frozenset", x, &path, depth),
            Value::Dict(kv) => {
                let mut n = Node::new("dict").fact("len", Fact::Int(kv.len() as i128));
                let shown = self.shown(kv.len(), depth, &mut n);
                for (k, x) in kv.iter().take(shown) {
                    let key = match k {
                        Value::Str(s) => str_repr(s),
                        Value::Int(i) => i.to_string(),
                        other => self
                            .node(other, String::new(), depth + 1)
                            .repr
                            .unwrap_or_else(|| format!("<{}>", other.type_name())),
                    };
                    let child = self.node(x, format!("{path}[{key}]"), depth + 1);
                    n.items.push((Some(key), child));
                }
                n
            }
            Value::Array(a) => self.array("numpy.ndarray", a, path),
            Value::Scalar(a) => self.array("numpy scalar", a, path),
            Value::DType(d) => Node::scalar(
                "numpy.dtype",
                format!("dtype({})", str_repr(&d.to_string())),
            ),
            Value::Global(g) => Node::scalar("global", g.to_string()),
            // Only graphs (the bindings' reader) hold these; the tree readers never do.
            Value::Ref(i) => Node::scalar("shared reference", format!("<shared value {i}>")),
            Value::Py2Str(b) => Node::scalar("str (Python 2)", bytes_repr(b)),
            Value::SurrogateStr(b) => Node::scalar("str", bytes_repr(b)),
            Value::Object(o) => {
                let mut n = Node::new("object")
                    .fact("callable", Fact::Str(o.callable.to_string()))
                    .fact("args", Fact::Int(o.args.len() as i128));
                let shown = self.shown(o.args.len(), depth, &mut n);
                for (i, x) in o.args.iter().take(shown).enumerate() {
                    let child = self.node(x, format!("{path}.args[{i}]"), depth + 1);
                    n.items.push((Some(format!("arg {i}")), child));
                }
                if let Some(s) = &o.state {
                    let child = self.node(s, format!("{path}.state"), depth + 1);
                    n.items.push((Some("state".into()), child));
                }
                n
            }
        }
    }

    /// How many of `len` items to show at `depth`; the rest are counted in `n.omitted`.
    fn shown(&self, len: usize, depth: usize, n: &mut Node) -> usize {
        let shown = if depth >= self.options.depth {
            0
        } else {
            len.min(self.options.max_items)
        };
        n.omitted = len - shown;
        shown
    }

    fn seq(&mut self, kind: &str, items: &[Value], path: &str, depth: usize) -> Node {
        let mut n = Node::new(kind).fact("len", Fact::Int(items.len() as i128));
        let shown = self.shown(items.len(), depth, &mut n);
        for (i, x) in items.iter().take(shown).enumerate() {
            let child = self.node(x, format!("{path}[{i}]"), depth + 1);
            n.items.push((Some(format!("[{i}]")), child));
        }
        n
    }

    fn array(&mut self, kind: &str, a: &NdArray, path: String) -> Node {
        let nbytes = (a.len() as u128) * (a.dtype().itemsize() as u128);
        let start = a.data().as_ptr() as usize;
        let len = a.data().len();
        let view = self
            .arrays
            .iter()
            .find(|(s, l, _)| len > 0 && start >= *s && start + len <= s + l)
            .map(|(_, _, p)| format!("view of {p}"));
        self.arrays.push((start, len, path));
        let n = Node::new(kind)
            .fact("dtype", Fact::Str(a.dtype().to_string()))
            .fact(
                "shape",
                Fact::Ints(a.shape().iter().map(|&d| d as i128).collect()),
            )
            .fact(
                "strides",
                Fact::Ints(a.strides().iter().map(|&d| d as i128).collect()),
            )
            .fact("nbytes", Fact::Int(nbytes as i128))
            .fact("readonly", Fact::Bool(a.is_readonly()));
        match view {
            Some(v) => n.fact("data", Fact::Str(v)),
            None => self.placed(n, start, len),
        }
    }

    /// `n` with the facts of where its `len` bytes at `start` live: `"data"`, and for
    /// decompressed memory also `"codec"` and `"compressed_nbytes"` (what the whole
    /// decompressed buffer was made from).
    fn placed(&self, n: Node, start: usize, len: usize) -> Node {
        let inside = |s: usize, l: usize| start >= s && start.saturating_add(len) <= s + l;
        let inflated = self
            .sources
            .inflated
            .iter()
            .find(|d| len > 0 && inside(d.addr, d.len));
        match inflated {
            Some(d) => {
                let ratio = d.len as f64 / d.compressed.max(1) as f64;
                let within = match start - d.addr {
                    0 => String::new(),
                    at => format!(" at byte {at}"),
                };
                n.fact(
                    "data",
                    Fact::Str(format!(
                        "decompressed ({}, {} bytes from {}: {ratio:.2}x){within}",
                        d.codec, d.len, d.compressed
                    )),
                )
                .fact("codec", Fact::Str(d.codec.clone()))
                .fact("compressed_nbytes", Fact::Int(i128::from(d.compressed)))
            }
            None => n.fact("data", Fact::Str(self.place(start, len))),
        }
    }

    /// Where memory at `start` (of `len` bytes) lies among the sources.
    fn place(&self, start: usize, len: usize) -> String {
        let inside = |(s, l): (usize, usize)| start >= s && start.saturating_add(len) <= s + l;
        if len > 0 && inside(self.sources.pickle) {
            return format!("in-band at byte {}", start - self.sources.pickle.0);
        }
        if len > 0 {
            for (k, &b) in self.sources.buffers.iter().enumerate() {
                if inside(b) {
                    return match start - b.0 {
                        0 => format!("out-of-band buffer {k}"),
                        at => format!("out-of-band buffer {k} at byte {at}"),
                    };
                }
            }
        }
        if len == 0 {
            "empty".into()
        } else {
            "new memory (decompressed or copied by the reader)".into()
        }
    }
}

fn write_text(n: &Node, key: Option<&str>, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    let _ = write!(out, "{pad}");
    if let Some(k) = key {
        let _ = write!(out, "{k}: ");
    }
    match &n.repr {
        Some(r)
            if n.facts.is_empty()
                && matches!(
                    n.kind.as_str(),
                    "NoneType" | "bool" | "int" | "float" | "str"
                ) =>
        {
            let _ = write!(out, "{r}");
        }
        Some(r) => {
            let _ = write!(out, "{} {r}", n.kind);
        }
        None => {
            let _ = write!(out, "{}", n.kind);
        }
    }
    for (name, f) in &n.facts {
        let _ = match (name, f) {
            (&"len", Fact::Int(i)) if n.repr.is_none() => write!(out, " of {i}"),
            (&"len", _) => Ok(()),
            (&"readonly", Fact::Bool(true)) => write!(out, " read-only"),
            (&"readonly", _) => Ok(()),
            (&"data", Fact::Str(s)) => write!(out, ", {s}"),
            // Already in the "data" text.
            (&"codec" | &"compressed_nbytes", _) => Ok(()),
            (name, Fact::Str(s)) => write!(out, " {name}={s}"),
            (name, Fact::Int(i)) => write!(out, " {name}={i}"),
            (name, Fact::Ints(v)) => write!(out, " {name}={}", tuple_repr(v)),
            (name, Fact::Bool(b)) => write!(out, " {name}={}", if *b { "True" } else { "False" }),
        };
    }
    out.push('\n');
    for (k, child) in &n.items {
        write_text(child, k.as_deref(), depth + 1, out);
    }
    if n.omitted > 0 {
        let _ = writeln!(out, "{pad}  … {} more", n.omitted);
    }
}

fn write_json(n: &Node, key: Option<&str>, out: &mut String) {
    out.push('{');
    if let Some(k) = key {
        let _ = write!(out, "\"key\":{},", json_str(k));
    }
    let _ = write!(out, "\"type\":{}", json_str(&n.kind));
    if let Some(r) = &n.repr {
        let _ = write!(out, ",\"value\":{}", json_str(r));
    }
    for (name, f) in &n.facts {
        let _ = write!(out, ",\"{name}\":");
        match f {
            Fact::Str(s) => out.push_str(&json_str(s)),
            Fact::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Fact::Ints(v) => {
                out.push('[');
                for (i, x) in v.iter().enumerate() {
                    let _ = write!(out, "{}{x}", if i > 0 { "," } else { "" });
                }
                out.push(']');
            }
            Fact::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        }
    }
    if !n.items.is_empty() {
        out.push_str(",\"items\":[");
        for (i, (k, child)) in n.items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_json(child, k.as_deref(), out);
        }
        out.push(']');
    }
    if n.omitted > 0 {
        let _ = write!(out, ",\"omitted\":{}", n.omitted);
    }
    out.push('}');
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn tuple_repr(v: &[i128]) -> String {
    match v {
        [x] => format!("({x},)"),
        _ => format!(
            "({})",
            v.iter().map(i128::to_string).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Python's `repr` of a float.
fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust's Debug is the shortest round-trip form with Python's thresholds for switching
    // to an exponent; Python writes the exponent with a sign and at least two digits.
    let s = format!("{x:?}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = e.strip_prefix('-').map_or(("+", e), |d| ("-", d));
            format!("{m}e{sign}{digits:0>2}").replace(".0e", "e")
        }
        None => s,
    }
}

fn complex_repr(re: f64, im: f64) -> String {
    let part = |x: f64| float_repr(x).trim_end_matches(".0").to_string();
    if re == 0.0 && re.is_sign_positive() {
        format!("{}j", part(im))
    } else {
        let sign = if im.is_sign_negative() { "" } else { "+" };
        format!("({}{sign}{}j)", part(re), part(im))
    }
}

/// Longest str or bytes repr shown, in characters, before "…".
const MAX_REPR: usize = 80;

/// Python's `repr` of a str (cut after [`MAX_REPR`] characters).
fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::new();
    out.push(quote);
    for (i, c) in s.chars().enumerate() {
        if i == MAX_REPR {
            out.push('…');
            break;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                let _ = match c as u32 {
                    n @ 0..=0xff => write!(out, "\\x{n:02x}"),
                    n @ 0x100..=0xffff => write!(out, "\\u{n:04x}"),
                    n => write!(out, "\\U{n:08x}"),
                };
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr` of bytes (cut after [`MAX_REPR`] bytes).
fn bytes_repr(b: &[u8]) -> String {
    let mut out = String::from("b'");
    for (i, &c) in b.iter().enumerate() {
        if i == MAX_REPR {
            out.push('…');
            break;
        }
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(c as char),
            _ => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reprs_follow_python() {
        assert_eq!(float_repr(1.0), "1.0");
        assert_eq!(float_repr(0.1), "0.1");
        assert_eq!(float_repr(1e16), "1e+16");
        assert_eq!(float_repr(1.5e-7), "1.5e-07");
        assert_eq!(float_repr(1e15), "1000000000000000.0");
        assert_eq!(float_repr(f64::NAN), "nan");
        assert_eq!(float_repr(f64::NEG_INFINITY), "-inf");
        assert_eq!(complex_repr(0.0, 2.0), "2j");
        assert_eq!(complex_repr(1.0, -2.5), "(1-2.5j)");
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("a\n\u{1}"), "'a\\n\\x01'");
        assert_eq!(bytes_repr(b"a'\x00"), "b'a\\'\\x00'");
        assert_eq!(json_str("a\"\u{2}"), "\"a\\\"\\u0002\"");
        assert_eq!(tuple_repr(&[3]), "(3,)");
        assert_eq!(tuple_repr(&[3, -8]), "(3, -8)");
    }
}

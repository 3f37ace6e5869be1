//! The pickle VM: stack, marks, memo and the opcode loop. It builds a graph of
//! [`Node`]s in an arena (so that memo and `DUP` references are O(1) and mutations through
//! them are seen everywhere, see [`super::arena`]) and never calls anything: `REDUCE`, `NEWOBJ`, `BUILD`... only
//! record [`Call`] nodes, which [`super::materialize`] later matches against known shapes.

use bytes::Bytes;

use crate::error::{DecodeError, DecodeErrorKind, WireError};
use crate::opcodes::*;
use crate::value::{Global, Value};
use crate::wire;

use super::allow;
use super::arena::{Arena, Call, Node, Slot, slot_type};
use super::compressed::{InBuffer, Inflater};
use super::materialize::Materializer;
use super::memo::Memo;
use super::options::ReadOptions;
use super::text::{self, Int};

fn type_err(expected: &str, found: &str) -> DecodeErrorKind {
    DecodeErrorKind::Type {
        expected: expected.to_string(),
        found: found.to_string(),
    }
}

/// Approximate heap cost of one arena node and of one slot, charged to the allocation limit.
const NODE_BYTES: u64 = (std::mem::size_of::<Node>() + 16) as u64;
const SLOT_BYTES: u64 = std::mem::size_of::<Slot>() as u64;

/// Runs the VM over `input` and returns the arena and the root slot.
pub(crate) struct Vm<'a> {
    input: &'a [u8],
    shared: Option<&'a Bytes>,
    pos: usize,
    stack: Vec<Slot>,
    marks: Vec<usize>,
    memo: Memo,
    pub(crate) arena: Arena,
    opts: &'a ReadOptions,
    buffers: &'a mut dyn Iterator<Item = InBuffer>,
    pub(crate) inflater: Inflater,
    alloc: u64,
    copied: u64,
    /// Short strings met so far, by a hash of their bytes (see [`Vm::share_short_strings`]).
    strings: Option<Box<[u32; STRING_SLOTS]>>,
}

/// Entries of the short-string table ([`Vm::share_short_strings`]).
const STRING_SLOTS: usize = 256;
/// The longest string the table shares.
const SHARED_STR_MAX: usize = 24;
/// An empty entry of the short-string table.
const NO_STRING: u32 = u32::MAX;

type Step = Result<Option<Slot>, DecodeErrorKind>;

/// The short-string table's entry for `bytes` (at most [`SHARED_STR_MAX`] of them).
fn string_slot(bytes: &[u8]) -> usize {
    let mut h = bytes.len() as u64;
    for chunk in bytes.chunks(8) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    (h >> (64 - STRING_SLOTS.trailing_zeros())) as usize
}

impl<'a> Vm<'a> {
    /// A VM over `input`; in-band payloads are sliced from `shared` when given (it must
    /// hold the same bytes as `input`), else copied once.
    pub(crate) fn new(
        input: &'a [u8],
        shared: Option<&'a Bytes>,
        opts: &'a ReadOptions,
        buffers: &'a mut dyn Iterator<Item = InBuffer>,
    ) -> Vm<'a> {
        Vm {
            input,
            shared,
            pos: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: Memo::default(),
            arena: Arena::default(),
            opts,
            buffers,
            inflater: Inflater::new(),
            alloc: 0,
            copied: 0,
            strings: None,
        }
    }

    /// Makes equal short strings one node, as if the stream had memoised them: a list of
    /// records written without a memo (serde-pickle's) then builds each field name once.
    /// For readers to which a string's identity means nothing (serde's); a table of
    /// [`STRING_SLOTS`] entries, the last string of each hash kept.
    pub(crate) fn share_short_strings(&mut self) {
        self.strings = Some(Box::new([NO_STRING; STRING_SLOTS]));
    }

    /// Offset of the first byte after the `STOP` opcode, once [`Vm::run`] returned.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Bytes already charged against the allocation limit.
    pub(crate) fn allocated(&self) -> u64 {
        self.alloc
    }

    /// Bytes already charged against the copy limit (by persistent-id materialization).
    pub(crate) fn copied(&self) -> u64 {
        self.copied
    }

    /// Executes opcodes up to `STOP` and returns the root.
    pub(crate) fn run(&mut self) -> Result<Slot, DecodeError> {
        loop {
            let start = self.pos;
            let Some(&op) = self.input.get(start) else {
                return Err(DecodeError {
                    offset: Some(start as u64),
                    opcode: None,
                    kind: DecodeErrorKind::UnexpectedEof,
                });
            };
            self.pos += 1;
            match self.step(op, start) {
                Ok(Some(root)) => return Ok(root),
                Ok(None) => {}
                Err(kind) => return Err(DecodeError::at(kind, start as u64, op)),
            }
        }
    }

    fn charge(&mut self, bytes: u64) -> Result<(), DecodeErrorKind> {
        self.alloc = self.alloc.saturating_add(bytes);
        if self.alloc > self.opts.max_alloc_bytes() {
            return Err(DecodeErrorKind::Limit {
                limit: "total allocation in bytes",
                max: self.opts.max_alloc_bytes(),
            });
        }
        Ok(())
    }

    fn node(&mut self, node: Node, start: usize, op: u8) -> Result<Slot, DecodeErrorKind> {
        let extra = match &node {
            Node::Leaf(Value::Str(s)) => s.len() as u64,
            Node::Leaf(Value::Py2Str(s) | Value::SurrogateStr(s)) => s.len() as u64,
            Node::Leaf(Value::BigInt(_)) => 16,
            Node::List(v) | Node::Tuple(v) | Node::Set(v) | Node::FrozenSet(v) => {
                v.len() as u64 * SLOT_BYTES
            }
            Node::Dict(v) => v.len() as u64 * 2 * SLOT_BYTES,
            _ => 0,
        };
        self.charge(NODE_BYTES + extra)?;
        let idx = u32::try_from(self.arena.nodes.len()).map_err(|_| DecodeErrorKind::Limit {
            limit: "number of values",
            max: u64::from(u32::MAX),
        })?;
        match &node {
            Node::List(v) | Node::Tuple(v) | Node::Set(v) | Node::FrozenSet(v) => {
                for &s in v {
                    self.arena.link(s);
                }
            }
            Node::Dict(v) => {
                for &(k, x) in v {
                    self.arena.link(k);
                    self.arena.link(x);
                }
            }
            Node::Call(c) => {
                self.arena.link(c.args);
                if let Some(k) = c.kwargs {
                    self.arena.link(k);
                }
            }
            _ => {}
        }
        self.arena.nodes.push(node);
        self.arena.origin.push((start as u64, op));
        self.arena.refs.push(0);
        Ok(Slot::Node(idx))
    }

    fn push_node(&mut self, node: Node, start: usize, op: u8) -> Step {
        let s = self.node(node, start, op)?;
        self.stack.push(s);
        Ok(None)
    }

    fn push(&mut self, s: Slot) -> Step {
        self.charge(SLOT_BYTES)?;
        self.stack.push(s);
        Ok(None)
    }

    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<Slot, DecodeErrorKind> {
        if self.stack.len() <= self.fence() {
            return Err(DecodeErrorKind::StackUnderflow);
        }
        self.stack.pop().ok_or(DecodeErrorKind::StackUnderflow)
    }

    fn top(&self) -> Result<Slot, DecodeErrorKind> {
        if self.stack.len() <= self.fence() {
            return Err(DecodeErrorKind::StackUnderflow);
        }
        self.stack
            .last()
            .copied()
            .ok_or(DecodeErrorKind::StackUnderflow)
    }

    fn pop_mark(&mut self) -> Result<Vec<Slot>, DecodeErrorKind> {
        let m = self.marks.pop().ok_or(DecodeErrorKind::MissingMark)?;
        Ok(self.stack.split_off(m.min(self.stack.len())))
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeErrorKind> {
        let s = wire::slice(self.input, self.pos, n, what)?;
        self.pos += n;
        Ok(s)
    }

    fn readline(&mut self, what: &'static str) -> Result<&'a [u8], DecodeErrorKind> {
        let rest = &self.input[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(WireError::Truncated {
                what,
                needed: rest.len() + 1,
                available: rest.len(),
            })?;
        self.pos += n + 1;
        let line = &rest[..n];
        Ok(line.strip_suffix(b"\r").unwrap_or(line))
    }

    fn len_prefixed(
        &mut self,
        len: u64,
        what: &'static str,
    ) -> Result<(usize, usize), DecodeErrorKind> {
        let n = wire::usize_from(len, what)?;
        let start = self.pos;
        self.take(n, what)?;
        Ok((start, n))
    }

    fn payload(&self, start: usize, n: usize) -> Bytes {
        match self.shared {
            Some(b) => b.slice(start..start + n),
            None => crate::alloc::copy_out(&self.input[start..start + n]),
        }
    }

    fn push_bytes(
        &mut self,
        len: u64,
        what: &'static str,
        array: bool,
        start: usize,
        op: u8,
    ) -> Step {
        let (s, n) = self.len_prefixed(len, what)?;
        if self.shared.is_none() {
            self.charge(n as u64)?;
        }
        let b = self.payload(s, n);
        self.push_node(
            Node::Leaf(if array {
                Value::ByteArray(b)
            } else {
                Value::Bytes(b)
            }),
            start,
            op,
        )
    }

    fn push_utf8(&mut self, len: u64, what: &'static str, start: usize, op: u8) -> Step {
        let (s, n) = self.len_prefixed(len, what)?;
        let bytes = &self.input[s..s + n];
        let mut entry = None;
        if let Some(table) = &self.strings
            && n <= SHARED_STR_MAX
        {
            let h = string_slot(bytes);
            let idx = table[h];
            if idx != NO_STRING
                && let Node::Leaf(Value::Str(known)) = &self.arena.nodes[idx as usize]
                && known.as_bytes() == bytes
            {
                return self.push(Slot::Node(idx));
            }
            entry = Some(h);
        }
        let v = match simdutf8::basic::from_utf8(bytes) {
            Ok(text) => Value::Str(text.to_owned()),
            // CPython writes lone surrogates with `surrogatepass`.
            Err(_) => text::str_value(bytes.to_vec())?,
        };
        let shared = matches!(v, Value::Str(_));
        let slot = self.node(Node::Leaf(v), start, op)?;
        if let (Some(h), Some(table), Slot::Node(idx), true) =
            (entry, &mut self.strings, slot, shared)
        {
            table[h] = idx;
        }
        self.stack.push(slot);
        Ok(None)
    }

    /// A Python 2 `str`: its bytes, decoded as the caller asks when the value is built.
    fn push_py2_str(&mut self, bytes: &[u8], start: usize, op: u8) -> Step {
        let v = Value::Py2Str(Bytes::copy_from_slice(bytes));
        self.push_node(Node::Leaf(v), start, op)
    }

    fn push_int(&mut self, i: Int, start: usize, op: u8) -> Step {
        match i {
            Int::Small(i) => self.push(Slot::Int(i)),
            Int::Big(b) => self.push_node(Node::Leaf(Value::BigInt(b)), start, op),
        }
    }

    fn memo_put(&mut self, key: u64) -> Step {
        let top = self.top()?;
        if !self.memo.contains(key) && self.memo.len() >= self.opts.max_memo_entries() {
            return Err(DecodeErrorKind::Limit {
                limit: "memo entries",
                max: self.opts.max_memo_entries() as u64,
            });
        }
        self.charge(SLOT_BYTES * 2)?;
        self.memo.insert(key, top);
        Ok(None)
    }

    fn memo_get(&mut self, key: u64) -> Step {
        let s = self
            .memo
            .get(key)
            .ok_or(DecodeErrorKind::MissingMemo(key))?;
        self.push(s)
    }

    fn node_mut(&mut self, s: Slot) -> Option<&mut Node> {
        match s {
            Slot::Node(i) => self.arena.nodes.get_mut(i as usize),
            _ => None,
        }
    }

    fn global(&mut self, module: &str, name: &str, start: usize, op: u8) -> Step {
        let known = allow::resolve(module, name, self.opts)?;
        self.push_node(Node::Global(Global::new(module, name), known), start, op)
    }

    fn str_of(&self, s: Slot) -> Option<&str> {
        match s {
            Slot::Node(i) => match &self.arena.nodes[i as usize] {
                Node::Leaf(Value::Str(s)) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }

    fn call(
        &mut self,
        callable: Slot,
        args: Slot,
        kwargs: Option<Slot>,
        start: usize,
        op: u8,
    ) -> Step {
        let callable = match callable {
            Slot::Node(i) if matches!(self.arena.nodes[i as usize], Node::Global(..)) => i,
            other => {
                return Err(type_err(
                    "a global as callable",
                    slot_type(&self.arena, other),
                ));
            }
        };
        match args {
            Slot::Node(i) if matches!(self.arena.nodes[i as usize], Node::Tuple(_)) => {}
            other => return Err(type_err("an argument tuple", slot_type(&self.arena, other))),
        }
        if let Some(k) = kwargs {
            match k {
                Slot::Node(i) if matches!(self.arena.nodes[i as usize], Node::Dict(_)) => {}
                other => {
                    return Err(type_err(
                        "a keyword argument dict",
                        slot_type(&self.arena, other),
                    ));
                }
            }
        }
        let call = Call {
            callable,
            args,
            kwargs,
            state: None,
            items: Vec::new(),
            pairs: Vec::new(),
        };
        self.push_node(Node::Call(Box::new(call)), start, op)
    }

    /// Appends `items` to the list (or object) in `target`.
    fn extend(&mut self, target: Slot, items: Vec<Slot>) -> Result<(), DecodeErrorKind> {
        self.charge(items.len() as u64 * SLOT_BYTES)?;
        for &s in &items {
            self.arena.link(s);
        }
        let found = slot_type(&self.arena, target);
        match self.node_mut(target) {
            Some(Node::List(v)) => v.extend(items),
            Some(Node::Call(c)) => c.items.extend(items),
            _ => return Err(type_err("a list to append to", found)),
        }
        Ok(())
    }

    /// Sets `pairs` on the dict (or object) in `target`.
    fn set_items(
        &mut self,
        target: Slot,
        items: Vec<Slot>,
        what: &str,
    ) -> Result<(), DecodeErrorKind> {
        if !items.len().is_multiple_of(2) {
            return Err(DecodeErrorKind::Invalid {
                what: "item list",
                detail: format!("odd number of items for {what}"),
            });
        }
        self.charge(items.len() as u64 * SLOT_BYTES)?;
        for &s in &items {
            self.arena.link(s);
        }
        let pairs = items.chunks_exact(2).map(|p| (p[0], p[1]));
        let found = slot_type(&self.arena, target);
        match self.node_mut(target) {
            Some(Node::Dict(v)) => v.extend(pairs),
            Some(Node::Call(c)) => c.pairs.extend(pairs),
            _ => return Err(type_err("a dict to set items in", found)),
        }
        Ok(())
    }

    /// The slot just below the topmost mark, after popping the mark's items.
    fn below_mark(&mut self) -> Result<(Slot, Vec<Slot>), DecodeErrorKind> {
        let items = self.pop_mark()?;
        let target = self.top()?;
        Ok((target, items))
    }

    fn persistent(&mut self, pid: Slot, start: usize, op: u8) -> Step {
        let Some(handler) = self.opts.persistent_id_handler().cloned() else {
            return Err(DecodeErrorKind::Refused(
                "a persistent id was found but no persistent-id handler was given".into(),
            ));
        };
        let pid_value = {
            let mut m = Materializer::new(
                &mut self.arena,
                self.opts,
                false,
                self.copied,
                self.alloc,
                &mut self.inflater,
            );
            let v = m.materialize(pid).map_err(|e| e.kind)?;
            self.copied = m.copied();
            self.alloc = m.allocated();
            v
        };
        let v = handler(&pid_value)
            .map_err(|e| DecodeErrorKind::Refused(format!("persistent id handler failed: {e}")))?;
        self.push_node(Node::Leaf(v), start, op)
    }

    fn step(&mut self, op: u8, start: usize) -> Step {
        match op {
            PROTO => {
                let [v] = wire::array::<1>(self.input, self.pos, "protocol number")?;
                self.pos += 1;
                if v > HIGHEST_PROTOCOL {
                    return Err(DecodeErrorKind::UnsupportedProtocol(v));
                }
                Ok(None)
            }
            FRAME => {
                let n = wire::u64_le(self.input, self.pos, "frame length")?;
                self.pos += 8;
                let n = wire::usize_from(n, "frame length")?;
                wire::slice(self.input, self.pos, n, "frame")?;
                Ok(None)
            }
            STOP => self.pop().map(Some),
            MARK => {
                self.charge(8)?;
                self.marks.push(self.stack.len());
                Ok(None)
            }
            POP => {
                if self.stack.len() > self.fence() {
                    self.stack.pop();
                } else if self.marks.pop().is_none() {
                    return Err(DecodeErrorKind::StackUnderflow);
                }
                Ok(None)
            }
            POP_MARK => {
                self.pop_mark()?;
                Ok(None)
            }
            DUP => {
                let t = self.top()?;
                self.push(t)
            }
            NONE => self.push(Slot::None),
            NEWTRUE => self.push(Slot::Bool(true)),
            NEWFALSE => self.push(Slot::Bool(false)),
            INT => {
                let line = self.readline("INT argument")?;
                match line {
                    b"00" => self.push(Slot::Bool(false)),
                    b"01" => self.push(Slot::Bool(true)),
                    _ => {
                        let i = text::parse_int(line, "INT argument")?;
                        self.push_int(i, start, op)
                    }
                }
            }
            LONG => {
                let line = self.readline("LONG argument")?;
                let line = line.strip_suffix(b"L").unwrap_or(line);
                let i = text::parse_int(line, "LONG argument")?;
                self.push_int(i, start, op)
            }
            BININT => {
                let v = wire::i32_le(self.input, self.pos, "BININT argument")?;
                self.pos += 4;
                self.push(Slot::Int(v.into()))
            }
            BININT1 => {
                let [v] = wire::array::<1>(self.input, self.pos, "BININT1 argument")?;
                self.pos += 1;
                self.push(Slot::Int(v.into()))
            }
            BININT2 => {
                let v = wire::u16_le(self.input, self.pos, "BININT2 argument")?;
                self.pos += 2;
                self.push(Slot::Int(v.into()))
            }
            LONG1 => {
                let [n] = wire::array::<1>(self.input, self.pos, "LONG1 length")?;
                self.pos += 1;
                let b = self.take(n.into(), "LONG1 bytes")?;
                self.push_int(text::decode_long(b), start, op)
            }
            LONG4 => {
                let n = wire::i32_le(self.input, self.pos, "LONG4 length")?;
                self.pos += 4;
                if n < 0 {
                    return Err(DecodeErrorKind::Invalid {
                        what: "LONG4 length",
                        detail: format!("negative byte count {n}"),
                    });
                }
                let b = self.take(n as usize, "LONG4 bytes")?;
                self.charge(b.len() as u64)?;
                self.push_int(text::decode_long(b), start, op)
            }
            FLOAT => {
                let line = self.readline("FLOAT argument")?;
                let f = text::parse_float(line)?;
                self.push(Slot::Float(f))
            }
            BINFLOAT => {
                let f = wire::f64_be(self.input, self.pos, "BINFLOAT argument")?;
                self.pos += 8;
                self.push(Slot::Float(f))
            }
            STRING => {
                let line = self.readline("STRING argument")?;
                let bytes = text::decode_string_literal(line)?;
                self.charge(bytes.len() as u64 * 2)?;
                self.push_py2_str(&bytes, start, op)
            }
            BINSTRING => {
                let n = wire::i32_le(self.input, self.pos, "BINSTRING length")?;
                self.pos += 4;
                if n < 0 {
                    return Err(DecodeErrorKind::Invalid {
                        what: "BINSTRING length",
                        detail: format!("negative byte count {n}"),
                    });
                }
                let b = self.take(n as usize, "BINSTRING bytes")?;
                self.charge(b.len() as u64 * 2)?;
                self.push_py2_str(b, start, op)
            }
            SHORT_BINSTRING => {
                let [n] = wire::array::<1>(self.input, self.pos, "SHORT_BINSTRING length")?;
                self.pos += 1;
                let b = self.take(n.into(), "SHORT_BINSTRING bytes")?;
                self.push_py2_str(b, start, op)
            }
            UNICODE => {
                let line = self.readline("UNICODE argument")?;
                self.charge(line.len() as u64 * 4)?;
                let s = text::decode_raw_unicode_escape(line)?;
                self.push_node(Node::Leaf(s), start, op)
            }
            BINUNICODE => {
                let n = wire::u32_le(self.input, self.pos, "BINUNICODE length")?;
                self.pos += 4;
                self.push_utf8(n.into(), "BINUNICODE string", start, op)
            }
            SHORT_BINUNICODE => {
                let [n] = wire::array::<1>(self.input, self.pos, "SHORT_BINUNICODE length")?;
                self.pos += 1;
                self.push_utf8(n.into(), "SHORT_BINUNICODE string", start, op)
            }
            BINUNICODE8 => {
                let n = wire::u64_le(self.input, self.pos, "BINUNICODE8 length")?;
                self.pos += 8;
                self.push_utf8(n, "BINUNICODE8 string", start, op)
            }
            BINBYTES => {
                let n = wire::u32_le(self.input, self.pos, "BINBYTES length")?;
                self.pos += 4;
                self.push_bytes(n.into(), "BINBYTES bytes", false, start, op)
            }
            SHORT_BINBYTES => {
                let [n] = wire::array::<1>(self.input, self.pos, "SHORT_BINBYTES length")?;
                self.pos += 1;
                self.push_bytes(n.into(), "SHORT_BINBYTES bytes", false, start, op)
            }
            BINBYTES8 => {
                let n = wire::u64_le(self.input, self.pos, "BINBYTES8 length")?;
                self.pos += 8;
                self.push_bytes(n, "BINBYTES8 bytes", false, start, op)
            }
            BYTEARRAY8 => {
                let n = wire::u64_le(self.input, self.pos, "BYTEARRAY8 length")?;
                self.pos += 8;
                self.push_bytes(n, "BYTEARRAY8 bytes", true, start, op)
            }
            NEXT_BUFFER => {
                let buf = self.buffers.next().ok_or(DecodeErrorKind::MissingBuffer)?;
                let data = self.inflater.buffer(buf, self.opts, &mut self.alloc)?;
                self.push_node(
                    Node::Leaf(Value::Buffer {
                        data,
                        readonly: false,
                    }),
                    start,
                    op,
                )
            }
            READONLY_BUFFER => {
                let t = self.top()?;
                let found = slot_type(&self.arena, t);
                let data = match self.node_mut(t) {
                    Some(Node::Leaf(
                        Value::Buffer { data, .. } | Value::Bytes(data) | Value::ByteArray(data),
                    )) => data.clone(),
                    _ => return Err(type_err("a buffer", found)),
                };
                self.stack.pop();
                self.push_node(
                    Node::Leaf(Value::Buffer {
                        data,
                        readonly: true,
                    }),
                    start,
                    op,
                )
            }
            EMPTY_TUPLE => self.push_node(Node::Tuple(Vec::new()), start, op),
            EMPTY_LIST => self.push_node(Node::List(Vec::new()), start, op),
            EMPTY_DICT => self.push_node(Node::Dict(Vec::new()), start, op),
            EMPTY_SET => self.push_node(Node::Set(Vec::new()), start, op),
            TUPLE => {
                let items = self.pop_mark()?;
                self.push_node(Node::Tuple(items), start, op)
            }
            TUPLE1 | TUPLE2 | TUPLE3 => {
                let n = usize::from(op - TUPLE1 + 1);
                if self.stack.len() < self.fence() + n {
                    return Err(DecodeErrorKind::StackUnderflow);
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.push_node(Node::Tuple(items), start, op)
            }
            LIST => {
                let items = self.pop_mark()?;
                self.push_node(Node::List(items), start, op)
            }
            DICT => {
                let items = self.pop_mark()?;
                if items.len() % 2 != 0 {
                    return Err(DecodeErrorKind::Invalid {
                        what: "item list",
                        detail: "odd number of items for DICT".into(),
                    });
                }
                let pairs = items.chunks_exact(2).map(|p| (p[0], p[1])).collect();
                self.push_node(Node::Dict(pairs), start, op)
            }
            FROZENSET => {
                let items = self.pop_mark()?;
                self.push_node(Node::FrozenSet(items), start, op)
            }
            APPEND => {
                let v = self.pop()?;
                let target = self.top()?;
                self.extend(target, vec![v])?;
                Ok(None)
            }
            APPENDS => {
                let (target, items) = self.below_mark()?;
                self.extend(target, items)?;
                Ok(None)
            }
            SETITEM => {
                let v = self.pop()?;
                let k = self.pop()?;
                let target = self.top()?;
                self.set_items(target, vec![k, v], "SETITEM")?;
                Ok(None)
            }
            SETITEMS => {
                let (target, items) = self.below_mark()?;
                self.set_items(target, items, "SETITEMS")?;
                Ok(None)
            }
            ADDITEMS => {
                let (target, items) = self.below_mark()?;
                self.charge(items.len() as u64 * SLOT_BYTES)?;
                for &s in &items {
                    self.arena.link(s);
                }
                let found = slot_type(&self.arena, target);
                match self.node_mut(target) {
                    Some(Node::Set(v)) => v.extend(items),
                    _ => return Err(type_err("a set to add to", found)),
                }
                Ok(None)
            }
            GET => {
                let line = self.readline("GET argument")?;
                let key = memo_key(line, "GET argument")?;
                self.memo_get(key)
            }
            BINGET => {
                let [k] = wire::array::<1>(self.input, self.pos, "BINGET argument")?;
                self.pos += 1;
                self.memo_get(k.into())
            }
            LONG_BINGET => {
                let k = wire::u32_le(self.input, self.pos, "LONG_BINGET argument")?;
                self.pos += 4;
                self.memo_get(k.into())
            }
            PUT => {
                let line = self.readline("PUT argument")?;
                let key = memo_key(line, "PUT argument")?;
                self.memo_put(key)
            }
            BINPUT => {
                let [k] = wire::array::<1>(self.input, self.pos, "BINPUT argument")?;
                self.pos += 1;
                self.memo_put(k.into())
            }
            LONG_BINPUT => {
                let k = wire::u32_le(self.input, self.pos, "LONG_BINPUT argument")?;
                self.pos += 4;
                self.memo_put(k.into())
            }
            MEMOIZE => {
                let key = self.memo.len() as u64;
                self.memo_put(key)
            }
            GLOBAL => {
                let module = self.readline("GLOBAL module")?;
                let name = self.readline("GLOBAL name")?;
                let (module, name) = (utf8(module, "GLOBAL module")?, utf8(name, "GLOBAL name")?);
                self.global(module, name, start, op)
            }
            STACK_GLOBAL => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Some(m), Some(n)) = (self.str_of(module), self.str_of(name)) else {
                    return Err(type_err(
                        "two str for STACK_GLOBAL",
                        &format!(
                            "{} and {}",
                            slot_type(&self.arena, module),
                            slot_type(&self.arena, name)
                        ),
                    ));
                };
                let (m, n) = (m.to_owned(), n.to_owned());
                self.global(&m, &n, start, op)
            }
            INST => {
                let module = self.readline("INST module")?;
                let name = self.readline("INST name")?;
                let (module, name) = (utf8(module, "INST module")?, utf8(name, "INST name")?);
                let items = self.pop_mark()?;
                let known = allow::resolve(module, name, self.opts)?;
                let g = self.node(Node::Global(Global::new(module, name), known), start, op)?;
                let args = self.node(Node::Tuple(items), start, op)?;
                self.call(g, args, None, start, op)
            }
            OBJ => {
                let mut items = self.pop_mark()?;
                if items.is_empty() {
                    return Err(DecodeErrorKind::StackUnderflow);
                }
                let cls = items.remove(0);
                let args = self.node(Node::Tuple(items), start, op)?;
                self.call(cls, args, None, start, op)
            }
            REDUCE | NEWOBJ => {
                let args = self.pop()?;
                let callable = self.pop()?;
                self.call(callable, args, None, start, op)
            }
            NEWOBJ_EX => {
                let kwargs = self.pop()?;
                let args = self.pop()?;
                let cls = self.pop()?;
                self.call(cls, args, Some(kwargs), start, op)
            }
            BUILD => {
                let state = self.pop()?;
                let target = self.top()?;
                let found = slot_type(&self.arena, target);
                self.arena.link(state);
                match self.node_mut(target) {
                    Some(Node::Call(c)) => c.state = Some(state),
                    _ => return Err(type_err("an object to BUILD", found)),
                }
                Ok(None)
            }
            PERSID => {
                let line = self.readline("PERSID argument")?;
                if !line.is_ascii() {
                    return Err(DecodeErrorKind::Invalid {
                        what: "PERSID argument",
                        detail: "persistent IDs in protocol 0 must be ASCII strings".into(),
                    });
                }
                let s = String::from_utf8_lossy(line).into_owned();
                let pid = self.node(Node::Leaf(Value::Str(s)), start, op)?;
                self.persistent(pid, start, op)
            }
            BINPERSID => {
                let pid = self.pop()?;
                self.persistent(pid, start, op)
            }
            EXT1 | EXT2 | EXT4 => Err(DecodeErrorKind::Refused(format!(
                "{} (copyreg extension registry codes) is not supported",
                opcode_name(op)
            ))),
            other => Err(DecodeErrorKind::UnknownOpcode(other)),
        }
    }
}

fn opcode_name(op: u8) -> &'static str {
    crate::opcodes::name(op)
}

fn utf8<'b>(b: &'b [u8], what: &'static str) -> Result<&'b str, DecodeErrorKind> {
    std::str::from_utf8(b).map_err(|e| DecodeErrorKind::Invalid {
        what,
        detail: e.to_string(),
    })
}

fn memo_key(line: &[u8], what: &'static str) -> Result<u64, DecodeErrorKind> {
    match text::parse_int(line, what)? {
        Int::Small(i) if i >= 0 => Ok(i as u64),
        _ => Err(DecodeErrorKind::Invalid {
            what,
            detail: "memo index must be a non-negative 64-bit integer".into(),
        }),
    }
}

//! Turns the VM's value graph into a [`Value`] tree, or a [`Graph`], without recursion.
//!
//! In tree mode (the Rust readers), shared references (memo `GET`, `DUP`) become copies;
//! each copy is charged to [`ReadOptions::max_copied_bytes`], so a stream that doubles a list
//! 60 times fails after a few hundred megabytes of charged copies instead of allocating
//! exabytes. A value referenced once is moved, not copied. Cycles (a list that contains
//! itself) are errors: a tree cannot hold them.
//!
//! In graph mode (the Python bindings), a value the pickle refers to more than once is built
//! once into [`Graph::shared`] and every use of it becomes a [`Value::Ref`] to it, cycles
//! included, so sharing costs O(input). The arguments of calls (the reconstruction shapes
//! are matched on plain values) stay trees: a shared value used there is copied as in tree
//! mode, and a call whose arguments contain the call itself is refused.
//!
//! Nesting deeper than [`ReadOptions::max_depth`] is an error. Calls are matched against
//! the known reconstruction shapes here, once their arguments are values.

use crate::error::{DecodeError, DecodeErrorKind};
use crate::value::Value;

use super::Graph;
use super::allow::Known;
use super::arena::{Arena, Node, Slot};
use super::args::CallParts;
use super::call;
use super::compressed::Inflater;
use super::options::ReadOptions;
use super::text;

/// Cost of one value node in the copy accounting.
pub(crate) const VALUE_COST: u64 = std::mem::size_of::<Value>() as u64;

struct Frame {
    idx: u32,
    node: Node,
    next: usize,
    /// Where the frame's child values start in [`Materializer::vals`].
    start: usize,
    cost: u64,
    /// Whether the children are materialized in graph mode.
    graph: bool,
    /// The shared value number the result goes to, in graph mode.
    shared: Option<u32>,
}

/// Materializes slots of an [`Arena`].
pub(crate) struct Materializer<'a> {
    arena: &'a mut Arena,
    opts: &'a ReadOptions,
    consume: bool,
    copied: u64,
    alloc: u64,
    inflater: &'a mut Inflater,
    /// Whether the root is materialized as a [`Graph`].
    graph: bool,
    /// The graph's shared values ([`Value::None`] while one is being built).
    shared: Vec<Value>,
    /// Whether each shared value is built.
    done: Vec<bool>,
    /// The child values of the frames being built, each frame's after its parent's: one
    /// stack instead of a vector per frame.
    vals: Vec<Value>,
}

/// What a copy of leaf `v` costs in the copy accounting.
pub(crate) fn leaf_cost(v: &Value) -> u64 {
    VALUE_COST
        + match v {
            Value::Str(s) => s.len() as u64,
            Value::Py2Str(b) | Value::SurrogateStr(b) => b.len() as u64,
            Value::BigInt(b) => b.bits() / 8,
            _ => 0,
        }
}

fn child_slot(node: &Node, i: usize) -> Option<Slot> {
    match node {
        Node::List(v) | Node::Tuple(v) | Node::Set(v) | Node::FrozenSet(v) => v.get(i).copied(),
        Node::Dict(v) => v
            .get(i / 2)
            .map(|&(k, x)| if i.is_multiple_of(2) { k } else { x }),
        Node::Call(c) => {
            let mut i = i;
            if i == 0 {
                return Some(c.args);
            }
            i -= 1;
            if let Some(k) = c.kwargs {
                if i == 0 {
                    return Some(k);
                }
                i -= 1;
            }
            if let Some(s) = c.state {
                if i == 0 {
                    return Some(s);
                }
                i -= 1;
            }
            if let Some(&s) = c.items.get(i) {
                return Some(s);
            }
            let i = i - c.items.len();
            c.pairs
                .get(i / 2)
                .map(|&(k, x)| if i.is_multiple_of(2) { k } else { x })
        }
        _ => None,
    }
}

fn child_count(node: &Node) -> usize {
    match node {
        Node::List(v) | Node::Tuple(v) | Node::Set(v) | Node::FrozenSet(v) => v.len(),
        Node::Dict(v) => v.len() * 2,
        Node::Call(c) => {
            1 + usize::from(c.kwargs.is_some())
                + usize::from(c.state.is_some())
                + c.items.len()
                + 2 * c.pairs.len()
        }
        _ => 0,
    }
}

fn pairs(vals: impl Iterator<Item = Value>) -> Vec<(Value, Value)> {
    let mut out = Vec::new();
    let mut it = vals;
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    out
}

/// Charges `cost` bytes to the copy limit ([`ReadOptions::max_copied_bytes`]), `copied`
/// holding what is charged so far; the error points at node `idx`.
pub(crate) fn charge_copy(
    arena: &Arena,
    opts: &ReadOptions,
    copied: &mut u64,
    cost: u64,
    idx: u32,
) -> Result<(), DecodeError> {
    *copied = copied.saturating_add(cost);
    if *copied > opts.max_copied_bytes() {
        let (pos, op) = arena.origin[idx as usize];
        return Err(DecodeError::at(
            DecodeErrorKind::Limit {
                limit: "bytes copied through shared references",
                max: opts.max_copied_bytes(),
            },
            pos,
            op,
        ));
    }
    Ok(())
}

/// The refusal of nesting deeper than [`ReadOptions::max_depth`].
pub(crate) fn too_deep(opts: &ReadOptions) -> DecodeErrorKind {
    DecodeErrorKind::Limit {
        limit: "nesting depth",
        max: opts.max_depth() as u64,
    }
}

/// The refusal of a container that contains itself.
pub(crate) fn recursive() -> DecodeErrorKind {
    DecodeErrorKind::Refused("recursive structure (a container that contains itself)".into())
}

/// An inconsistent value graph (a bug of the reader, never an input's fault).
pub(crate) fn internal(what: &str) -> DecodeErrorKind {
    DecodeErrorKind::Invalid {
        what: "value graph",
        detail: what.to_string(),
    }
}

impl<'a> Materializer<'a> {
    /// A materializer. `consume` moves values out of the arena (only for the final root);
    /// otherwise the arena is left as it was and everything built is charged as a copy.
    /// `copied` and `alloc` are what the read has charged so far to the copy and allocation
    /// limits; `inflater` decompresses in-band compressed data.
    pub(crate) fn new(
        arena: &'a mut Arena,
        opts: &'a ReadOptions,
        consume: bool,
        copied: u64,
        alloc: u64,
        inflater: &'a mut Inflater,
    ) -> Materializer<'a> {
        Materializer {
            arena,
            opts,
            consume,
            copied,
            alloc,
            inflater,
            graph: false,
            shared: Vec::new(),
            done: Vec::new(),
            vals: Vec::new(),
        }
    }

    /// Builds the root as a [`Graph`] ([`Materializer::materialize_graph`]).
    pub(crate) fn materialize_graph(&mut self, root: Slot) -> Result<Graph, DecodeError> {
        self.graph = true;
        let root = self.materialize(root)?;
        Ok(Graph {
            root,
            shared: std::mem::take(&mut self.shared),
        })
    }

    /// A new shared value number, its value to come.
    fn new_shared(&mut self, idx: u32) -> Result<u32, DecodeError> {
        let id = u32::try_from(self.shared.len())
            .map_err(|_| self.at(idx, internal("too many shared values")))?;
        self.shared.push(Value::None);
        self.done.push(false);
        Ok(id)
    }

    /// Records `v` as shared value `id`, now built.
    fn define(&mut self, id: u32, v: Value) {
        self.shared[id as usize] = v;
        self.done[id as usize] = true;
    }

    /// A tree copy of shared value `id` (a use of it in tree mode), charged as a copy.
    fn expand(&mut self, id: u32, idx: u32, depth: usize) -> Result<(Value, u64), DecodeError> {
        if !self.done[id as usize] {
            return Err(self.at(idx, recursive()));
        }
        if depth >= self.opts.max_depth() {
            return Err(self.at(idx, too_deep(self.opts)));
        }
        // Marked unbuilt while copied: a cycle through it is refused, as in tree mode.
        self.done[id as usize] = false;
        let v = std::mem::take(&mut self.shared[id as usize]);
        let out = self.copy_tree(&v, idx, depth);
        self.shared[id as usize] = v;
        self.done[id as usize] = true;
        out
    }

    fn copy_tree(
        &mut self,
        v: &Value,
        idx: u32,
        depth: usize,
    ) -> Result<(Value, u64), DecodeError> {
        let seq = |m: &mut Self, items: &[Value]| -> Result<(Vec<Value>, u64), DecodeError> {
            let mut cost = VALUE_COST;
            let mut out = Vec::with_capacity(items.len());
            for x in items {
                let (x, c) = m.copy_tree(x, idx, depth + 1)?;
                cost = cost.saturating_add(c);
                out.push(x);
            }
            Ok((out, cost))
        };
        let (v, cost) = match v {
            Value::Ref(k) => return self.expand(*k, idx, depth + 1),
            Value::List(items) => {
                let (x, c) = seq(self, items)?;
                (Value::List(x), c)
            }
            Value::Tuple(items) => {
                let (x, c) = seq(self, items)?;
                (Value::Tuple(x), c)
            }
            Value::Set(items) => {
                let (x, c) = seq(self, items)?;
                (Value::Set(x), c)
            }
            Value::FrozenSet(items) => {
                let (x, c) = seq(self, items)?;
                (Value::FrozenSet(x), c)
            }
            Value::Dict(items) => {
                let mut cost = VALUE_COST;
                let mut out = Vec::with_capacity(items.len());
                for (k, x) in items {
                    let (k, c1) = self.copy_tree(k, idx, depth + 1)?;
                    let (x, c2) = self.copy_tree(x, idx, depth + 1)?;
                    cost = cost.saturating_add(c1).saturating_add(c2);
                    out.push((k, x));
                }
                (Value::Dict(out), cost)
            }
            // Calls' results hold no references: they are built from trees.
            other => {
                let c = leaf_cost(other);
                self.charge(c, idx)?;
                let v = text::tree_leaf(other.clone()).map_err(|k| self.at(idx, k))?;
                return Ok((v, c));
            }
        };
        self.charge(VALUE_COST, idx)?;
        Ok((v, cost))
    }

    /// Bytes charged to the allocation limit so far (including decompressed data).
    pub(crate) fn allocated(&self) -> u64 {
        self.alloc
    }

    /// Bytes charged as copies so far.
    pub(crate) fn copied(&self) -> u64 {
        self.copied
    }

    fn at(&self, idx: u32, kind: DecodeErrorKind) -> DecodeError {
        let (pos, op) = self.arena.origin[idx as usize];
        DecodeError::at(kind, pos, op)
    }

    fn charge(&mut self, cost: u64, idx: u32) -> Result<(), DecodeError> {
        charge_copy(self.arena, self.opts, &mut self.copied, cost, idx)
    }

    /// Whether this use of node `idx` is its last: counts the use down in consume mode.
    fn last_use(&mut self, idx: usize) -> bool {
        if !self.consume {
            return false;
        }
        let r = &mut self.arena.refs[idx];
        *r = r.saturating_sub(1);
        *r == 0
    }

    /// The value of `slot` if it is ready, else pushes a frame to build it.
    ///
    /// In graph mode (`graph`), a node referenced more than once becomes a shared value and
    /// its uses [`Value::Ref`]s to it.
    fn request(
        &mut self,
        slot: Slot,
        frames: &mut Vec<Frame>,
        graph: bool,
    ) -> Result<Option<(Value, u64)>, DecodeError> {
        let i = match slot {
            Slot::None => return Ok(Some((Value::None, VALUE_COST))),
            Slot::Bool(b) => return Ok(Some((Value::Bool(b), VALUE_COST))),
            Slot::Int(i) => return Ok(Some((Value::Int(i), VALUE_COST))),
            Slot::Float(f) => return Ok(Some((Value::Float(f), VALUE_COST))),
            Slot::Node(i) => i,
        };
        let idx = i as usize;
        let shared = graph && self.arena.refs[idx] > 1;
        match &self.arena.nodes[idx] {
            Node::Pending(id) | Node::Defined(id) if graph => {
                Ok(Some((Value::Ref(*id), VALUE_COST)))
            }
            Node::Pending(_) => Err(self.at(i, recursive())),
            &Node::Defined(id) => {
                if self.consume {
                    let r = &mut self.arena.refs[idx];
                    *r = r.saturating_sub(1);
                }
                self.expand(id, i, frames.len()).map(Some)
            }
            Node::Leaf(_) | Node::Built(..) if shared => {
                let id = self.new_shared(i)?;
                let v = match std::mem::replace(&mut self.arena.nodes[idx], Node::Defined(id)) {
                    Node::Leaf(v) | Node::Built(v, _) => v,
                    _ => return Err(self.at(i, internal("value vanished"))),
                };
                self.define(id, v);
                Ok(Some((Value::Ref(id), VALUE_COST)))
            }
            Node::Leaf(v) => {
                let cost = leaf_cost(v);
                let v = if self.last_use(idx) {
                    let Node::Leaf(v) = std::mem::replace(&mut self.arena.nodes[idx], Node::Gone)
                    else {
                        return Err(self.at(i, internal("leaf vanished")));
                    };
                    v
                } else {
                    self.charge(cost, i)?;
                    let Node::Leaf(v) = &self.arena.nodes[idx] else {
                        return Err(self.at(i, internal("leaf vanished")));
                    };
                    v.clone()
                };
                let v = if graph {
                    v
                } else {
                    text::tree_leaf(v).map_err(|k| self.at(i, k))?
                };
                Ok(Some((v, cost)))
            }
            Node::Global(g, _) => {
                let v = Value::Global(g.clone());
                let cost = VALUE_COST + (g.module.len() + g.name.len()) as u64;
                if self.consume {
                    // Globals stay in the arena (calls read them); every use is a copy.
                    let r = &mut self.arena.refs[idx];
                    *r = r.saturating_sub(1);
                }
                {
                    self.charge(cost, i)?;
                }
                Ok(Some((v, cost)))
            }
            Node::Built(..) => {
                let last = self.last_use(idx);
                if last {
                    let Node::Built(v, cost) =
                        std::mem::replace(&mut self.arena.nodes[idx], Node::Gone)
                    else {
                        return Err(self.at(i, internal("value vanished")));
                    };
                    return Ok(Some((v, cost)));
                }
                let Node::Built(_, cost) = &self.arena.nodes[idx] else {
                    return Err(self.at(i, internal("value vanished")));
                };
                let cost = *cost;
                self.charge(cost, i)?;
                let Node::Built(v, _) = &self.arena.nodes[idx] else {
                    return Err(self.at(i, internal("value vanished")));
                };
                let v = v.clone();
                Ok(Some((v, cost)))
            }
            Node::Visiting => Err(self.at(i, recursive())),
            Node::Gone => Err(self.at(i, internal("value used after it was moved"))),
            _ => {
                if frames.len() >= self.opts.max_depth() {
                    return Err(self.at(i, too_deep(self.opts)));
                }
                let shared = if shared {
                    Some(self.new_shared(i)?)
                } else {
                    None
                };
                let mark = shared.map_or(Node::Visiting, Node::Pending);
                let node = std::mem::replace(&mut self.arena.nodes[idx], mark);
                // Room for the children, bounded: the slots exist, but a node can be
                // reached many times (nothing here is charged yet).
                self.vals.reserve(child_count(&node).min(1 << 16));
                // Calls are matched on plain values: their arguments are trees.
                let graph = graph && !matches!(node, Node::Call(_));
                frames.push(Frame {
                    idx: i,
                    node,
                    next: 0,
                    start: self.vals.len(),
                    cost: VALUE_COST,
                    graph,
                    shared,
                });
                Ok(None)
            }
        }
    }

    /// Builds the value of `root`.
    pub(crate) fn materialize(&mut self, root: Slot) -> Result<Value, DecodeError> {
        if self.consume {
            self.arena.link(root);
        }
        self.materialize_child(root)
    }

    /// Builds the value of `slot`, a use of it that the arena already counts (a container's
    /// entry, where [`Materializer::materialize`] counts the root's own use first).
    pub(crate) fn materialize_child(&mut self, slot: Slot) -> Result<Value, DecodeError> {
        let root = slot;
        let mut frames: Vec<Frame> = Vec::new();
        if let Some((v, _)) = self.request(root, &mut frames, self.graph)? {
            return Ok(v);
        }
        loop {
            let Some(frame) = frames.last_mut() else {
                return Err(DecodeError::new(internal("no frame")));
            };
            if let Some(child) = child_slot(&frame.node, frame.next) {
                frame.next += 1;
                let graph = frame.graph;
                if let Some((v, c)) = self.request(child, &mut frames, graph)? {
                    let f = frames
                        .last_mut()
                        .ok_or_else(|| DecodeError::new(internal("no frame")))?;
                    self.vals.push(v);
                    f.cost = f.cost.saturating_add(c);
                }
                continue;
            }
            let frame = frames
                .pop()
                .ok_or_else(|| DecodeError::new(internal("no frame")))?;
            let (v, c) = self.finish(frame)?;
            match frames.last_mut() {
                Some(parent) => {
                    self.vals.push(v);
                    parent.cost = parent.cost.saturating_add(c);
                }
                None => return Ok(v),
            }
        }
    }

    fn finish(&mut self, frame: Frame) -> Result<(Value, u64), DecodeError> {
        let Frame {
            idx,
            node,
            start,
            cost,
            shared,
            ..
        } = frame;
        let value = match &node {
            Node::List(_) => Value::List(self.vals.split_off(start)),
            Node::Tuple(_) => Value::Tuple(self.vals.split_off(start)),
            Node::Set(_) => Value::Set(self.vals.split_off(start)),
            Node::FrozenSet(_) => Value::FrozenSet(self.vals.split_off(start)),
            Node::Dict(_) => Value::Dict(pairs(self.vals.drain(start..))),
            Node::Call(c) => {
                let mut it = self.vals.drain(start..);
                let args = it.next();
                let kwargs = c.kwargs.and_then(|_| it.next());
                let state = if c.state.is_some() { it.next() } else { None };
                let items: Vec<Value> = it.by_ref().take(c.items.len()).collect();
                let pairs = pairs(it);
                let Some(Value::Tuple(args)) = args else {
                    return Err(self.at(idx, internal("call without argument tuple")));
                };
                let kwargs = match (c.kwargs, kwargs) {
                    (None, _) => None,
                    (Some(_), Some(Value::Dict(d))) => Some(d),
                    (Some(_), _) => {
                        return Err(self.at(idx, internal("call without keyword dict")));
                    }
                };
                let (global, known) = match &self.arena.nodes[c.callable as usize] {
                    Node::Global(g, k) => (g, *k),
                    _ => return Err(self.at(idx, internal("callable is not a global"))),
                };
                let parts = CallParts {
                    global,
                    known,
                    args,
                    kwargs,
                    state,
                    items,
                    pairs,
                };
                let v = match known {
                    Known::Decompress => self.inflater.call(parts, self.opts, &mut self.alloc),
                    Known::DecompressTarget => {
                        self.inflater.target(parts, self.opts, &mut self.alloc)
                    }
                    Known::DecompressInto => self.inflater.chunk(parts),
                    _ => call::dispatch(parts, self.opts),
                };
                v.map_err(|k| self.at(idx, k))?
            }
            _ => return Err(self.at(idx, internal("unexpected node"))),
        };
        let i = idx as usize;
        if let Some(id) = shared {
            self.define(id, value);
            self.arena.nodes[i] = Node::Defined(id);
            return Ok((Value::Ref(id), VALUE_COST));
        }
        if self.consume {
            let r = self.arena.refs[i];
            self.arena.refs[i] = r.saturating_sub(1);
            if r > 1 {
                self.charge(cost, idx)?;
                self.arena.nodes[i] = Node::Built(value.clone(), cost);
            } else {
                self.arena.nodes[i] = Node::Gone;
            }
        } else {
            self.charge(VALUE_COST, idx)?;
            self.arena.nodes[i] = node;
        }
        Ok((value, cost))
    }
}

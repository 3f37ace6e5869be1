//! The arena the VM builds and the materializer reads: [`Slot`]s (stack and container
//! entries) and [`Node`]s in an [`Arena`].

use crate::value::{Global, Value};

use super::allow::Known;

/// A stack or container entry: small scalars inline, everything else an arena index.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Slot {
    /// `None`.
    None,
    /// `bool`.
    Bool(bool),
    /// Small `int`.
    Int(i64),
    /// `float`.
    Float(f64),
    /// Index into [`Arena::nodes`].
    Node(u32),
}

/// A recorded call: `REDUCE`, `NEWOBJ`, `NEWOBJ_EX`, `INST` or `OBJ`, plus what `BUILD`,
/// `APPEND(S)` and `SETITEM(S)` later added to the object.
#[derive(Debug)]
pub(crate) struct Call {
    /// The callable: always a [`Node::Global`].
    pub callable: u32,
    /// The argument tuple: a [`Node::Tuple`].
    pub args: Slot,
    /// Keyword arguments of `NEWOBJ_EX`: a [`Node::Dict`].
    pub kwargs: Option<Slot>,
    /// `BUILD` state.
    pub state: Option<Slot>,
    /// Items appended with `APPEND`/`APPENDS`.
    pub items: Vec<Slot>,
    /// Pairs set with `SETITEM`/`SETITEMS`.
    pub pairs: Vec<(Slot, Slot)>,
}

/// One value in the arena.
#[derive(Debug)]
pub(crate) enum Node {
    /// A value without children (str, bytes, big int, buffer, persistent-id result...).
    Leaf(Value),
    /// A global that passed the allow-list.
    Global(Global, Known),
    /// `list`.
    List(Vec<Slot>),
    /// `tuple`.
    Tuple(Vec<Slot>),
    /// `dict`.
    Dict(Vec<(Slot, Slot)>),
    /// `set`.
    Set(Vec<Slot>),
    /// `frozenset`.
    FrozenSet(Vec<Slot>),
    /// A symbolic call.
    Call(Box<Call>),
    /// Being materialized (taken out of the arena).
    Visiting,
    /// Materialized, kept for further references, with its copy cost.
    Built(Value, u64),
    /// Materialized and moved out to its last user.
    Gone,
    /// Being materialized into a graph as its shared value number `.0` (see
    /// [`super::Graph`]): references from inside it are back-references.
    Pending(u32),
    /// Materialized into a graph as its shared value number `.0`.
    Defined(u32),
}

impl Node {
    /// Python's name of the node's type, for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Node::Leaf(v) | Node::Built(v, _) => v.type_name(),
            Node::Global(..) => "global",
            Node::List(_) => "list",
            Node::Tuple(_) => "tuple",
            Node::Dict(_) => "dict",
            Node::Set(_) => "set",
            Node::FrozenSet(_) => "frozenset",
            Node::Call(_) => "object",
            Node::Visiting | Node::Gone | Node::Pending(_) | Node::Defined(_) => "value",
        }
    }
}

/// The value graph built by the VM.
#[derive(Debug, Default)]
pub(crate) struct Arena {
    /// The nodes.
    pub nodes: Vec<Node>,
    /// Stream offset and opcode that created each node, for error locations.
    pub origin: Vec<(u64, u8)>,
    /// How many container slots (and the root) refer to each node.
    pub refs: Vec<u32>,
}

impl Arena {
    pub(crate) fn link(&mut self, s: Slot) {
        if let Slot::Node(i) = s {
            let r = &mut self.refs[i as usize];
            *r = r.saturating_add(1);
        }
    }
}

/// The Python type name of what a slot holds.
pub(crate) fn slot_type(arena: &Arena, s: Slot) -> &'static str {
    match s {
        Slot::None => "None",
        Slot::Bool(_) => "bool",
        Slot::Int(_) => "int",
        Slot::Float(_) => "float",
        Slot::Node(i) => arena.nodes[i as usize].type_name(),
    }
}

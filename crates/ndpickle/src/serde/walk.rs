//! The serde `Deserializer` over the reader's value graph: the arena the VM built is walked
//! as it is, without building a [`Value`] tree first.
//!
//! Scalars, strings, lists, tuples, sets and dicts are read from the arena's nodes; a string
//! used once moves into the `String` it fills. Everything else (numpy arrays and scalars,
//! bytes, big ints, the other reconstructed objects) is materialized, that one subtree, and
//! read through [`ValueDeserializer`], so it behaves exactly as in [`super::from_value`].
//!
//! The limits are the tree readers', on what the walk reads: a node the pickle refers to
//! more than once is walked once per use, and every use but its last is charged to
//! [`crate::ReadOptions::max_copied_bytes`] as the tree's copy would be (short strings
//! excepted, see [`FREE_STR_LEN`]); a container that contains itself is refused; nesting
//! deeper than [`crate::ReadOptions::max_depth`] is refused. What the target type skips
//! (an ignored field) is not walked. Nothing read is kept after its last use.

use ::serde::de::{
    DeserializeSeed, Deserializer, EnumAccess, Error as _, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};

use crate::error::{DecodeError, DecodeErrorKind};
use crate::read::Parsed;
use crate::read::arena::{Node, Slot, slot_type};
use crate::read::materialize::{
    Materializer, VALUE_COST, charge_copy, internal, leaf_cost, recursive, too_deep,
};
use crate::serde::de::ValueDeserializer;
use crate::serde::error::{Step, at};
use crate::serde::handoff;
use crate::value::Value;

/// The longest string whose further uses are not charged as copies (field names, dict keys
/// and enum variants fetched from the memo, as ndpickle's and CPython's picklers write
/// them). Each use costs the stream at least a 2-byte `BINGET`, so the work these free uses
/// do stays within a constant factor of the input's size.
const FREE_STR_LEN: usize = 64;

/// The walk's state: the parsed stream, how deep it is, whether it is inside a use of a
/// shared node that is not its last (`copying`), where nothing may be moved out, and
/// whether it is inside a dict key (`lending`), whose strings are lent, not moved, so that
/// errors in the key's value can name it.
pub(crate) struct Walker<'o> {
    p: Parsed<'o>,
    depth: usize,
    copying: u32,
    lending: u32,
}

impl<'o> Walker<'o> {
    /// A walk of `p` from its root.
    pub(crate) fn new(mut p: Parsed<'o>) -> Walker<'o> {
        // The root's own use, as the materializer counts it.
        p.arena.link(p.root);
        Walker {
            p,
            depth: 0,
            copying: 0,
            lending: 0,
        }
    }

    /// Deserializes the root.
    pub(crate) fn root(&mut self) -> Item<'_, 'o> {
        let slot = self.p.root;
        Item { w: self, slot }
    }

    /// Ends the walk: refuses the stream when a chunked buffer never got its last chunk.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        self.p.inflater.finish()?;
        Ok(())
    }

    fn at(&self, idx: u32, kind: DecodeErrorKind) -> DecodeError {
        let (pos, op) = self.p.arena.origin[idx as usize];
        DecodeError::at(kind, pos, op)
    }

    fn charge(&mut self, cost: u64, idx: u32) -> Result<(), DecodeError> {
        charge_copy(&self.p.arena, &self.p.opts, &mut self.p.copied, cost, idx)
    }

    /// Counts one use of leaf `idx`; `true` when it is a copy (not the last use, or inside
    /// one), charged.
    fn use_leaf(&mut self, idx: u32) -> Result<bool, DecodeError> {
        let i = idx as usize;
        let copy = self.copying > 0 || self.p.arena.refs[i] > 1;
        if self.copying == 0 {
            self.p.arena.refs[i] = self.p.arena.refs[i].saturating_sub(1);
        }
        if copy {
            let cost = match &self.p.arena.nodes[i] {
                Node::Leaf(Value::Str(s)) if s.len() <= FREE_STR_LEN => 0,
                Node::Leaf(v) => leaf_cost(v),
                _ => VALUE_COST,
            };
            self.charge(cost, idx)?;
        }
        Ok(copy)
    }

    /// Takes container `idx` out of the arena for the walk of one use of it, marked as being
    /// visited; `true` with it when this use is a copy.
    fn enter(&mut self, idx: u32) -> Result<(Node, bool), DecodeError> {
        let i = idx as usize;
        if matches!(self.p.arena.nodes[i], Node::Visiting) {
            return Err(self.at(idx, recursive()));
        }
        if self.depth >= self.p.opts.max_depth() {
            return Err(self.at(idx, too_deep(&self.p.opts)));
        }
        let copy = self.use_leaf(idx)?;
        if copy {
            self.copying += 1;
        }
        self.depth += 1;
        let node = std::mem::replace(&mut self.p.arena.nodes[i], Node::Visiting);
        Ok((node, copy))
    }

    /// Ends the walk of container `idx`: kept for its next use after a copy, dropped after
    /// its last use.
    fn leave(&mut self, idx: u32, node: Node, copy: bool) {
        self.depth -= 1;
        self.p.arena.nodes[idx as usize] = if copy {
            self.copying -= 1;
            node
        } else {
            Node::Gone
        };
    }

    /// The value of `slot`, materialized (moved out of the arena unless this is a copy).
    fn value(&mut self, slot: Slot) -> Result<Value, DecodeError> {
        let Parsed {
            arena,
            opts,
            copied,
            alloc,
            inflater,
            ..
        } = &mut self.p;
        let mut m = Materializer::new(arena, opts, self.copying == 0, *copied, *alloc, inflater);
        let v = m.materialize_child(slot)?;
        *copied = m.copied();
        *alloc = m.allocated();
        Ok(v)
    }

    /// The string leaf `idx` holds, if it holds one.
    fn str_at(&self, idx: u32) -> Option<&str> {
        match &self.p.arena.nodes[idx as usize] {
            Node::Leaf(Value::Str(s)) => Some(s),
            _ => None,
        }
    }
}

/// What a slot holds, for the walk.
enum Shape {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A `str` leaf.
    Str(u32),
    /// A list, tuple, set or frozenset.
    Seq(u32),
    /// A dict.
    Dict(u32),
    /// Anything else: materialized and read as a [`Value`].
    Other,
}

/// Puts a sequence's items back into its kind of node.
type Rebuild = fn(Vec<Slot>) -> Node;

/// One slot to deserialize.
pub(crate) struct Item<'w, 'o> {
    w: &'w mut Walker<'o>,
    slot: Slot,
}

impl<'w, 'o> Item<'w, 'o> {
    fn shape(&self) -> Shape {
        let i = match self.slot {
            Slot::None => return Shape::None,
            Slot::Bool(b) => return Shape::Bool(b),
            Slot::Int(i) => return Shape::Int(i),
            Slot::Float(f) => return Shape::Float(f),
            Slot::Node(i) => i,
        };
        match &self.w.p.arena.nodes[i as usize] {
            Node::Leaf(Value::Str(_)) => Shape::Str(i),
            Node::List(_) | Node::Tuple(_) | Node::Set(_) | Node::FrozenSet(_) => Shape::Seq(i),
            Node::Dict(_) => Shape::Dict(i),
            _ => Shape::Other,
        }
    }

    /// Reads the slot as a [`Value`] with `f` (a [`ValueDeserializer`] method).
    fn through_value<R>(
        self,
        f: impl FnOnce(ValueDeserializer<'_>) -> Result<R, DecodeError>,
    ) -> Result<R, DecodeError> {
        let v = self.w.value(self.slot)?;
        f(ValueDeserializer::new(&v))
    }

    /// A string leaf: moved into the visitor on its last use, lent otherwise.
    fn visit_str<'de, V: Visitor<'de>>(
        self,
        idx: u32,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        if self.w.use_leaf(idx)? || self.w.lending > 0 {
            let s = self.w.str_at(idx).unwrap_or_default();
            return visitor.visit_str(s);
        }
        match std::mem::replace(&mut self.w.p.arena.nodes[idx as usize], Node::Gone) {
            Node::Leaf(Value::Str(s)) => visitor.visit_string(s),
            _ => Err(self.w.at(idx, internal("string leaf vanished"))),
        }
    }

    /// A container: taken out of the arena for the visitor, then put back or dropped.
    fn visit_container<'de, V: Visitor<'de>>(
        self,
        idx: u32,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let (node, copy) = self.w.enter(idx)?;
        let (out, node) = match node {
            Node::Dict(pairs) => {
                let mut access = MapWalk {
                    w: &mut *self.w,
                    pairs,
                    next: 0,
                };
                let out = visitor.visit_map(&mut access);
                (out, Node::Dict(access.pairs))
            }
            node => {
                let (items, rebuild): (Vec<Slot>, Rebuild) = match node {
                    Node::List(v) => (v, Node::List),
                    Node::Tuple(v) => (v, Node::Tuple),
                    Node::Set(v) => (v, Node::Set),
                    Node::FrozenSet(v) => (v, Node::FrozenSet),
                    other => {
                        self.w.leave(idx, other, true);
                        return Err(self.w.at(idx, internal("container changed kind")));
                    }
                };
                let mut access = SeqWalk {
                    w: &mut *self.w,
                    items,
                    next: 0,
                };
                let out = visitor.visit_seq(&mut access);
                (out, rebuild(access.items))
            }
        };
        self.w.leave(idx, node, copy);
        out
    }

    fn type_error<T>(&self, expected: &str) -> Result<T, DecodeError> {
        let unexpected = match self.shape() {
            Shape::None => Unexpected::Other("None"),
            Shape::Bool(b) => Unexpected::Bool(b),
            Shape::Int(i) => Unexpected::Signed(i),
            Shape::Float(f) => Unexpected::Float(f),
            Shape::Str(i) => Unexpected::Str(self.w.str_at(i).unwrap_or_default()),
            Shape::Seq(_) | Shape::Dict(_) | Shape::Other => {
                Unexpected::Other(slot_type(&self.w.p.arena, self.slot))
            }
        };
        Err(DecodeError::invalid_type(unexpected, &expected))
    }
}

impl<'de> Deserializer<'de> for Item<'_, '_> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.shape() {
            Shape::None => visitor.visit_unit(),
            Shape::Bool(b) => visitor.visit_bool(b),
            Shape::Int(i) => visitor.visit_i64(i),
            Shape::Float(f) => visitor.visit_f64(f),
            Shape::Str(i) => self.visit_str(i, visitor),
            Shape::Seq(i) | Shape::Dict(i) => self.visit_container(i, visitor),
            Shape::Other => self.through_value(|d| d.deserialize_any(visitor)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.shape() {
            // Field and variant names are matched, not kept: lent, never moved.
            Shape::Str(i) => {
                self.w.use_leaf(i)?;
                visitor.visit_str(self.w.str_at(i).unwrap_or_default())
            }
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.slot {
            Slot::None => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        if name == handoff::TOKEN {
            let v = self.w.value(self.slot)?;
            handoff::lend(v, || visitor.visit_unit())
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        const EXPECTED: &str = "an enum: a variant name, or a dict of one variant name to its data";
        match self.shape() {
            Shape::Str(i) => {
                self.w.use_leaf(i)?;
                visitor.visit_enum(EnumWalk {
                    w: self.w,
                    variant: i,
                    value: None,
                })
            }
            Shape::Dict(i) => {
                let one =
                    matches!(&self.w.p.arena.nodes[i as usize], Node::Dict(p) if p.len() == 1);
                if !one {
                    return self.type_error(EXPECTED);
                }
                let (node, copy) = self.w.enter(i)?;
                let Node::Dict(pairs) = node else {
                    self.w.leave(i, node, true);
                    return Err(self.w.at(i, internal("container changed kind")));
                };
                let (k, v) = pairs[0];
                let out = match k {
                    Slot::Node(k) if self.w.str_at(k).is_some() => {
                        self.w.use_leaf(k)?;
                        visitor.visit_enum(EnumWalk {
                            w: &mut *self.w,
                            variant: k,
                            value: Some(v),
                        })
                    }
                    _ => Item {
                        w: &mut *self.w,
                        slot: k,
                    }
                    .type_error("an enum variant name (str)"),
                };
                self.w.leave(i, Node::Dict(pairs), copy);
                out
            }
            Shape::Other => self.through_value(|d| d.deserialize_enum(name, variants, visitor)),
            _ => self.type_error(EXPECTED),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }

    ::serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
    }
}

/// The path step of a dict key, for error messages.
fn key_step<'a>(w: &'a Walker<'_>, key: Slot) -> Step<'a> {
    match key {
        Slot::Int(i) => Step::KeyInt(i),
        Slot::Node(k) => match w.str_at(k) {
            Some(s) => Step::KeyStr(s),
            None => Step::KeyOther(slot_type(&w.p.arena, key)),
        },
        other => Step::KeyOther(slot_type(&w.p.arena, other)),
    }
}

/// The items of a list, tuple or set being walked.
struct SeqWalk<'w, 'o> {
    w: &'w mut Walker<'o>,
    items: Vec<Slot>,
    next: usize,
}

impl<'de> SeqAccess<'de> for SeqWalk<'_, '_> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        let Some(&slot) = self.items.get(self.next) else {
            return Ok(None);
        };
        let i = self.next;
        self.next += 1;
        seed.deserialize(Item {
            w: &mut *self.w,
            slot,
        })
        .map(Some)
        .map_err(|e| at(Step::Index(i), e))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() - self.next)
    }
}

/// The entries of a dict being walked.
struct MapWalk<'w, 'o> {
    w: &'w mut Walker<'o>,
    pairs: Vec<(Slot, Slot)>,
    next: usize,
}

impl<'de> MapAccess<'de> for MapWalk<'_, '_> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        let Some(&(k, _)) = self.pairs.get(self.next) else {
            return Ok(None);
        };
        // Keys are lent: they name the path of errors in their values.
        self.w.lending += 1;
        let out = seed.deserialize(Item {
            w: &mut *self.w,
            slot: k,
        });
        self.w.lending -= 1;
        out.map(Some).map_err(|e| at(key_step(self.w, k), e))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        let Some(&(k, v)) = self.pairs.get(self.next) else {
            return Err(DecodeError::custom(
                "a dict value was asked for before its key",
            ));
        };
        self.next += 1;
        seed.deserialize(Item {
            w: &mut *self.w,
            slot: v,
        })
        .map_err(|e| at(key_step(self.w, k), e))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.pairs.len() - self.next)
    }
}

/// An externally tagged enum: `"Variant"` or `{"Variant": data}`.
struct EnumWalk<'w, 'o> {
    w: &'w mut Walker<'o>,
    /// The `str` leaf naming the variant.
    variant: u32,
    value: Option<Slot>,
}

impl<'de, 'w, 'o> EnumAccess<'de> for EnumWalk<'w, 'o> {
    type Error = DecodeError;
    type Variant = EnumWalk<'w, 'o>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, EnumWalk<'w, 'o>), DecodeError> {
        let name = self.w.str_at(self.variant).unwrap_or_default();
        let v = seed.deserialize(IntoDeserializer::<DecodeError>::into_deserializer(name))?;
        Ok((v, self))
    }
}

impl EnumWalk<'_, '_> {
    fn name(&self) -> &str {
        self.w.str_at(self.variant).unwrap_or_default()
    }

    fn data(&self, expected: &str) -> Result<Slot, DecodeError> {
        self.value
            .ok_or_else(|| DecodeError::invalid_type(Unexpected::UnitVariant, &expected))
    }
}

impl<'de> VariantAccess<'de> for EnumWalk<'_, '_> {
    type Error = DecodeError;

    fn unit_variant(self) -> Result<(), DecodeError> {
        match self.value {
            None | Some(Slot::None) => Ok(()),
            Some(slot) => {
                let e = match (Item {
                    w: &mut *self.w,
                    slot,
                })
                .type_error::<()>("None (a unit variant)")
                {
                    Err(e) => e,
                    Ok(()) => DecodeError::custom("a unit variant with data"),
                };
                Err(at(Step::Field(self.name()), e))
            }
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, DecodeError> {
        let slot = self.data("a newtype variant")?;
        seed.deserialize(Item {
            w: &mut *self.w,
            slot,
        })
        .map_err(|e| at(Step::Field(self.name()), e))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let slot = self.data("a tuple variant")?;
        Item {
            w: &mut *self.w,
            slot,
        }
        .deserialize_any(visitor)
        .map_err(|e| at(Step::Field(self.name()), e))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let slot = self.data("a struct variant")?;
        Item {
            w: &mut *self.w,
            slot,
        }
        .deserialize_any(visitor)
        .map_err(|e| at(Step::Field(self.name()), e))
    }
}

//! The serde `Serializer`: serde's data model straight onto the pickle [`Encoder`].

use ::serde::ser::{self, Serialize};

use crate::error::EncodeError;
use crate::opcodes::{APPENDS, EMPTY_DICT, EMPTY_LIST, SETITEM, SETITEMS};
use crate::serde::handoff::{self, Slot};
use crate::write::Encoder;
use crate::write::numpy;

/// Items per `APPENDS`/`SETITEMS` batch, as CPython writes them.
const BATCH: usize = 1000;

/// Entries of [`Names`]: a type's field and variant names, many types' worth.
const NAME_SLOTS: usize = 128;
/// Slots [`Names`] probes for a name before writing it without the memo.
const NAME_PROBES: usize = 8;

/// Struct field and enum variant names, written once and fetched from the memo after, as
/// CPython's pickler does with the interned keys of objects' `__dict__`s: a list of
/// records carries each name once, and a reader builds each name once.
///
/// Keyed by the name's address and length (serde hands them as `&'static str`): an open
/// table of [`NAME_SLOTS`] entries probed at most [`NAME_PROBES`] times; a name that finds
/// no room is written in full each time, so the memo grows by at most [`NAME_SLOTS`] entries.
/// A struct writes its fields in the same order each time, so each name remembers the name
/// written after it, and a field tries that one first, without hashing: a list of records
/// hashes only where the data chooses (an enum's variant, a skipped field).
struct Names {
    /// `(address, length, position in `seen`)`; a zero address is an empty slot.
    slots: [(usize, usize, u32); NAME_SLOTS],
    /// The names written, in the order first written.
    seen: Vec<Seen>,
    /// The position in `seen` of the last name written ([`NO_NAME`] when it was written
    /// without the memo, or before the first).
    last: u32,
    /// The name written after `last` the last time (the next field's guess), or [`NO_NAME`].
    guess: u32,
}

/// A name in [`Names`]: which it is, its memo entry, and the name written after it.
#[derive(Clone, Copy)]
struct Seen {
    addr: usize,
    len: usize,
    memo: u32,
    /// The position in `Names::seen` of the name written after this one the last time, or
    /// [`NO_NAME`].
    follow: u32,
}

/// No position in `Names::seen`.
const NO_NAME: u32 = u32::MAX;

impl Names {
    #[inline]
    fn new() -> Names {
        Names {
            slots: [(0, 0, 0); NAME_SLOTS],
            seen: Vec::new(),
            last: NO_NAME,
            guess: NO_NAME,
        }
    }

    /// Writes a field's name: a memo fetch when it was written before, found without
    /// hashing when it follows the name it followed the last time.
    #[inline(always)]
    fn field(&mut self, enc: &mut Encoder<'_, '_>, name: &'static str) -> Result<(), Error> {
        if let Some(&s) = self.seen.get(self.guess as usize)
            && s.addr == name.as_ptr() as usize
            && s.len == name.len()
        {
            self.last = self.guess;
            self.guess = s.follow;
            return Ok(enc.memo_get(s.memo)?);
        }
        self.lookup(enc, name)
    }

    /// Writes `name` found through the table (or written in full and entered in it): a
    /// field past a wrong guess, and every variant (the data chooses it, so no guess is
    /// worth a branch).
    #[inline(never)]
    fn lookup(&mut self, enc: &mut Encoder<'_, '_>, name: &'static str) -> Result<(), Error> {
        let (addr, len) = (name.as_ptr() as usize, name.len());
        let hash = (addr ^ len.rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let start = hash >> (usize::BITS - NAME_SLOTS.trailing_zeros());
        for probe in 0..NAME_PROBES {
            let slot = &mut self.slots[(start + probe) % NAME_SLOTS];
            if slot.0 == addr && slot.1 == len {
                let pos = slot.2;
                let Some(&s) = self.seen.get(pos as usize) else {
                    break;
                };
                self.link(pos, s.follow);
                return Ok(enc.memo_get(s.memo)?);
            }
            if slot.0 == 0 {
                enc.str(name)?;
                let memo = enc.memo_put()?;
                let pos = self.seen.len() as u32;
                *slot = (addr, len, pos);
                self.seen.push(Seen {
                    addr,
                    len,
                    memo,
                    follow: NO_NAME,
                });
                self.link(pos, NO_NAME);
                return Ok(());
            }
        }
        self.last = NO_NAME;
        self.guess = NO_NAME;
        Ok(enc.str(name)?)
    }

    /// Makes `pos` (followed last time by `follow`) the last name, and the name after the
    /// previous last one.
    fn link(&mut self, pos: u32, follow: u32) {
        if let Some(prev) = self.seen.get_mut(self.last as usize) {
            prev.follow = pos;
        }
        self.last = pos;
        self.guess = follow;
    }
}

/// Writes serde values with an [`Encoder`].
pub(crate) struct Serializer<'e, 'a, 'w> {
    enc: &'e mut Encoder<'a, 'w>,
    /// Writing a dict key: containers Python cannot hash are refused.
    in_key: bool,
    /// An array hand-over is under way: the next `serialize_bytes` carries its memory.
    field: bool,
    /// The field and variant names written so far.
    names: Names,
}

impl<'e, 'a, 'w> Serializer<'e, 'a, 'w> {
    pub(crate) fn new(enc: &'e mut Encoder<'a, 'w>) -> Self {
        Serializer {
            enc,
            in_key: false,
            field: false,
            names: Names::new(),
        }
    }

    /// Writes a field or variant name.
    #[inline]
    fn name(&mut self, name: &'static str) -> Result<(), Error> {
        self.names.field(self.enc, name)
    }

    /// Writes an enum variant's name.
    #[inline]
    fn variant_name(&mut self, name: &'static str) -> Result<(), Error> {
        self.names.lookup(self.enc, name)
    }

    /// Refuses a container in a dict key.
    #[inline(always)]
    fn hashable(&self, what: &'static str) -> Result<(), Error> {
        if self.in_key {
            Err(unhashable(what).into())
        } else {
            Ok(())
        }
    }

    /// Writes the field the hand-over slot describes, over `memory`.
    fn write_field(&mut self, memory: &[u8]) -> Result<(), Error> {
        match handoff::swap(Slot::Empty) {
            Slot::Parts(layout) => {
                let parts = layout.join(memory);
                Ok(self.enc.lend(&[], |e| numpy::write_array(e, parts))?)
            }
            Slot::Owned(field) => {
                let owners = field.owners();
                Ok(self.enc.lend(&owners, |e| field.write(e))?)
            }
            Slot::Want(_) | Slot::Empty => Err(incomplete().into()),
        }
    }

    /// Opens a one-entry dict `{variant: ...}` (externally tagged enum).
    fn variant_key(&mut self, variant: &'static str) -> Result<(), Error> {
        self.hashable("an enum variant with data")?;
        self.enc.put(&[EMPTY_DICT])?;
        self.variant_name(variant)
    }
}

/// The error for a container used as a dict key.
#[cold]
#[inline(never)]
fn unhashable(what: &str) -> EncodeError {
    EncodeError::Serde(format!("a dict key must be hashable in Python, not {what}"))
}

fn incomplete() -> EncodeError {
    EncodeError::Serde("an ndpickle::serde field was not handed over (internal error)".into())
}

/// The serializer's error: an [`EncodeError`] behind a pointer. Every serializer method
/// returns one, and a `Result<(), EncodeError>` (40 bytes) goes back through memory, its
/// tag stored and loaded again on each call, where a pointer's result stays in a register.
#[derive(Debug)]
pub(crate) struct Error(Box<EncodeError>);

impl Error {
    /// The error the serializer met.
    pub(crate) fn into_inner(self) -> EncodeError {
        *self.0
    }
}

impl From<EncodeError> for Error {
    #[cold]
    #[inline(never)]
    fn from(e: EncodeError) -> Self {
        Error(Box::new(e))
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl ser::Error for Error {
    #[cold]
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error::from(EncodeError::Serde(msg.to_string()))
    }
}

impl<'s, 'e, 'a, 'w> ser::Serializer for &'s mut Serializer<'e, 'a, 'w> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'s, 'e, 'a, 'w>;
    type SerializeTuple = Compound<'s, 'e, 'a, 'w>;
    type SerializeTupleStruct = Compound<'s, 'e, 'a, 'w>;
    type SerializeTupleVariant = Compound<'s, 'e, 'a, 'w>;
    type SerializeMap = Compound<'s, 'e, 'a, 'w>;
    type SerializeStruct = Fields<'s, 'e, 'a, 'w>;
    type SerializeStructVariant = Fields<'s, 'e, 'a, 'w>;

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        Ok(self.enc.bool(v)?)
    }
    #[inline]
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        Ok(self.enc.int(v.into())?)
    }
    #[inline]
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        Ok(self.enc.int(v.into())?)
    }
    #[inline]
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        Ok(self.enc.int(v.into())?)
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        Ok(self.enc.int(v)?)
    }
    #[inline]
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        Ok(self.enc.int128(v)?)
    }
    #[inline]
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        Ok(self.enc.int(v.into())?)
    }
    #[inline]
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        Ok(self.enc.int(v.into())?)
    }
    #[inline]
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        Ok(self.enc.int(v.into())?)
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        match i64::try_from(v) {
            Ok(small) => Ok(self.enc.int(small)?),
            Err(_) => Ok(self.enc.uint128(v.into())?),
        }
    }
    #[inline]
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        Ok(self.enc.uint128(v)?)
    }
    #[inline]
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        Ok(self.enc.float(v.into())?)
    }
    #[inline]
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        Ok(self.enc.float(v)?)
    }
    #[inline]
    fn serialize_char(self, v: char) -> Result<(), Error> {
        Ok(self.enc.str(v.encode_utf8(&mut [0u8; 4]))?)
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        Ok(self.enc.str(v)?)
    }
    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        if std::mem::take(&mut self.field) {
            return self.write_field(v);
        }
        Ok(self.enc.bytes(v)?)
    }
    #[inline]
    fn serialize_none(self) -> Result<(), Error> {
        Ok(self.enc.none()?)
    }
    #[inline]
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    #[inline]
    fn serialize_unit(self) -> Result<(), Error> {
        Ok(self.enc.none()?)
    }
    #[inline]
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        Ok(self.enc.none()?)
    }
    #[inline]
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.variant_name(variant)
    }
    #[inline]
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        if name != handoff::TOKEN {
            return value.serialize(self);
        }
        self.hashable("an array")?;
        handoff::swap(Slot::Want(self.enc.options().clone()));
        self.field = true;
        let done = value.serialize(&mut *self);
        let pending = std::mem::take(&mut self.field);
        handoff::swap(Slot::Empty);
        done?;
        if pending {
            return Err(incomplete().into());
        }
        Ok(())
    }
    #[inline]
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.variant_key(variant)?;
        value.serialize(&mut *self)?;
        Ok(self.enc.put(&[SETITEM])?)
    }
    #[inline]
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'s, 'e, 'a, 'w>, Error> {
        self.hashable("a list")?;
        self.enc.put(&[EMPTY_LIST])?;
        Ok(Compound::new(self, Close::Batch(APPENDS)))
    }
    #[inline]
    fn serialize_tuple(self, len: usize) -> Result<Compound<'s, 'e, 'a, 'w>, Error> {
        self.enc.tuple_start(len)?;
        Ok(Compound::new(self, Close::Tuple(len)))
    }
    #[inline]
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'s, 'e, 'a, 'w>, Error> {
        self.serialize_tuple(len)
    }
    #[inline]
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'s, 'e, 'a, 'w>, Error> {
        self.variant_key(variant)?;
        self.enc.tuple_start(len)?;
        Ok(Compound::new(self, Close::TupleVariant(len)))
    }
    #[inline]
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'s, 'e, 'a, 'w>, Error> {
        self.hashable("a dict")?;
        self.enc.put(&[EMPTY_DICT])?;
        Ok(Compound::new(self, Close::Batch(SETITEMS)))
    }
    #[inline]
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Fields<'s, 'e, 'a, 'w>, Error> {
        self.hashable("a dict")?;
        self.enc.put(&[EMPTY_DICT])?;
        Ok(Fields::new(self, false))
    }
    #[inline]
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Fields<'s, 'e, 'a, 'w>, Error> {
        self.variant_key(variant)?;
        self.enc.put(&[EMPTY_DICT])?;
        Ok(Fields::new(self, true))
    }
}

/// How a container ends.
#[derive(Clone, Copy)]
enum Close {
    /// A list or dict: items in `MARK ... op` batches.
    Batch(u8),
    /// A tuple of this many items.
    Tuple(usize),
    /// `{variant: (items)}`.
    TupleVariant(usize),
}

/// A container being written.
pub(crate) struct Compound<'s, 'e, 'a, 'w> {
    ser: &'s mut Serializer<'e, 'a, 'w>,
    close: Close,
    /// Items in the open batch.
    batch: usize,
}

impl<'s, 'e, 'a, 'w> Compound<'s, 'e, 'a, 'w> {
    #[inline]
    fn new(ser: &'s mut Serializer<'e, 'a, 'w>, close: Close) -> Self {
        Compound {
            ser,
            close,
            batch: 0,
        }
    }

    /// Opens a batch before its first item.
    #[inline]
    fn open_item(&mut self) -> Result<(), Error> {
        if self.batch == 0 && matches!(self.close, Close::Batch(_)) {
            self.ser.enc.mark()?;
        }
        Ok(())
    }

    /// Counts an item, closing the batch when full.
    #[inline]
    fn close_item(&mut self) -> Result<(), Error> {
        let op = match self.close {
            Close::Batch(op) => op,
            Close::Tuple(_) | Close::TupleVariant(_) => return Ok(()),
        };
        self.batch += 1;
        if self.batch == BATCH {
            self.batch = 0;
            self.ser.enc.put(&[op])?;
        }
        Ok(())
    }

    #[inline]
    fn element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.open_item()?;
        value.serialize(&mut *self.ser)?;
        self.close_item()
    }

    #[inline]
    fn key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Error> {
        self.open_item()?;
        self.ser.in_key = true;
        let done = key.serialize(&mut *self.ser);
        self.ser.in_key = false;
        done
    }

    #[inline(always)]
    fn finish(self) -> Result<(), Error> {
        let enc = &mut *self.ser.enc;
        match self.close {
            Close::Batch(op) => {
                if self.batch > 0 {
                    enc.put(&[op])?;
                }
                Ok(())
            }
            Close::Tuple(n) => Ok(enc.tuple(n)?),
            Close::TupleVariant(n) => {
                enc.tuple(n)?;
                Ok(enc.put(&[SETITEM])?)
            }
        }
    }
}

/// serde's sequence-like compound traits: each element goes through [`Compound::element`].
macro_rules! sequence_like {
    ($($trait:ident :: $method:ident),* $(,)?) => {$(
        impl ser::$trait for Compound<'_, '_, '_, '_> {
            type Ok = ();
            type Error = Error;
            #[inline]
            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }
            #[inline]
            fn end(self) -> Result<(), Error> {
                self.finish()
            }
        }
    )*};
}

sequence_like!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl ser::SerializeMap for Compound<'_, '_, '_, '_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Error> {
        self.key(key)
    }
    #[inline]
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.ser)?;
        self.close_item()
    }
    #[inline]
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

/// A struct's fields being written: `MARK name value ... SETITEMS` into the dict below.
///
/// One batch however many fields (CPython's unpickler takes `SETITEMS` of any length; a
/// struct's fields are few), so a field costs no counting: only the mark before the first.
pub(crate) struct Fields<'s, 'e, 'a, 'w> {
    ser: &'s mut Serializer<'e, 'a, 'w>,
    /// The `MARK` is written (a field was).
    marked: bool,
    /// The dict is a variant's value: `SETITEM` it into `{variant: ...}` at the end.
    variant: bool,
}

impl<'s, 'e, 'a, 'w> Fields<'s, 'e, 'a, 'w> {
    #[inline]
    fn new(ser: &'s mut Serializer<'e, 'a, 'w>, variant: bool) -> Self {
        Fields {
            ser,
            marked: false,
            variant,
        }
    }

    #[inline]
    fn field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        if !self.marked {
            self.marked = true;
            self.ser.enc.mark()?;
        }
        self.ser.name(key)?;
        value.serialize(&mut *self.ser)
    }

    #[inline(always)]
    fn finish(self) -> Result<(), Error> {
        if self.marked {
            self.ser.enc.put(&[SETITEMS])?;
        }
        if self.variant {
            self.ser.enc.put(&[SETITEM])?;
        }
        Ok(())
    }
}

/// serde's struct-like compound traits: each field goes through [`Fields::field`].
macro_rules! struct_like {
    ($($trait:ident),* $(,)?) => {$(
        impl ser::$trait for Fields<'_, '_, '_, '_> {
            type Ok = ();
            type Error = Error;
            #[inline]
            fn serialize_field<T: ?Sized + Serialize>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                self.field(key, value)
            }
            #[inline]
            fn end(self) -> Result<(), Error> {
                self.finish()
            }
        }
    )*};
}

struct_like!(SerializeStruct, SerializeStructVariant);

//! The serde `Deserializer` over a [`Value`] the safe reader built.

use ::serde::de::{
    DeserializeSeed, Deserializer, EnumAccess, Error as _, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};

use crate::array::NdArray;
use crate::dtype::{DType, Element, Scalar};
use crate::error::DecodeError;
use crate::serde::error::{Step, at};
use crate::serde::handoff;
use crate::value::Value;

/// Deserializes from a borrowed [`Value`].
pub(crate) struct ValueDeserializer<'v>(&'v Value);

impl<'v> ValueDeserializer<'v> {
    pub(crate) fn new(v: &'v Value) -> Self {
        ValueDeserializer(v)
    }
}

/// How a value shows in serde's "invalid type" messages.
pub(crate) fn unexpected(v: &Value) -> Unexpected<'_> {
    match v {
        Value::None => Unexpected::Other("None"),
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Int(i) => Unexpected::Signed(*i),
        Value::Float(f) => Unexpected::Float(*f),
        Value::Str(s) => Unexpected::Str(s),
        Value::Bytes(b) | Value::ByteArray(b) => Unexpected::Bytes(b),
        Value::Array(a) => Unexpected::Other(array_kind(a)),
        other => Unexpected::Other(other.type_name()),
    }
}

fn array_kind(a: &NdArray) -> &'static str {
    if a.ndim() == 1 {
        "a 1-d numpy.ndarray"
    } else {
        "a numpy.ndarray"
    }
}

/// numpy's name of a dtype for messages: `float32`, `bfloat16`, or its spelling.
pub(crate) fn dtype_name(d: &DType) -> String {
    match d {
        DType::Scalar { kind, .. } => kind.name().to_string(),
        DType::MlDtype { name, .. } => name.to_string(),
        other => other.to_string(),
    }
}

/// A number read from a numpy scalar.
enum Number {
    Bool(bool),
    Signed(i64),
    Unsigned(u64),
    Float(f64),
}

/// The one element of a numpy scalar of a boolean or real dtype.
fn scalar_number(a: &NdArray) -> Option<Number> {
    fn one<T: Element>(a: &NdArray) -> Option<T> {
        a.to_owned_array::<T>().ok()?.iter().next().copied()
    }
    let kind = match a.dtype() {
        DType::Scalar { kind, .. } => *kind,
        DType::MlDtype { name, .. } if name == "bfloat16" => {
            return one::<half::bf16>(a).map(|v| Number::Float(v.to_f64()));
        }
        _ => return None,
    };
    Some(match kind {
        Scalar::Bool => Number::Bool(one::<bool>(a)?),
        Scalar::I8 => Number::Signed(one::<i8>(a)?.into()),
        Scalar::I16 => Number::Signed(one::<i16>(a)?.into()),
        Scalar::I32 => Number::Signed(one::<i32>(a)?.into()),
        Scalar::I64 => Number::Signed(one::<i64>(a)?),
        Scalar::U8 => Number::Unsigned(one::<u8>(a)?.into()),
        Scalar::U16 => Number::Unsigned(one::<u16>(a)?.into()),
        Scalar::U32 => Number::Unsigned(one::<u32>(a)?.into()),
        Scalar::U64 => Number::Unsigned(one::<u64>(a)?),
        Scalar::F16 => Number::Float(one::<half::f16>(a)?.to_f64()),
        Scalar::F32 => Number::Float(one::<f32>(a)?.into()),
        Scalar::F64 => Number::Float(one::<f64>(a)?),
        Scalar::C64 | Scalar::C128 | Scalar::LongDouble | Scalar::CLongDouble => return None,
    })
}

impl<'de> Deserializer<'de> for ValueDeserializer<'_> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.0 {
            Value::None => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::BigInt(b) => {
                if let Ok(v) = u64::try_from(b) {
                    visitor.visit_u64(v)
                } else if let Ok(v) = i128::try_from(b) {
                    visitor.visit_i128(v)
                } else if let Ok(v) = u128::try_from(b) {
                    visitor.visit_u128(v)
                } else {
                    Err(DecodeError::custom(format!(
                        "int {b} does not fit in 128 bits"
                    )))
                }
            }
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_str(s),
            Value::Bytes(b) | Value::ByteArray(b) | Value::Buffer { data: b, .. } => {
                visitor.visit_bytes(b)
            }
            Value::List(items)
            | Value::Tuple(items)
            | Value::Set(items)
            | Value::FrozenSet(items) => visitor.visit_seq(SeqDe {
                items: items.iter(),
                index: 0,
            }),
            Value::Dict(items) => visitor.visit_map(MapDe {
                items: items.iter(),
                key: None,
                value: None,
            }),
            Value::Scalar(a) => match scalar_number(a) {
                Some(Number::Bool(b)) => visitor.visit_bool(b),
                Some(Number::Signed(i)) => visitor.visit_i64(i),
                Some(Number::Unsigned(u)) => visitor.visit_u64(u),
                Some(Number::Float(f)) => visitor.visit_f64(f),
                None => Err(DecodeError::custom(format!(
                    "a numpy {} scalar has no serde counterpart",
                    dtype_name(a.dtype())
                ))),
            },
            Value::Array(a) => Err(DecodeError::custom(format!(
                "got a numpy.ndarray of {}: read it into a field marked \
                 #[serde(with = \"ndpickle::serde::array\")] (or array_1d for a Vec)",
                dtype_name(a.dtype())
            ))),
            other => Err(DecodeError::invalid_type(unexpected(other), &visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.0 {
            Value::None => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        if name == handoff::TOKEN {
            handoff::lend_value(self.0, || visitor.visit_unit())
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        match self.0 {
            Value::Str(_) => visitor.visit_enum(EnumDe {
                variant: self.0,
                value: None,
            }),
            Value::Dict(items) if items.len() == 1 => visitor.visit_enum(EnumDe {
                variant: &items[0].0,
                value: Some(&items[0].1),
            }),
            other => Err(DecodeError::invalid_type(
                unexpected(other),
                &"an enum: a variant name, or a dict of one variant name to its data",
            )),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }

    ::serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

/// The items of a list, tuple or set.
struct SeqDe<'v> {
    items: std::slice::Iter<'v, Value>,
    index: usize,
}

impl<'de> SeqAccess<'de> for SeqDe<'_> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let i = self.index;
        self.index += 1;
        seed.deserialize(ValueDeserializer(item))
            .map(Some)
            .map_err(|e| at(Step::Index(i), e))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The entries of a dict.
struct MapDe<'v> {
    items: std::slice::Iter<'v, (Value, Value)>,
    key: Option<&'v Value>,
    value: Option<&'v Value>,
}

impl<'de> MapAccess<'de> for MapDe<'_> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        let Some((k, v)) = self.items.next() else {
            return Ok(None);
        };
        self.key = Some(k);
        self.value = Some(v);
        seed.deserialize(ValueDeserializer(k))
            .map(Some)
            .map_err(|e| at(Step::Key(k), e))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        let (Some(k), Some(v)) = (self.key.take(), self.value.take()) else {
            return Err(DecodeError::custom(
                "a dict value was asked for before its key",
            ));
        };
        seed.deserialize(ValueDeserializer(v))
            .map_err(|e| at(Step::Key(k), e))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// An externally tagged enum: `"Variant"` or `{"Variant": data}`.
struct EnumDe<'v> {
    variant: &'v Value,
    value: Option<&'v Value>,
}

impl<'de, 'v> EnumAccess<'de> for EnumDe<'v> {
    type Error = DecodeError;
    type Variant = VariantDe<'v>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantDe<'v>), DecodeError> {
        let name = match self.variant {
            Value::Str(s) => s.as_str(),
            other => {
                return Err(DecodeError::invalid_type(
                    unexpected(other),
                    &"an enum variant name (str)",
                ));
            }
        };
        let v = seed.deserialize(IntoDeserializer::<DecodeError>::into_deserializer(name))?;
        Ok((
            v,
            VariantDe {
                name,
                value: self.value,
            },
        ))
    }
}

/// The data of one enum variant.
struct VariantDe<'v> {
    name: &'v str,
    value: Option<&'v Value>,
}

impl<'v> VariantDe<'v> {
    fn data(&self, expected: &str) -> Result<&'v Value, DecodeError> {
        self.value
            .ok_or_else(|| DecodeError::invalid_type(Unexpected::UnitVariant, &expected))
    }
}

impl<'de> VariantAccess<'de> for VariantDe<'_> {
    type Error = DecodeError;

    fn unit_variant(self) -> Result<(), DecodeError> {
        match self.value {
            None | Some(Value::None) => Ok(()),
            Some(other) => Err(at(
                Step::Field(self.name),
                DecodeError::invalid_type(unexpected(other), &"None (a unit variant)"),
            )),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, DecodeError> {
        let v = self.data("a newtype variant")?;
        seed.deserialize(ValueDeserializer(v))
            .map_err(|e| at(Step::Field(self.name), e))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let v = self.data("a tuple variant")?;
        ValueDeserializer(v)
            .deserialize_any(visitor)
            .map_err(|e| at(Step::Field(self.name), e))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let v = self.data("a struct variant")?;
        ValueDeserializer(v)
            .deserialize_any(visitor)
            .map_err(|e| at(Step::Field(self.name), e))
    }
}

//! [`Value`]: a dynamic tree of the Python values ndpickle writes and reads.
//!
//! The reader returns a `Value`; the writer accepts one (it implements
//! [`crate::ToPickle`]) for heterogeneous data such as a dict of arrays plus metadata.

use bytes::Bytes;
use num_bigint::BigInt;
use num_complex::Complex64;

use crate::array::NdArray;
use crate::dtype::DType;

/// A global reference: a module and a (possibly dotted) qualified name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Global {
    /// Module, e.g. `numpy`.
    pub module: String,
    /// Qualified name inside the module, e.g. `ndarray` or `Array.from_buffers`.
    pub name: String,
}

impl Global {
    /// A global from its two parts.
    pub fn new(module: impl Into<String>, name: impl Into<String>) -> Global {
        Global {
            module: module.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for Global {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.module, self.name)
    }
}

/// An object kept symbolically: a call `callable(*args)` and optional `BUILD` state.
///
/// The reader produces these for reduce forms it recognises but does not turn into data
/// (pyarrow objects before Arrow conversion) and, when the caller opts in, for unknown
/// globals. The writer emits them as `GLOBAL`/`REDUCE`/`BUILD`.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    /// The callable.
    pub callable: Global,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// State applied with `BUILD`, if any.
    pub state: Option<Value>,
}

/// A Python value.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    /// `None`.
    #[default]
    None,
    /// `bool`.
    Bool(bool),
    /// `int` that fits in 64 bits.
    Int(i64),
    /// `int` of any size.
    BigInt(BigInt),
    /// `float`.
    Float(f64),
    /// `complex`.
    Complex(Complex64),
    /// `str`.
    Str(String),
    /// `bytes`.
    Bytes(Bytes),
    /// `bytearray`.
    ByteArray(Bytes),
    /// A bare out-of-band buffer (`pickle.PickleBuffer`) not consumed by an array.
    Buffer {
        /// The buffer's bytes.
        data: Bytes,
        /// Whether `READONLY_BUFFER` applied.
        readonly: bool,
    },
    /// `list`.
    List(Vec<Value>),
    /// `tuple`.
    Tuple(Vec<Value>),
    /// `dict`, in insertion order.
    Dict(Vec<(Value, Value)>),
    /// `set`.
    Set(Vec<Value>),
    /// `frozenset`.
    FrozenSet(Vec<Value>),
    /// A numpy array (boxed, so that a `Value` stays small to move).
    Array(Box<NdArray>),
    /// A numpy scalar such as `numpy.float64(1.5)`, as a 0-d array (boxed).
    Scalar(Box<NdArray>),
    /// A numpy dtype object.
    DType(DType),
    /// A bare global reference (a class or function that was not called).
    Global(Global),
    /// A symbolic object (see [`Object`]).
    Object(Box<Object>),
    /// The value the pickle refers to more than once, by its index in
    /// [`crate::read::Graph::shared`]. Only the values of a [`crate::read::Graph`] hold
    /// these; the readers that return a plain `Value` give trees without them.
    Ref(u32),
    /// A Python 2 `str` (`STRING`, `BINSTRING`, `SHORT_BINSTRING`): bytes whose decoding the
    /// caller chooses (`pickle.loads`' `encoding=`). Only the values of a
    /// [`crate::read::Graph`] hold these; trees hold them decoded as latin-1 [`Value::Str`].
    Py2Str(Bytes),
    /// A `str` with lone surrogates, which a Rust `String` cannot hold: its UTF-8 bytes with
    /// each surrogate encoded as three bytes (Python's `surrogatepass`). Only the values of a
    /// [`crate::read::Graph`] hold these; the tree readers refuse such strings.
    SurrogateStr(Bytes),
}

impl Value {
    /// A short name of the variant, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Complex(_) => "complex",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::ByteArray(_) => "bytearray",
            Value::Buffer { .. } => "PickleBuffer",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
            Value::Set(_) => "set",
            Value::FrozenSet(_) => "frozenset",
            Value::Array(_) => "numpy.ndarray",
            Value::Scalar(_) => "numpy scalar",
            Value::DType(_) => "numpy.dtype",
            Value::Global(_) => "global",
            Value::Object(_) => "object",
            Value::Ref(_) => "shared reference",
            Value::Py2Str(_) | Value::SurrogateStr(_) => "str",
        }
    }

    /// The value of `key` in a dict whose keys are strings.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The array, if this is one.
    pub fn as_array(&self) -> Option<&NdArray> {
        match self {
            Value::Array(a) | Value::Scalar(a) => Some(a),
            _ => None,
        }
    }

    /// The string, if this is a `str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an `int` (or `bool`) that fits in 64 bits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i64::from(*b)),
            Value::BigInt(b) => i64::try_from(b).ok(),
            _ => None,
        }
    }

    /// The float, if this is a `float` or an `int`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The bytes of a `bytes`, `bytearray` or buffer.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Value::Bytes(b) | Value::ByteArray(b) | Value::Buffer { data: b, .. } => Some(b),
            _ => None,
        }
    }

    /// The items of a list or tuple.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) | Value::Tuple(v) => Some(v),
            _ => None,
        }
    }

    /// The items of a dict.
    pub fn as_dict(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Dict(v) => Some(v),
            _ => None,
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $v:expr),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(x: $t) -> Value {
                #[allow(clippy::redundant_closure_call)]
                ($v)(x)
            }
        })*
    };
}

value_from! {
    bool => Value::Bool,
    i64 => Value::Int,
    i32 => |x: i32| Value::Int(x.into()),
    u32 => |x: u32| Value::Int(x.into()),
    usize => |x: usize| i64::try_from(x).map(Value::Int).unwrap_or_else(|_| Value::BigInt(x.into())),
    f64 => Value::Float,
    &str => |x: &str| Value::Str(x.to_string()),
    String => Value::Str,
    NdArray => |a| Value::Array(Box::new(a)),
    Vec<Value> => Value::List,
}

/// Whether `s` is a non-empty dot-separated sequence of Python identifiers.
pub(crate) fn valid_dotted(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            matches!(chars.next(), Some(c) if c == '_' || c.is_alphabetic())
                && chars.all(|c| c == '_' || c.is_alphanumeric())
        })
}

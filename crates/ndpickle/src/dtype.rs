//! The numpy dtype model: what an array element is, in the terms numpy pickles it.
//!
//! [`DType`] covers every dtype ndpickle writes or reads: booleans, integers, floats
//! (including half precision), complex numbers, `datetime64`/`timedelta64` with units,
//! fixed-width byte and unicode strings, raw void, `ml_dtypes` extension types such as
//! `bfloat16`, structured dtypes (named fields at offsets, nesting, sub-arrays) and `object`
//! (recognised so that it can be refused clearly; its data is never interpreted).
//!
//! [`Element`] ties a Rust element type to its dtype, so that `ndarray` arrays of it can be
//! written zero-copy and read back with checked casts.

use std::borrow::Cow;
use std::fmt;

/// Byte order of a multi-byte element, as numpy's `<`, `>` and `|` characters say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// `<`: least significant byte first.
    Little,
    /// `>`: most significant byte first.
    Big,
    /// `|`: single-byte elements and byte strings, where order has no meaning.
    NotApplicable,
}

impl ByteOrder {
    /// The byte order of the machine running this code.
    pub const NATIVE: ByteOrder = if cfg!(target_endian = "little") {
        ByteOrder::Little
    } else {
        ByteOrder::Big
    };

    /// numpy's character for this order: `<`, `>` or `|`.
    pub fn as_char(self) -> char {
        match self {
            ByteOrder::Little => '<',
            ByteOrder::Big => '>',
            ByteOrder::NotApplicable => '|',
        }
    }

    /// Parses numpy's order characters; `=` means native, `|` not applicable.
    pub fn from_char(c: char) -> Option<ByteOrder> {
        match c {
            '<' => Some(ByteOrder::Little),
            '>' | '!' => Some(ByteOrder::Big),
            '=' => Some(ByteOrder::NATIVE),
            '|' => Some(ByteOrder::NotApplicable),
            _ => None,
        }
    }

    /// Whether data in this order can be used as-is on this machine.
    pub fn is_native(self) -> bool {
        self != ByteOrder::swapped(ByteOrder::NATIVE)
    }

    /// The opposite multi-byte order (`NotApplicable` stays as it is).
    pub fn swapped(self) -> ByteOrder {
        match self {
            ByteOrder::Little => ByteOrder::Big,
            ByteOrder::Big => ByteOrder::Little,
            ByteOrder::NotApplicable => ByteOrder::NotApplicable,
        }
    }
}

/// The fixed-size numeric element kinds numpy builds in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scalar {
    /// `bool`, one byte, 0 or 1.
    Bool,
    /// `int8`.
    I8,
    /// `int16`.
    I16,
    /// `int32`.
    I32,
    /// `int64`.
    I64,
    /// `uint8`.
    U8,
    /// `uint16`.
    U16,
    /// `uint32`.
    U32,
    /// `uint64`.
    U64,
    /// `float16` (IEEE half precision).
    F16,
    /// `float32`.
    F32,
    /// `float64`.
    F64,
    /// `complex64`: two `float32`.
    C64,
    /// `complex128`: two `float64`.
    C128,
    /// `longdouble` stored in 16 bytes (`f16`, type code `g`): the platform's extended
    /// precision (x87 80-bit on x86-64, IEEE binary128 on aarch64 Linux). Its bytes are
    /// carried as they are; Rust has no element type for it.
    LongDouble,
    /// `clongdouble` (`c32`, type code `G`): two 16-byte `longdouble`s.
    CLongDouble,
}

impl Scalar {
    /// Size of one element in bytes.
    pub fn itemsize(self) -> usize {
        match self {
            Scalar::Bool | Scalar::I8 | Scalar::U8 => 1,
            Scalar::I16 | Scalar::U16 | Scalar::F16 => 2,
            Scalar::I32 | Scalar::U32 | Scalar::F32 => 4,
            Scalar::I64 | Scalar::U64 | Scalar::F64 | Scalar::C64 => 8,
            Scalar::C128 | Scalar::LongDouble => 16,
            Scalar::CLongDouble => 32,
        }
    }

    /// numpy's kind character: `b`, `i`, `u`, `f` or `c`.
    pub fn kind(self) -> char {
        match self {
            Scalar::Bool => 'b',
            Scalar::I8 | Scalar::I16 | Scalar::I32 | Scalar::I64 => 'i',
            Scalar::U8 | Scalar::U16 | Scalar::U32 | Scalar::U64 => 'u',
            Scalar::F16 | Scalar::F32 | Scalar::F64 | Scalar::LongDouble => 'f',
            Scalar::C64 | Scalar::C128 | Scalar::CLongDouble => 'c',
        }
    }

    /// Size of the unit that byte order applies to (a complex number swaps each half).
    pub fn swap_unit(self) -> usize {
        match self {
            Scalar::C64 => 4,
            Scalar::C128 => 8,
            Scalar::CLongDouble => 16,
            other => other.itemsize(),
        }
    }

    /// The scalar of a kind character and size, if numpy has one.
    pub fn from_kind(kind: char, itemsize: usize) -> Option<Scalar> {
        Some(match (kind, itemsize) {
            ('b', 1) => Scalar::Bool,
            ('i', 1) => Scalar::I8,
            ('i', 2) => Scalar::I16,
            ('i', 4) => Scalar::I32,
            ('i', 8) => Scalar::I64,
            ('u', 1) => Scalar::U8,
            ('u', 2) => Scalar::U16,
            ('u', 4) => Scalar::U32,
            ('u', 8) => Scalar::U64,
            ('f', 2) => Scalar::F16,
            ('f', 4) => Scalar::F32,
            ('f', 8) => Scalar::F64,
            ('c', 8) => Scalar::C64,
            ('c', 16) => Scalar::C128,
            ('f', 16) => Scalar::LongDouble,
            ('c', 32) => Scalar::CLongDouble,
            _ => return None,
        })
    }

    /// numpy's name of the type (`float64`, `int8`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Scalar::Bool => "bool",
            Scalar::I8 => "int8",
            Scalar::I16 => "int16",
            Scalar::I32 => "int32",
            Scalar::I64 => "int64",
            Scalar::U8 => "uint8",
            Scalar::U16 => "uint16",
            Scalar::U32 => "uint32",
            Scalar::U64 => "uint64",
            Scalar::F16 => "float16",
            Scalar::F32 => "float32",
            Scalar::F64 => "float64",
            Scalar::C64 => "complex64",
            Scalar::C128 => "complex128",
            Scalar::LongDouble => "longdouble",
            Scalar::CLongDouble => "clongdouble",
        }
    }
}

/// Unit of a `datetime64` / `timedelta64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeUnit {
    /// No unit yet (`M8`, `m8` without brackets).
    Generic,
    /// Years.
    Year,
    /// Months.
    Month,
    /// Weeks.
    Week,
    /// Days.
    Day,
    /// Hours.
    Hour,
    /// Minutes.
    Minute,
    /// Seconds.
    Second,
    /// Milliseconds.
    Millisecond,
    /// Microseconds.
    Microsecond,
    /// Nanoseconds.
    Nanosecond,
    /// Picoseconds.
    Picosecond,
    /// Femtoseconds.
    Femtosecond,
    /// Attoseconds.
    Attosecond,
}

impl TimeUnit {
    const ALL: [(TimeUnit, &'static str); 14] = [
        (TimeUnit::Generic, "generic"),
        (TimeUnit::Year, "Y"),
        (TimeUnit::Month, "M"),
        (TimeUnit::Week, "W"),
        (TimeUnit::Day, "D"),
        (TimeUnit::Hour, "h"),
        (TimeUnit::Minute, "m"),
        (TimeUnit::Second, "s"),
        (TimeUnit::Millisecond, "ms"),
        (TimeUnit::Microsecond, "us"),
        (TimeUnit::Nanosecond, "ns"),
        (TimeUnit::Picosecond, "ps"),
        (TimeUnit::Femtosecond, "fs"),
        (TimeUnit::Attosecond, "as"),
    ];

    /// numpy's spelling of the unit (`ns`, `D`, `generic`, ...).
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(u, _)| *u == self)
            .map(|(_, s)| *s)
            .unwrap_or("generic")
    }

    /// Parses numpy's spelling of a unit (`μs` is accepted for microseconds).
    pub fn parse(s: &str) -> Option<TimeUnit> {
        if s == "μs" {
            return Some(TimeUnit::Microsecond);
        }
        Self::ALL
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(u, _)| *u)
    }
}

/// Whether a time element is a point in time or a span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeKind {
    /// `datetime64`, kind `M`.
    DateTime,
    /// `timedelta64`, kind `m`.
    TimeDelta,
}

/// `ml_dtypes` extension types: name and element size. These are pickled as the global
/// `ml_dtypes.<name>` and need the `ml_dtypes` package on the loading side.
pub const ML_DTYPES: &[(&str, usize)] = &[
    ("bfloat16", 2),
    ("float8_e3m4", 1),
    ("float8_e4m3", 1),
    ("float8_e4m3b11fnuz", 1),
    ("float8_e4m3fn", 1),
    ("float8_e4m3fnuz", 1),
    ("float8_e5m2", 1),
    ("float8_e5m2fnuz", 1),
    ("float8_e8m0fnu", 1),
    ("float6_e2m3fn", 1),
    ("float6_e3m2fn", 1),
    ("float4_e2m1fn", 1),
    ("int2", 1),
    ("int4", 1),
    ("uint2", 1),
    ("uint4", 1),
];

/// One named field of a structured dtype.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Field {
    /// Field name.
    pub name: String,
    /// Element type of the field.
    pub dtype: DType,
    /// Byte offset of the field inside one element.
    pub offset: usize,
    /// Optional title (numpy's second key for the same field).
    pub title: Option<String>,
}

/// Most dimensions numpy gives an array (`NPY_MAXDIMS` of numpy 2), sub-array dimensions of
/// its dtype included.
pub const MAX_DIMS: usize = 64;

/// A numpy dtype.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// Booleans, integers, floats and complex numbers, in a byte order.
    Scalar {
        /// Which numeric type.
        kind: Scalar,
        /// Byte order (`NotApplicable` for one-byte kinds).
        order: ByteOrder,
    },
    /// `datetime64[unit]` or `timedelta64[unit]`, 8 bytes.
    Time {
        /// Point in time or span.
        kind: TimeKind,
        /// Unit.
        unit: TimeUnit,
        /// Multiplier of the unit (`M8[10s]` has 10).
        count: u32,
        /// Byte order.
        order: ByteOrder,
    },
    /// Fixed-width byte string `S<n>`.
    Bytes(usize),
    /// Fixed-width UCS-4 string `U<n>`, `n` characters of 4 bytes each.
    Unicode {
        /// Length in characters.
        chars: usize,
        /// Byte order of each code point.
        order: ByteOrder,
    },
    /// Raw bytes `V<n>`.
    Void(usize),
    /// An `ml_dtypes` extension type, by name (see [`ML_DTYPES`]).
    MlDtype {
        /// Type name inside the `ml_dtypes` module.
        name: Cow<'static, str>,
        /// Element size in bytes.
        itemsize: usize,
    },
    /// Named fields at byte offsets.
    Struct {
        /// Fields in numpy's `names` order.
        fields: Vec<Field>,
        /// Size of one element, padding included.
        itemsize: usize,
        /// Whether the dtype was created with `align=True`.
        aligned: bool,
    },
    /// A fixed-shape sub-array of another dtype (only meaningful as a field's type).
    SubArray {
        /// Element type.
        base: Box<DType>,
        /// Sub-array shape.
        shape: Vec<usize>,
    },
    /// Python objects (`O`). Recognised so that it can be refused; never interpreted.
    Object,
}

impl DType {
    /// A numeric dtype in native byte order.
    pub fn native(kind: Scalar) -> DType {
        let order = if kind.itemsize() == 1 {
            ByteOrder::NotApplicable
        } else {
            ByteOrder::NATIVE
        };
        DType::Scalar { kind, order }
    }

    /// `ml_dtypes.bfloat16`.
    pub fn bfloat16() -> DType {
        DType::MlDtype {
            name: Cow::Borrowed("bfloat16"),
            itemsize: 2,
        }
    }

    /// Size of one element in bytes (`None` if it overflows, only possible for a
    /// sub-array built by hand with an absurd shape).
    pub fn itemsize(&self) -> usize {
        match self {
            DType::Scalar { kind, .. } => kind.itemsize(),
            DType::Time { .. } => 8,
            DType::Bytes(n) | DType::Void(n) => *n,
            DType::Unicode { chars, .. } => chars.saturating_mul(4),
            DType::MlDtype { itemsize, .. } => *itemsize,
            DType::Struct { itemsize, .. } => *itemsize,
            DType::SubArray { base, shape } => shape
                .iter()
                .fold(base.itemsize(), |acc, &d| acc.saturating_mul(d)),
            DType::Object => std::mem::size_of::<usize>(),
        }
    }

    /// The byte order of the element (for structured dtypes: `NotApplicable`).
    pub fn byte_order(&self) -> ByteOrder {
        match self {
            DType::Scalar { order, .. }
            | DType::Time { order, .. }
            | DType::Unicode { order, .. } => *order,
            DType::SubArray { base, .. } => base.byte_order(),
            _ => ByteOrder::NotApplicable,
        }
    }

    /// Whether every multi-byte part of the element is in native byte order.
    pub fn is_native_order(&self) -> bool {
        match self {
            DType::Struct { fields, .. } => fields.iter().all(|f| f.dtype.is_native_order()),
            DType::SubArray { base, .. } => base.is_native_order(),
            other => other.byte_order().is_native(),
        }
    }

    /// Checks what numpy itself refuses to build, so that a dtype read from a pickle is one
    /// numpy accepts: element sizes and field offsets within a C `int` (numpy's limit for
    /// every dtype it constructs), at most [`MAX_DIMS`] dimensions of nested sub-arrays,
    /// unit multipliers of datetimes within a C `int`, and field titles that are neither
    /// repeated nor another field's name. Object dtypes are refused separately
    /// ([`DType::has_object`]).
    pub fn check_numpy_limits(&self) -> Result<(), String> {
        self.check_limits(0)
    }

    fn check_limits(&self, outer_dims: usize) -> Result<(), String> {
        const C_INT_MAX: usize = i32::MAX as usize;
        let size_ok = |n: usize, what: &str| {
            if n > C_INT_MAX {
                Err(format!("{what} {n} is over numpy's limit of {C_INT_MAX}"))
            } else {
                Ok(())
            }
        };
        match self {
            DType::Bytes(n) | DType::Void(n) => size_ok(*n, "element size"),
            DType::Unicode { chars, .. } => size_ok(chars.saturating_mul(4), "element size"),
            DType::Time { count, .. } => size_ok(*count as usize, "datetime unit multiplier"),
            DType::Struct {
                fields, itemsize, ..
            } => {
                size_ok(*itemsize, "struct itemsize")?;
                let mut keys = std::collections::HashSet::new();
                for f in fields {
                    size_ok(f.offset, "field offset")?;
                    for key in std::iter::once(&f.name).chain(&f.title) {
                        if !keys.insert(key.as_str()) {
                            return Err(format!("'{key}' is already used as a name or title"));
                        }
                    }
                    f.dtype.check_limits(outer_dims)?;
                }
                Ok(())
            }
            DType::SubArray { base, shape } => {
                let dims = outer_dims.saturating_add(shape.len());
                if dims > MAX_DIMS {
                    return Err(format!(
                        "sub-arrays nest {dims} dimensions, numpy allows {MAX_DIMS}"
                    ));
                }
                let count = shape
                    .iter()
                    .try_fold(1usize, |acc, &d| acc.checked_mul(d))
                    .ok_or("sub-array element count overflows")?;
                size_ok(count, "sub-array element count")?;
                let total = count
                    .checked_mul(base.itemsize())
                    .ok_or("sub-array byte size overflows")?;
                size_ok(total, "sub-array byte size")?;
                base.check_limits(dims)
            }
            DType::Scalar { .. } | DType::MlDtype { .. } | DType::Object => Ok(()),
        }
    }

    /// Whether the dtype holds Python object references anywhere.
    pub fn has_object(&self) -> bool {
        match self {
            DType::Object => true,
            DType::Struct { fields, .. } => fields.iter().any(|f| f.dtype.has_object()),
            DType::SubArray { base, .. } => base.has_object(),
            _ => false,
        }
    }

    /// Whether elements hold `U` strings anywhere (fields and sub-arrays included).
    pub fn has_unicode(&self) -> bool {
        match self {
            DType::Unicode { .. } => true,
            DType::Struct { fields, .. } => fields.iter().any(|f| f.dtype.has_unicode()),
            DType::SubArray { base, .. } => base.has_unicode(),
            _ => false,
        }
    }

    /// The first code point over U+10FFFF in the `U` strings of one element's bytes (`elem`
    /// holds at least [`DType::itemsize`] bytes): Python cannot make a `str` of it, so numpy
    /// raises `SystemError` reading such an element.
    pub(crate) fn bad_code_point(&self, elem: &[u8]) -> Option<u32> {
        match self {
            DType::Unicode { chars, order } => elem
                .get(..chars.checked_mul(4)?)?
                .chunks_exact(4)
                .map(|c| {
                    let b = [c[0], c[1], c[2], c[3]];
                    match order {
                        ByteOrder::Big => u32::from_be_bytes(b),
                        ByteOrder::Little => u32::from_le_bytes(b),
                        ByteOrder::NotApplicable => u32::from_ne_bytes(b),
                    }
                })
                .find(|&cp| cp > 0x10_FFFF),
            DType::Struct { fields, .. } => fields.iter().find_map(|f| {
                f.dtype
                    .bad_code_point(elem.get(f.offset..f.offset.checked_add(f.dtype.itemsize())?)?)
            }),
            DType::SubArray { base, .. } => {
                let size = base.itemsize();
                if size == 0 {
                    return None;
                }
                elem.get(..self.itemsize())?
                    .chunks_exact(size)
                    .find_map(|e| base.bad_code_point(e))
            }
            _ => None,
        }
    }

    /// numpy's one-letter kind: `b i u f c M m S U V O`, and `V` for ml_dtypes and structs.
    pub fn kind_char(&self) -> char {
        match self {
            DType::Scalar { kind, .. } => kind.kind(),
            DType::Time {
                kind: TimeKind::DateTime,
                ..
            } => 'M',
            DType::Time {
                kind: TimeKind::TimeDelta,
                ..
            } => 'm',
            DType::Bytes(_) => 'S',
            DType::Unicode { .. } => 'U',
            DType::Object => 'O',
            DType::MlDtype { .. } => 'V',
            DType::Void(_) | DType::Struct { .. } | DType::SubArray { .. } => 'V',
        }
    }

    /// numpy's `dtype.str` for simple dtypes: `<f8`, `|b1`, `<M8[ns]`, `|S5`, `<U5`, `|V8`,
    /// `|O`. `None` for structured, sub-array and ml_dtypes types, which have no such string
    /// that rebuilds them.
    pub fn descr(&self) -> Option<String> {
        let order = self.byte_order().as_char();
        Some(match self {
            DType::Scalar { kind, .. } => format!("{order}{}{}", kind.kind(), kind.itemsize()),
            DType::Time {
                kind, unit, count, ..
            } => {
                let k = if *kind == TimeKind::DateTime {
                    'M'
                } else {
                    'm'
                };
                match (unit, count) {
                    (TimeUnit::Generic, _) => format!("{order}{k}8"),
                    (u, 1) => format!("{order}{k}8[{}]", u.as_str()),
                    (u, c) => format!("{order}{k}8[{c}{}]", u.as_str()),
                }
            }
            DType::Bytes(n) => format!("|S{n}"),
            DType::Unicode { chars, .. } => format!("{order}U{chars}"),
            DType::Void(n) => format!("|V{n}"),
            DType::Object => "|O".to_string(),
            DType::MlDtype { .. } | DType::Struct { .. } | DType::SubArray { .. } => return None,
        })
    }

    /// Parses a simple dtype string as numpy's `dtype.str` and `dtype(...)` accept them:
    /// an optional order character, then a kind and size (`f8`, `M8[ns]`, `U5`, `S3`, `b1`)
    /// or a one-letter type code (`d`, `f`, `?`, `q`, ...). Returns `None` for anything else.
    pub fn parse(spec: &str) -> Option<DType> {
        let mut chars = spec.chars();
        let first = chars.clone().next()?;
        let (order, rest) = match ByteOrder::from_char(first) {
            Some(o) => {
                chars.next();
                (Some(o), chars.as_str())
            }
            None => (None, spec),
        };
        let with_order = |o: Option<ByteOrder>, size: usize| -> ByteOrder {
            if size == 1 {
                ByteOrder::NotApplicable
            } else {
                match o {
                    None | Some(ByteOrder::NotApplicable) => ByteOrder::NATIVE,
                    Some(o) => o,
                }
            }
        };
        // One-letter type codes.
        if rest.chars().count() == 1 {
            let code = rest.chars().next()?;
            let scalar = match code {
                '?' => Some(Scalar::Bool),
                'b' => Some(Scalar::I8),
                'B' => Some(Scalar::U8),
                'h' => Some(Scalar::I16),
                'H' => Some(Scalar::U16),
                'i' => Some(Scalar::I32),
                'I' => Some(Scalar::U32),
                'l' | 'q' | 'p' => Some(Scalar::I64),
                'L' | 'Q' | 'P' => Some(Scalar::U64),
                'e' => Some(Scalar::F16),
                'f' => Some(Scalar::F32),
                'd' => Some(Scalar::F64),
                'F' => Some(Scalar::C64),
                'D' => Some(Scalar::C128),
                'g' => Some(Scalar::LongDouble),
                'G' => Some(Scalar::CLongDouble),
                _ => None,
            };
            if let Some(kind) = scalar {
                return Some(DType::Scalar {
                    kind,
                    order: with_order(order, kind.itemsize()),
                });
            }
            return match code {
                'O' => Some(DType::Object),
                'M' | 'm' => Some(DType::Time {
                    kind: if code == 'M' {
                        TimeKind::DateTime
                    } else {
                        TimeKind::TimeDelta
                    },
                    unit: TimeUnit::Generic,
                    count: 1,
                    order: with_order(order, 8),
                }),
                'S' => Some(DType::Bytes(0)),
                'U' => Some(DType::Unicode {
                    chars: 0,
                    order: with_order(order, 4),
                }),
                'V' => Some(DType::Void(0)),
                _ => None,
            };
        }
        let kind = rest.chars().next()?;
        let tail = &rest[kind.len_utf8()..];
        match kind {
            'M' | 'm' => {
                let tk = if kind == 'M' {
                    TimeKind::DateTime
                } else {
                    TimeKind::TimeDelta
                };
                let (size, unit_part) = match tail.find('[') {
                    Some(i) => (&tail[..i], Some(&tail[i..])),
                    None => (tail, None),
                };
                if size != "8" {
                    return None;
                }
                let (unit, count) = match unit_part {
                    None => (TimeUnit::Generic, 1),
                    Some(p) => parse_time_unit(p.strip_prefix('[')?.strip_suffix(']')?)?,
                };
                Some(DType::Time {
                    kind: tk,
                    unit,
                    count,
                    order: with_order(order, 8),
                })
            }
            'S' | 'a' => tail.parse().ok().map(DType::Bytes),
            'U' => tail.parse().ok().map(|chars| DType::Unicode {
                chars,
                order: with_order(order, 4),
            }),
            'V' => tail.parse().ok().map(DType::Void),
            'O' => (tail == "8" || tail == "4").then_some(DType::Object),
            'b' | 'i' | 'u' | 'f' | 'c' => {
                let size: usize = tail.parse().ok()?;
                let kind = Scalar::from_kind(kind, size)?;
                Some(DType::Scalar {
                    kind,
                    order: with_order(order, size),
                })
            }
            _ => None,
        }
    }

    /// The same dtype with every multi-byte part in native order.
    pub fn to_native_order(&self) -> DType {
        self.with_order_fn(&|o| {
            if o == ByteOrder::NotApplicable {
                o
            } else {
                ByteOrder::NATIVE
            }
        })
    }

    fn with_order_fn(&self, f: &dyn Fn(ByteOrder) -> ByteOrder) -> DType {
        match self {
            DType::Scalar { kind, order } => DType::Scalar {
                kind: *kind,
                order: f(*order),
            },
            DType::Time {
                kind,
                unit,
                count,
                order,
            } => DType::Time {
                kind: *kind,
                unit: *unit,
                count: *count,
                order: f(*order),
            },
            DType::Unicode { chars, order } => DType::Unicode {
                chars: *chars,
                order: f(*order),
            },
            DType::Struct {
                fields,
                itemsize,
                aligned,
            } => DType::Struct {
                fields: fields
                    .iter()
                    .map(|fl| Field {
                        dtype: fl.dtype.with_order_fn(f),
                        ..fl.clone()
                    })
                    .collect(),
                itemsize: *itemsize,
                aligned: *aligned,
            },
            DType::SubArray { base, shape } => DType::SubArray {
                base: Box::new(base.with_order_fn(f)),
                shape: shape.clone(),
            },
            other => other.clone(),
        }
    }
}

/// Parses `ns`, `10s`, `25us` into a unit and a multiplier.
fn parse_time_unit(s: &str) -> Option<(TimeUnit, u32)> {
    let digits = s.chars().take_while(|c| c.is_ascii_digit()).count();
    let count = if digits == 0 {
        1
    } else {
        s[..digits].parse().ok()?
    };
    let unit = TimeUnit::parse(&s[digits..])?;
    Some((unit, count))
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DType::MlDtype { name, .. } => write!(f, "ml_dtypes.{name}"),
            DType::Struct {
                fields, itemsize, ..
            } => {
                write!(f, "struct{{")?;
                for (i, fl) in fields.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{}: {} @{}", fl.name, fl.dtype, fl.offset)?;
                }
                write!(f, "; itemsize {itemsize}}}")
            }
            DType::SubArray { base, shape } => write!(f, "({shape:?}){base}"),
            other => match other.descr() {
                Some(d) => f.write_str(&d),
                None => write!(f, "{other:?}"),
            },
        }
    }
}

/// A Rust element type with a numpy dtype: arrays of it are written zero-copy and read back
/// with checked casts. Implemented for `bool`, `i8`–`i64`, `u8`–`u64`, `f32`, `f64`,
/// `half::f16`, `half::bf16` (as `ml_dtypes.bfloat16`) and `num_complex::Complex<f32|f64>`.
pub trait Element:
    bytemuck::NoUninit + bytemuck::CheckedBitPattern + Copy + Send + Sync + 'static
{
    /// The dtype of this element in native byte order.
    fn dtype() -> DType;
    /// Size of the unit that byte order applies to (half the element for complex numbers).
    const SWAP_UNIT: usize;
}

macro_rules! element {
    ($t:ty, $kind:expr, $unit:expr) => {
        impl Element for $t {
            fn dtype() -> DType {
                DType::native($kind)
            }
            const SWAP_UNIT: usize = $unit;
        }
    };
}

element!(bool, Scalar::Bool, 1);
element!(i8, Scalar::I8, 1);
element!(i16, Scalar::I16, 2);
element!(i32, Scalar::I32, 4);
element!(i64, Scalar::I64, 8);
element!(u8, Scalar::U8, 1);
element!(u16, Scalar::U16, 2);
element!(u32, Scalar::U32, 4);
element!(u64, Scalar::U64, 8);
element!(half::f16, Scalar::F16, 2);
element!(f32, Scalar::F32, 4);
element!(f64, Scalar::F64, 8);
element!(num_complex::Complex<f32>, Scalar::C64, 4);
element!(num_complex::Complex<f64>, Scalar::C128, 8);

impl Element for half::bf16 {
    fn dtype() -> DType {
        DType::bfloat16()
    }
    const SWAP_UNIT: usize = 2;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descr_round_trips() {
        for s in [
            "<f8", ">i4", "|b1", "<f2", "<c16", "<M8[ns]", ">m8[10s]", "|S5", "<U5", "|V8", "|u1",
            "<u8", "<M8",
        ] {
            let d = DType::parse(s).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(d.descr().unwrap(), s);
        }
    }

    #[test]
    fn parse_codes_and_sizes() {
        assert_eq!(DType::parse("d"), Some(DType::native(Scalar::F64)));
        assert_eq!(DType::parse("f8"), Some(DType::native(Scalar::F64)));
        assert_eq!(DType::parse("?"), Some(DType::native(Scalar::Bool)));
        assert_eq!(DType::parse("U20").unwrap().itemsize(), 80);
        assert_eq!(DType::parse("<M8[ns]").unwrap().itemsize(), 8);
        assert_eq!(DType::parse("x8"), None);
        assert_eq!(DType::parse("f3"), None);
        assert_eq!(DType::parse(""), None);
        assert_eq!(DType::parse("<M8[bogus]"), None);
    }

    #[test]
    fn element_dtypes() {
        assert_eq!(f64::dtype().descr().unwrap(), "<f8");
        assert_eq!(bool::dtype().descr().unwrap(), "|b1");
        assert_eq!(<num_complex::Complex<f32>>::dtype().itemsize(), 8);
        assert_eq!(half::bf16::dtype(), DType::bfloat16());
    }
}

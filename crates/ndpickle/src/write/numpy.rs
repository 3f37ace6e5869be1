//! numpy arrays and dtypes in the portable and native reduce forms (DESIGN §3.2–3.4).

use std::borrow::Cow;

use crate::array::c_strides;
use crate::buffer::PayloadBuffer;
use crate::dtype::{ByteOrder, DType, Field, TimeKind};
use crate::error::EncodeError;
use crate::layout::{self, LayoutPolicy, Order, Plan};
use crate::opcodes::*;
use crate::write::encoder::{BytesKind, Encoder, MemoKey};
use crate::write::options::{NumpyForm, WriteOptions};

/// The bytes to send for one array, after the layout decision.
#[derive(Debug)]
pub enum Body<'a> {
    /// Contiguous elements in `order`.
    Contiguous {
        /// Memory order.
        order: Order,
        /// The elements.
        bytes: &'a [u8],
    },
    /// A span of memory holding every element; element zero sits at `offset`.
    Span {
        /// The span.
        bytes: &'a [u8],
        /// Byte offset of element zero inside `bytes`.
        offset: usize,
        /// Byte strides (may be negative or zero).
        strides: Vec<isize>,
    },
    /// A packed copy; the rebuilt array has `strides` over it (zero on broadcast axes).
    Packed {
        /// The packed elements.
        bytes: Vec<u8>,
        /// Byte strides over the packed buffer.
        strides: Vec<isize>,
    },
}

/// An array ready to be written: dtype, shape and the bytes the layout decision chose.
#[derive(Debug)]
pub struct ArrayParts<'a> {
    /// Element type.
    pub dtype: Cow<'a, DType>,
    /// Shape.
    pub shape: Cow<'a, [usize]>,
    /// What travels.
    pub body: Body<'a>,
}

/// Decides the layout for an array whose elements all lie in `data`, element zero at
/// `offset` (byte strides), and returns the parts to write. Packing happens here when the
/// decision asks for it. Native forms get contiguous bodies only.
pub fn plan_parts<'a>(
    dtype: Cow<'a, DType>,
    shape: Cow<'a, [usize]>,
    strides: &[isize],
    data: &'a [u8],
    offset: usize,
    opts: &WriteOptions,
) -> Result<ArrayParts<'a>, EncodeError> {
    let body = plan_body(
        &shape,
        strides,
        dtype.itemsize(),
        data,
        offset,
        BodyLayout::of(opts),
    )?;
    Ok(ArrayParts { dtype, shape, body })
}

/// What [`plan_body`] decides with: the layout policy, the span threshold, and whether the
/// form is one of numpy's native ones (no strides).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BodyLayout {
    /// Layout policy for non-contiguous arrays.
    pub policy: LayoutPolicy,
    /// Used-over-span ratio from which `Auto` sends a span rather than packing.
    pub threshold: f64,
    /// Whether the body is for a native form (strided bodies are packed into C order).
    pub native: bool,
}

impl BodyLayout {
    /// The layout settings of `opts`.
    pub fn of(opts: &WriteOptions) -> BodyLayout {
        BodyLayout {
            policy: opts.layout(),
            threshold: opts.span_threshold(),
            native: opts.numpy_form().is_native(),
        }
    }
}

/// The [`Body`] of an array of `itemsize`-byte elements whose elements all lie in `data`,
/// element zero at `offset` (byte strides), as the options' layout policy decides (packed
/// here when the decision asks for it). For numpy's native forms, which carry no strides, a
/// strided body is packed into C order. The Python bindings describe numpy arrays with this
/// too, so that both writers send the same bytes.
pub fn plan_body<'a>(
    shape: &[usize],
    strides: &[isize],
    itemsize: usize,
    data: &'a [u8],
    offset: usize,
    how: BodyLayout,
) -> Result<Body<'a>, EncodeError> {
    let plan = layout::plan(shape, strides, itemsize, how.policy, how.threshold)?;
    Ok(match plan {
        Plan::Contiguous { order, byte_len } => Body::Contiguous {
            order,
            bytes: &data[offset..offset + byte_len],
        },
        // numpy's own forms carry no strides: materialise the whole array in C order
        // (`AlwaysSpan` with a native form is refused when the options are built).
        Plan::Span { .. } | Plan::Pack { .. } if how.native => {
            let mut bytes = Vec::new();
            layout::pack_chunks(data, offset, shape, strides, itemsize, &mut |c| {
                bytes.extend_from_slice(c)
            });
            Body::Packed {
                bytes,
                strides: c_strides(shape, itemsize),
            }
        }
        Plan::Span { extent } => {
            let start = (offset as isize + extent.low) as usize;
            Body::Span {
                bytes: &data[start..start + extent.len()],
                offset: (-extent.low) as usize,
                strides: strides.to_vec(),
            }
        }
        Plan::Pack {
            byte_len,
            strides: packed,
        } => {
            let mut bytes = Vec::with_capacity(byte_len);
            layout::pack_into(data, offset, shape, strides, itemsize, &mut bytes);
            Body::Packed {
                bytes,
                strides: packed,
            }
        }
    })
}

/// The arguments of the portable form that describe where the elements are in the buffer:
/// `numpy.ndarray(shape, dtype, buffer, offset, strides, order)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortableLayout {
    /// Byte offset of element zero in the buffer.
    pub offset: usize,
    /// Byte strides, `None` for a contiguous buffer in `order`.
    pub strides: Option<Vec<isize>>,
    /// Memory order.
    pub order: Order,
}

impl<'a> Body<'a> {
    /// Offset, strides and order of the portable form over this body.
    pub fn portable_layout(&self) -> PortableLayout {
        let (offset, strides, order) = match self {
            Body::Contiguous { order, .. } => (0, None, *order),
            Body::Span {
                offset, strides, ..
            } => (*offset, Some(strides.clone()), Order::C),
            Body::Packed { strides, .. } => (0, Some(strides.clone()), Order::C),
        };
        PortableLayout {
            offset,
            strides,
            order,
        }
    }

    /// The body's bytes as a buffer to write.
    fn into_payload(self, readonly: bool) -> PayloadBuffer<'a> {
        match self {
            Body::Contiguous { bytes, .. } | Body::Span { bytes, .. } => {
                PayloadBuffer::borrowed(bytes, readonly)
            }
            Body::Packed { bytes, .. } => PayloadBuffer::owned(bytes, readonly),
        }
    }

    /// Hands the body to the encoder as a buffer: out-of-band when the encoder collects
    /// buffers, else in-band as `bytearray` (writable) or `bytes` (read-only). A broadcast
    /// (a zero stride on an axis longer than one) is always read-only, as
    /// `numpy.broadcast_to` makes it: one write would change a whole row.
    fn send(
        self,
        enc: &mut Encoder<'a, '_>,
        itemsize: usize,
        shape: &[usize],
    ) -> Result<(), EncodeError> {
        let broadcast = match &self {
            Body::Contiguous { .. } => false,
            Body::Span { strides, .. } | Body::Packed { strides, .. } => {
                shape.iter().zip(strides).any(|(&d, &s)| s == 0 && d > 1)
            }
        };
        let readonly = enc.opts.readonly || broadcast;
        let buf = self.into_payload(readonly);
        let kind = if readonly {
            BytesKind::Bytes
        } else {
            BytesKind::ByteArray
        };
        enc.array_data(buf, kind, itemsize)
    }

    /// The memory order of the body for numpy's native forms, which carry no strides: the
    /// one place they are refused a strided body (a full C packing counts as C).
    fn native_order(&self, shape: &[usize], itemsize: usize) -> Result<Order, EncodeError> {
        match self {
            Body::Contiguous { order, .. } => Ok(*order),
            Body::Packed { strides, .. } if *strides == c_strides(shape, itemsize) => Ok(Order::C),
            _ => Err(EncodeError::Layout(
                "numpy's native forms carry no strides: a strided span needs the portable form"
                    .into(),
            )),
        }
    }
}

/// Writes an array in the form the options select.
pub fn write_array<'a>(
    enc: &mut Encoder<'a, '_>,
    parts: ArrayParts<'a>,
) -> Result<(), EncodeError> {
    if parts.dtype.has_object() {
        return Err(EncodeError::UnsupportedDtype(format!(
            "{} holds Python objects",
            parts.dtype
        )));
    }
    let form = enc.opts.form;
    if !form.is_native() {
        return write_portable(enc, parts);
    }
    let itemsize = parts.dtype.itemsize();
    let order = parts.body.native_order(&parts.shape, itemsize)?;
    if enc.protocol() >= 5 {
        // _frombuffer(buffer, dtype, shape, order)
        let module = match form {
            NumpyForm::NumpyV2 => "numpy._core.numeric",
            _ => "numpy.core.numeric",
        };
        enc.global(module, "_frombuffer")?;
        enc.mark()?;
        parts.body.send(enc, itemsize, &parts.shape)?;
        write_dtype(enc, &parts.dtype)?;
        shape_tuple(enc, &parts.shape)?;
        enc.str(order.as_str())?;
        enc.tuple(4)?;
        enc.reduce()
    } else {
        // _reconstruct(ndarray, (0,), b'b') + BUILD (1, shape, dtype, is_fortran, rawdata)
        let module = match form {
            NumpyForm::NumpyV2 => "numpy._core.multiarray",
            _ => "numpy.core.multiarray",
        };
        enc.global(module, "_reconstruct")?;
        enc.global("numpy", "ndarray")?;
        enc.int(0)?;
        enc.tuple(1)?;
        enc.bytes(b"b")?;
        enc.tuple(3)?;
        enc.reduce()?;
        enc.mark()?;
        enc.int(1)?;
        shape_tuple(enc, &parts.shape)?;
        write_dtype(enc, &parts.dtype)?;
        enc.bool(order == Order::F && parts.shape.len() > 1)?;
        // numpy's setstate wants `bytes` rawdata: never a bytearray, never out-of-band.
        let buf = parts.body.into_payload(true);
        enc.array_data(buf, BytesKind::Bytes, itemsize)?;
        enc.tuple(5)?;
        enc.build()
    }
}

/// `numpy.ndarray(shape, dtype, buffer, offset, strides, order)`.
fn write_portable<'a>(enc: &mut Encoder<'a, '_>, parts: ArrayParts<'a>) -> Result<(), EncodeError> {
    enc.global("numpy", "ndarray")?;
    enc.mark()?;
    shape_tuple(enc, &parts.shape)?;
    write_dtype(enc, &parts.dtype)?;
    let PortableLayout {
        offset,
        strides,
        order,
    } = parts.body.portable_layout();
    parts.body.send(enc, parts.dtype.itemsize(), &parts.shape)?;
    enc.int(
        i64::try_from(offset).map_err(|_| crate::WireError::Overflow {
            what: "array offset",
        })?,
    )?;
    match strides {
        None => enc.none()?,
        Some(s) => {
            enc.tuple_start(s.len())?;
            for x in &s {
                enc.int(*x as i64)?;
            }
            enc.tuple(s.len())?;
        }
    }
    enc.str(order.as_str())?;
    enc.tuple(6)?;
    enc.reduce()
}

fn shape_tuple(enc: &mut Encoder<'_, '_>, shape: &[usize]) -> Result<(), EncodeError> {
    enc.tuple_start(shape.len())?;
    for &d in shape {
        enc.int(i64::try_from(d).map_err(|_| crate::WireError::Overflow {
            what: "array dimension",
        })?)?;
    }
    enc.tuple(shape.len())
}

/// A numpy scalar (`numpy.float64(1.5)`) from its dtype and the element's bytes:
/// `numpy.core.multiarray.scalar(dtype, bytes)` (numpy 2.x exempts this spelling from its
/// deprecation warning), or `numpy._core.multiarray.scalar` in the numpy-2 form.
pub fn write_scalar(
    enc: &mut Encoder<'_, '_>,
    dtype: &DType,
    bytes: &[u8],
) -> Result<(), EncodeError> {
    if dtype.has_object() {
        return Err(EncodeError::UnsupportedDtype(format!(
            "{dtype} holds Python objects"
        )));
    }
    let module = match enc.opts.form {
        NumpyForm::NumpyV2 => "numpy._core.multiarray",
        _ => "numpy.core.multiarray",
    };
    enc.global(module, "scalar")?;
    write_dtype(enc, dtype)?;
    enc.bytes(bytes)?;
    enc.tuple(2)?;
    enc.reduce()
}

/// A dtype object in the form the options select, memoised.
pub fn write_dtype(enc: &mut Encoder<'_, '_>, dtype: &DType) -> Result<(), EncodeError> {
    // numpy 1.x misreads aligned structs in numpy's native state (signed flags): write
    // those with the portable spec, which every numpy reads.
    let native = match enc.opts.form {
        NumpyForm::Portable => false,
        NumpyForm::NumpyV1 => !has_aligned_struct(dtype),
        NumpyForm::NumpyV2 => true,
    };
    let key = MemoKey::DType(dtype.clone(), native);
    if enc.get_memo(&key)? {
        return Ok(());
    }
    if native {
        native_dtype(enc, dtype)?;
    } else {
        portable_dtype(enc, dtype)?;
    }
    enc.memoize(key)
}

fn has_aligned_struct(dtype: &DType) -> bool {
    match dtype {
        DType::Struct {
            fields, aligned, ..
        } => *aligned || fields.iter().any(|f| has_aligned_struct(&f.dtype)),
        DType::SubArray { base, .. } => has_aligned_struct(base),
        _ => false,
    }
}

/// The `spec` of numpy's portable dtype form `numpy.dtype(spec, align, True)` (DESIGN §3.2):
/// what the encoder writes, and what the Python bindings build as Python objects for the
/// dtypes `ndpickle.Pickler` meets, so that both spell a dtype the same way.
#[derive(Debug, PartialEq)]
pub enum DTypeSpec<'a> {
    /// A dtype string as numpy's `dtype.str` gives it (`'<f8'`, `'|S3'`, `'<M8[ns]'`).
    Str(String),
    /// An `ml_dtypes` type (`ml_dtypes.<name>`, a global).
    MlDtype(&'a str),
    /// `(base, shape)`.
    SubArray {
        /// Element type of the sub-array.
        base: &'a DType,
        /// Its shape.
        shape: &'a [usize],
    },
    /// `{'names': [...], 'formats': [...], 'offsets': [...], 'itemsize': n}`, plus
    /// `'titles'` when `titles` (some field has one).
    Struct {
        /// The fields, in order.
        fields: &'a [Field],
        /// Element size.
        itemsize: usize,
        /// Whether the spec lists titles.
        titles: bool,
    },
}

/// The portable spelling of `dtype`: its spec and numpy's `align` flag (set for aligned
/// structs). Object dtypes are refused.
pub fn portable_spec(dtype: &DType) -> Result<(DTypeSpec<'_>, bool), EncodeError> {
    Ok(match dtype {
        DType::Object => return Err(EncodeError::UnsupportedDtype("object dtype".into())),
        DType::MlDtype { name, .. } => (DTypeSpec::MlDtype(name), false),
        DType::SubArray { base, shape } => (DTypeSpec::SubArray { base, shape }, false),
        DType::Struct {
            fields,
            itemsize,
            aligned,
        } => (
            DTypeSpec::Struct {
                fields,
                itemsize: *itemsize,
                titles: fields.iter().any(|f| f.title.is_some()),
            },
            *aligned,
        ),
        simple => (
            DTypeSpec::Str(
                simple
                    .descr()
                    .ok_or_else(|| EncodeError::UnsupportedDtype(simple.to_string()))?,
            ),
            false,
        ),
    })
}

/// `numpy.dtype(spec, align, True)` with an explicit spec and no state.
fn portable_dtype(enc: &mut Encoder<'_, '_>, dtype: &DType) -> Result<(), EncodeError> {
    let (spec, align) = portable_spec(dtype)?;
    enc.global("numpy", "dtype")?;
    match spec {
        DTypeSpec::MlDtype(name) => enc.global_uncached("ml_dtypes", name)?,
        DTypeSpec::SubArray { base, shape } => {
            write_dtype(enc, base)?;
            shape_tuple(enc, shape)?;
            enc.tuple(2)?;
        }
        DTypeSpec::Struct {
            fields,
            itemsize,
            titles,
        } => {
            let keys: &[usize] = if titles {
                &[0, 1, 2, 3, 4]
            } else {
                &[0, 1, 2, 3]
            };
            enc.dict(keys.iter().copied(), &mut |enc, which| match which {
                0 => {
                    enc.str("names")?;
                    enc.list(fields.iter(), &mut |enc, f| enc.str(&f.name))
                }
                1 => {
                    enc.str("formats")?;
                    enc.list(fields.iter(), &mut |enc, f| write_dtype(enc, &f.dtype))
                }
                2 => {
                    enc.str("offsets")?;
                    enc.list(fields.iter(), &mut |enc, f| enc.int(f.offset as i64))
                }
                3 => {
                    enc.str("itemsize")?;
                    enc.int(itemsize as i64)
                }
                _ => {
                    enc.str("titles")?;
                    enc.list(fields.iter(), &mut |enc, f| match &f.title {
                        Some(t) => enc.str(t),
                        None => enc.none(),
                    })
                }
            })?;
        }
        DTypeSpec::Str(descr) => enc.str(&descr)?,
    }
    enc.bool(align)?;
    enc.bool(true)?;
    enc.tuple(3)?;
    enc.reduce()
}

/// numpy's own dtype reduce: `numpy.dtype(kind+size, False, True)` + `BUILD` state
/// `(version, endian, subarray, names, fields, elsize, alignment, flags[, metadata])`.
fn native_dtype(enc: &mut Encoder<'_, '_>, dtype: &DType) -> Result<(), EncodeError> {
    enc.global("numpy", "dtype")?;
    match dtype {
        DType::Object => return Err(EncodeError::UnsupportedDtype("object dtype".into())),
        DType::MlDtype { name, .. } => enc.global_uncached("ml_dtypes", name)?,
        DType::Unicode { chars, .. } => enc.str(&format!("U{chars}"))?,
        DType::Time { kind, .. } => enc.str(if *kind == TimeKind::DateTime {
            "M8"
        } else {
            "m8"
        })?,
        other => enc.str(&format!("{}{}", other.kind_char(), other.itemsize()))?,
    }
    enc.bool(false)?;
    enc.bool(true)?;
    enc.tuple(3)?;
    enc.reduce()?;

    let is_time = matches!(dtype, DType::Time { .. });
    enc.mark()?;
    enc.int(if is_time { 4 } else { 3 })?;
    let endian = match dtype.byte_order() {
        ByteOrder::NotApplicable => '|',
        o => o.as_char(),
    };
    let endian = match dtype {
        DType::Struct { .. } | DType::SubArray { .. } | DType::Void(_) | DType::Bytes(_) => '|',
        _ => endian,
    };
    enc.str(endian.encode_utf8(&mut [0u8; 4]))?;
    // subarray
    match dtype {
        DType::SubArray { base, shape } => {
            write_dtype(enc, base)?;
            shape_tuple(enc, shape)?;
            enc.tuple(2)?;
        }
        _ => enc.none()?,
    }
    // names, fields
    match dtype {
        DType::Struct { fields, .. } => {
            enc.tuple_start(fields.len())?;
            for f in fields {
                enc.str(&f.name)?;
            }
            enc.tuple(fields.len())?;
            let mut entries: Vec<(&str, &crate::dtype::Field)> = Vec::new();
            for f in fields {
                entries.push((&f.name, f));
                if let Some(t) = &f.title {
                    entries.push((t, f));
                }
            }
            enc.dict(entries, &mut |enc, (key, f)| {
                enc.str(key)?;
                write_dtype(enc, &f.dtype)?;
                enc.int(f.offset as i64)?;
                match &f.title {
                    Some(t) => {
                        enc.str(t)?;
                        enc.tuple(3)
                    }
                    None => enc.tuple(2),
                }
            })?;
        }
        _ => {
            enc.none()?;
            enc.none()?;
        }
    }
    let (elsize, alignment) = match dtype {
        DType::Scalar { .. } | DType::Time { .. } => (-1, -1),
        DType::Bytes(n) | DType::Void(n) => (*n as i64, 1),
        DType::Unicode { chars, .. } => (*chars as i64 * 4, 4),
        DType::MlDtype { itemsize, .. } => (*itemsize as i64, *itemsize as i64),
        DType::Struct { itemsize, .. } => (*itemsize as i64, struct_alignment(dtype) as i64),
        DType::SubArray { base, .. } => (dtype.itemsize() as i64, struct_alignment(base) as i64),
        DType::Object => unreachable!("refused above"),
    };
    enc.int(elsize)?;
    enc.int(alignment)?;
    enc.int(native_flags(dtype))?;
    if is_time {
        let (unit, count) = match dtype {
            DType::Time { unit, count, .. } => (*unit, *count),
            _ => unreachable!(),
        };
        // numpy 2 writes (None, (unit, count, 1, 1)); numpy 1 writes ({}, ...).
        if enc.opts.form == NumpyForm::NumpyV2 {
            enc.none()?;
        } else {
            enc.dict(std::iter::empty::<()>(), &mut |_, _| Ok(()))?;
        }
        enc.tuple_start(4)?;
        enc.bytes(unit.as_str().as_bytes())?;
        enc.int(i64::from(count))?;
        enc.int(1)?;
        enc.int(1)?;
        enc.tuple(4)?;
        enc.tuple(2)?;
        enc.tuple(9)?;
    } else {
        enc.tuple(8)?;
    }
    enc.put(&[BUILD])
}

/// Alignment numpy records for a dtype in its state.
fn struct_alignment(dtype: &DType) -> usize {
    match dtype {
        DType::Struct {
            fields,
            aligned: true,
            ..
        } => fields
            .iter()
            .map(|f| struct_alignment(&f.dtype))
            .max()
            .unwrap_or(1),
        DType::Struct { .. } => 1,
        DType::SubArray { base, .. } => struct_alignment(base),
        DType::Scalar { kind, .. } => match kind {
            crate::dtype::Scalar::C64 => 4,
            crate::dtype::Scalar::C128 => 8,
            // numpy aligns both to 16 bytes on the 64-bit platforms that have them.
            crate::dtype::Scalar::LongDouble | crate::dtype::Scalar::CLongDouble => 16,
            k => k.itemsize(),
        },
        DType::Time { .. } => 8,
        DType::Unicode { .. } => 4,
        DType::MlDtype { itemsize, .. } => *itemsize,
        _ => 1,
    }
}

/// The dtype flags numpy writes in its state (as numpy 2 computes them).
fn native_flags(dtype: &DType) -> i64 {
    const NEEDS_INIT: i64 = 0x08;
    const NEEDS_PYAPI: i64 = 0x10;
    const USE_SETITEM: i64 = 0x40;
    const ALIGNED_STRUCT: i64 = 0x80;
    match dtype {
        DType::Unicode { .. } => NEEDS_INIT,
        DType::MlDtype { .. } => USE_SETITEM,
        DType::Struct {
            fields, aligned, ..
        } => {
            let inner = fields.iter().fold(0, |acc, f| acc | native_flags(&f.dtype));
            inner | NEEDS_PYAPI | if *aligned { ALIGNED_STRUCT } else { 0 }
        }
        DType::SubArray { base, .. } => native_flags(base),
        _ => 0,
    }
}

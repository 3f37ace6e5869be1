//! numpy reconstruction shapes: `dtype(spec, align, copy)` with its `BUILD` state,
//! `_reconstruct` + array state, `_frombuffer`, the portable `ndarray(...)` call and
//! `scalar(dtype, bytes)`.

use std::borrow::Cow;

use bytes::Bytes;

use crate::array::{NdArray, c_strides, f_strides};
use crate::dtype::{ByteOrder, DType, Field, Scalar, TimeUnit};
use crate::error::DecodeErrorKind;
use crate::value::Value;
use crate::wire;

use super::allow::{self, Known};
use super::args::{
    CallParts, arity, bad_array, buffer_of, int_of, latin1, refused, shape_of, str_of, truthy,
    type_err, usize_of,
};
use super::options::ReadOptions;

/// numpy's `NPY_ALIGNED_STRUCT` dtype flag.
const NPY_ALIGNED_STRUCT: u64 = 0x80;

fn unsupported(msg: String) -> DecodeErrorKind {
    DecodeErrorKind::UnsupportedDtype(msg)
}

fn bad_dtype(msg: impl Into<String>) -> DecodeErrorKind {
    DecodeErrorKind::Invalid {
        what: "dtype",
        detail: msg.into(),
    }
}

/// `numpy.dtype(spec[, align[, copy]])`, then `BUILD` with `state` if present.
pub(crate) fn dtype_call(args: &[Value], state: Option<&Value>) -> Result<DType, DecodeErrorKind> {
    if args.is_empty() || args.len() > 3 {
        return Err(refused(format!(
            "numpy.dtype takes 1 to 3 arguments, not {}",
            args.len()
        )));
    }
    let align = args.get(1).is_some_and(truthy);
    let base = spec_to_dtype(&args[0], align)?;
    let dtype = match state {
        None | Some(Value::None) => base,
        Some(s) => apply_state(base, s)?,
    };
    dtype.check_numpy_limits().map_err(bad_dtype)?;
    Ok(dtype)
}

/// A dtype from anything `numpy.dtype()` accepts that ndpickle models: a string, a dtype,
/// an `ml_dtypes` global, a structured dict, a list of `(name, format[, shape])` or a
/// `(base, shape)` sub-array tuple.
pub(crate) fn spec_to_dtype(spec: &Value, align: bool) -> Result<DType, DecodeErrorKind> {
    match spec {
        Value::Str(_) | Value::Bytes(_) => {
            let s = str_of(spec, "dtype spec")?;
            parse_spec(&s)
        }
        Value::DType(d) => Ok(d.clone()),
        Value::Global(g) => match allow::resolve(&g.module, &g.name, &ReadOptions::default()) {
            Ok(Known::MlDtype(name, itemsize)) => Ok(DType::MlDtype {
                name: Cow::Borrowed(name),
                itemsize,
            }),
            _ => Err(unsupported(format!("{g} as a dtype"))),
        },
        Value::Dict(items) => dict_spec(items, align),
        Value::List(items) => list_spec(items, align),
        Value::Tuple(items) if items.len() == 2 => {
            let base = spec_to_dtype(&items[0], false)?;
            let shape = shape_of(&items[1], "sub-array shape")?;
            sub_array(base, shape)
        }
        other => Err(type_err("a dtype spec", other)),
    }
}

fn sub_array(base: DType, shape: Vec<usize>) -> Result<DType, DecodeErrorKind> {
    wire::product(&shape, "sub-array element count")
        .and_then(|n| wire::mul(n, base.itemsize(), "sub-array byte size"))?;
    Ok(DType::SubArray {
        base: Box::new(base),
        shape,
    })
}

fn parse_spec(s: &str) -> Result<DType, DecodeErrorKind> {
    let body = s.trim_start_matches(['<', '>', '=', '|', '!']);
    if matches!(body, "O" | "O4" | "O8") {
        return Ok(DType::Object);
    }
    DType::parse(s).ok_or_else(|| unsupported(format!("dtype spec '{s}'")))
}

/// Natural alignment of a dtype, as numpy's `align=True` uses it.
fn alignment(d: &DType) -> usize {
    match d {
        DType::Scalar { kind, .. } => kind.swap_unit(),
        DType::Time { .. } => 8,
        DType::Unicode { .. } => 4,
        DType::Bytes(_) | DType::Void(_) => 1,
        DType::MlDtype { itemsize, .. } => (*itemsize).max(1),
        DType::Struct {
            fields, aligned, ..
        } => {
            if *aligned {
                fields
                    .iter()
                    .map(|f| alignment(&f.dtype))
                    .max()
                    .unwrap_or(1)
            } else {
                1
            }
        }
        DType::SubArray { base, .. } => alignment(base),
        DType::Object => std::mem::size_of::<usize>(),
    }
}

fn round_up(n: usize, a: usize) -> Result<usize, DecodeErrorKind> {
    let a = a.max(1);
    Ok(wire::mul(
        wire::add(n, a - 1, "field offset")? / a,
        a,
        "field offset",
    )?)
}

/// Lays out fields in order (packed, or aligned like a C struct) and builds the struct.
fn layout(
    fields: Vec<(String, DType, Option<usize>, Option<String>)>,
    itemsize: Option<usize>,
    align: bool,
) -> Result<DType, DecodeErrorKind> {
    let mut out = Vec::with_capacity(fields.len());
    let mut end = 0usize;
    let mut max_align = 1usize;
    for (name, dtype, offset, title) in fields {
        if out.iter().any(|f: &Field| f.name == name) {
            return Err(bad_dtype(format!("duplicate field name '{name}'")));
        }
        let a = alignment(&dtype);
        max_align = max_align.max(a);
        let offset = match offset {
            Some(o) => o,
            None if align => round_up(end, a)?,
            None => end,
        };
        let field_end = wire::add(offset, dtype.itemsize(), "field end")?;
        end = end.max(field_end);
        out.push(Field {
            name,
            dtype,
            offset,
            title,
        });
    }
    let natural = if align {
        round_up(end, max_align)?
    } else {
        end
    };
    let itemsize = match itemsize {
        Some(n) if n < end => {
            return Err(bad_dtype(format!(
                "itemsize {n} is smaller than the fields' extent {end}"
            )));
        }
        Some(n) => n,
        None => natural,
    };
    Ok(DType::Struct {
        fields: out,
        itemsize,
        aligned: align,
    })
}

fn seq<'v>(v: &'v Value, what: &str) -> Result<&'v [Value], DecodeErrorKind> {
    v.as_seq()
        .ok_or_else(|| type_err(format!("a list for {what}"), v))
}

fn dict_spec(items: &[(Value, Value)], align: bool) -> Result<DType, DecodeErrorKind> {
    let get = |k: &str| {
        items
            .iter()
            .find(|(key, _)| key.as_str() == Some(k))
            .map(|(_, v)| v)
    };
    let names = seq(
        get("names").ok_or_else(|| bad_dtype("dict spec without 'names'"))?,
        "names",
    )?;
    let formats = seq(
        get("formats").ok_or_else(|| bad_dtype("dict spec without 'formats'"))?,
        "formats",
    )?;
    if names.len() != formats.len() {
        return Err(bad_dtype("'names' and 'formats' differ in length"));
    }
    let offsets = get("offsets").map(|v| seq(v, "offsets")).transpose()?;
    let titles = get("titles").map(|v| seq(v, "titles")).transpose()?;
    for (what, s) in [("offsets", offsets), ("titles", titles)] {
        if s.is_some_and(|s| s.len() != names.len()) {
            return Err(bad_dtype(format!("'{what}' and 'names' differ in length")));
        }
    }
    let itemsize = get("itemsize")
        .map(|v| usize_of(v, "itemsize"))
        .transpose()?;
    let align = align || get("aligned").is_some_and(truthy);
    let mut fields = Vec::with_capacity(names.len());
    for (i, (name, fmt)) in names.iter().zip(formats).enumerate() {
        let name = str_of(name, "field name")?.into_owned();
        let dtype = spec_to_dtype(fmt, false)?;
        let offset = offsets
            .map(|o| usize_of(&o[i], "field offset"))
            .transpose()?;
        let title = match titles.map(|t| &t[i]) {
            None | Some(Value::None) => None,
            Some(t) => Some(str_of(t, "field title")?.into_owned()),
        };
        fields.push((name, dtype, offset, title));
    }
    layout(fields, itemsize, align)
}

fn list_spec(items: &[Value], align: bool) -> Result<DType, DecodeErrorKind> {
    let mut fields = Vec::with_capacity(items.len());
    for item in items {
        let t = match item {
            Value::Tuple(t) if t.len() == 2 || t.len() == 3 => t,
            other => return Err(type_err("a (name, format[, shape]) tuple", other)),
        };
        let (title, name) = match &t[0] {
            Value::Tuple(tn) if tn.len() == 2 => (
                Some(str_of(&tn[0], "field title")?.into_owned()),
                str_of(&tn[1], "field name")?.into_owned(),
            ),
            other => (None, str_of(other, "field name")?.into_owned()),
        };
        let mut dtype = spec_to_dtype(&t[1], false)?;
        if let Some(shape) = t.get(2) {
            dtype = sub_array(dtype, shape_of(shape, "sub-array shape")?)?;
        }
        fields.push((name, dtype, None, title));
    }
    layout(fields, None, align)
}

/// Applies numpy's `dtype.__setstate__` state (versions 0 to 4, 5 to 9 items).
fn apply_state(base: DType, state: &Value) -> Result<DType, DecodeErrorKind> {
    let Value::Tuple(st) = state else {
        return Err(type_err("a dtype state tuple", state));
    };
    let none = Value::None;
    // (version, endian, subarray, names, fields, elsize, alignment, flags, metadata)
    let (version, endian, subarray, names, fields, elsize, flags, metadata) = match st.len() {
        9 => (
            int_of(&st[0], "dtype state version")?,
            &st[1],
            &st[2],
            &st[3],
            &st[4],
            &st[5],
            Some(&st[7]),
            Some(&st[8]),
        ),
        8 => (
            int_of(&st[0], "dtype state version")?,
            &st[1],
            &st[2],
            &st[3],
            &st[4],
            &st[5],
            Some(&st[7]),
            None,
        ),
        7 => (
            int_of(&st[0], "dtype state version")?,
            &st[1],
            &st[2],
            &st[3],
            &st[4],
            &st[5],
            None,
            None,
        ),
        6 => (
            int_of(&st[0], "dtype state version")?,
            &st[1],
            &st[2],
            &none,
            &st[3],
            &st[4],
            None,
            None,
        ),
        5 => (0, &st[0], &st[1], &none, &st[2], &st[3], None, None),
        n => return Err(bad_dtype(format!("dtype state has {n} items, not 5 to 9"))),
    };
    if !(0..=4).contains(&version) {
        return Err(bad_dtype(format!(
            "can't handle version {version} of numpy.dtype pickle"
        )));
    }
    // Versions 0 and 1 keep the names inside the fields dict, under the key -1.
    let mut fields_v: Option<Vec<(Value, Value)>> = match fields {
        Value::None => None,
        Value::Dict(d) => Some(d.clone()),
        other => return Err(type_err("a dict of fields", other)),
    };
    let mut names_v: Option<Vec<Value>> = match names {
        Value::None => None,
        Value::Tuple(n) | Value::List(n) => Some(n.clone()),
        other => return Err(type_err("a tuple of field names", other)),
    };
    if version <= 1
        && let Some(f) = fields_v.as_mut()
    {
        let pos = f
            .iter()
            .position(|(k, _)| k.as_i64() == Some(-1))
            .ok_or_else(|| bad_dtype("old dtype state without field names"))?;
        let (_, n) = f.remove(pos);
        names_v = Some(seq(&n, "field names")?.to_vec());
    }
    let endian = str_of(endian, "dtype byte order")?;
    let mut chars = endian.chars();
    let order = match (chars.next(), chars.next()) {
        (Some(c), None) => {
            ByteOrder::from_char(c).ok_or_else(|| bad_dtype(format!("unknown byte order '{c}'")))?
        }
        _ => return Err(bad_dtype("endian is not a 1-char string")),
    };
    let elsize = match elsize {
        Value::None => None,
        v => {
            let e = int_of(v, "dtype elsize")?;
            if e < 0 {
                None
            } else {
                Some(usize::try_from(e).map_err(|_| bad_dtype("elsize too large"))?)
            }
        }
    };
    let flags = match flags {
        None => 0u64,
        Some(v) => {
            let mut f = match v {
                Value::BigInt(b) => {
                    i128::try_from(b).map_err(|_| bad_dtype("dtype flags overflow"))?
                }
                other => i128::from(int_of(other, "dtype flags")?),
            };
            // Old numpy wrote the flags as a signed char: -112 is 0x90 (aligned struct).
            if (-128..0).contains(&f) {
                f += 256;
            }
            u64::try_from(f)
                .map_err(|_| bad_dtype("incorrect value for flags variable (overflow)"))?
        }
    };
    if fields_v.is_some() != names_v.is_some() {
        return Err(bad_dtype(
            "inconsistent fields and names in numpy dtype unpickling",
        ));
    }
    if let (Some(fields), Some(names)) = (fields_v, names_v) {
        if !matches!(base, DType::Void(_) | DType::Struct { .. }) {
            return Err(bad_dtype(format!("fields on a non-void dtype {base}")));
        }
        let mut out = Vec::with_capacity(names.len());
        for name in &names {
            let n = str_of(name, "field name")?;
            let entry = fields
                .iter()
                .find(|(k, _)| str_of(k, "field name").is_ok_and(|k| k == n))
                .map(|(_, v)| v)
                .ok_or_else(|| bad_dtype(format!("field '{n}' named but missing from fields")))?;
            let t = match entry {
                Value::Tuple(t) if t.len() == 2 || t.len() == 3 => t,
                other => return Err(type_err("a (dtype, offset[, title]) tuple", other)),
            };
            let Value::DType(fd) = &t[0] else {
                return Err(type_err("a dtype for a field", &t[0]));
            };
            let offset = usize_of(&t[1], "field offset")?;
            let title = match t.get(2) {
                None | Some(Value::None) => None,
                Some(v) => Some(str_of(v, "field title")?.into_owned()),
            };
            out.push((n.into_owned(), fd.clone(), Some(offset), title));
        }
        let itemsize = elsize.unwrap_or(base.itemsize());
        return layout(out, Some(itemsize), flags & NPY_ALIGNED_STRUCT != 0);
    }
    if !matches!(subarray, Value::None) {
        let Value::Tuple(sa) = subarray else {
            return Err(type_err("a (dtype, shape) sub-array tuple", subarray));
        };
        let [Value::DType(b), shape] = sa.as_slice() else {
            return Err(bad_dtype("incorrect subarray in __setstate__"));
        };
        let d = sub_array(b.clone(), shape_of(shape, "sub-array shape")?)?;
        if elsize.is_some_and(|e| e != d.itemsize()) {
            return Err(bad_dtype("sub-array size differs from the state's elsize"));
        }
        return Ok(d);
    }
    let multi = |o: ByteOrder, size: usize| {
        if size == 1 {
            ByteOrder::NotApplicable
        } else if o == ByteOrder::NotApplicable {
            ByteOrder::NATIVE
        } else {
            o
        }
    };
    Ok(match base {
        DType::Scalar { kind, .. } => DType::Scalar {
            kind,
            order: multi(order, kind.itemsize()),
        },
        DType::Time {
            kind, unit, count, ..
        } => {
            let (unit, count) = match metadata {
                Some(Value::Tuple(m)) if m.len() == 2 => time_meta(&m[1])?,
                Some(Value::None | Value::Dict(_)) | None => (unit, count),
                Some(other) => {
                    return Err(type_err("a (metadata, unit) tuple for a datetime", other));
                }
            };
            DType::Time {
                kind,
                unit,
                count,
                order: multi(order, 8),
            }
        }
        DType::Bytes(n) => DType::Bytes(elsize.unwrap_or(n)),
        DType::Void(n) => DType::Void(elsize.unwrap_or(n)),
        DType::Unicode { chars, .. } => {
            let chars = match elsize {
                Some(e) if e % 4 != 0 => {
                    return Err(bad_dtype(format!(
                        "unicode elsize {e} is not a multiple of 4"
                    )));
                }
                Some(e) => e / 4,
                None => chars,
            };
            DType::Unicode {
                chars,
                order: multi(order, 4),
            }
        }
        DType::MlDtype { name, itemsize } => {
            if order == ByteOrder::swapped(ByteOrder::NATIVE) && itemsize > 1 {
                return Err(unsupported(format!(
                    "ml_dtypes.{name} in non-native byte order"
                )));
            }
            if elsize.is_some_and(|e| e != itemsize) {
                return Err(bad_dtype(format!(
                    "ml_dtypes.{name} with elsize {elsize:?}"
                )));
            }
            DType::MlDtype { name, itemsize }
        }
        other => other,
    })
}

/// The `(unit, num[, den, events])` tuple numpy writes for datetime metadata.
fn time_meta(v: &Value) -> Result<(TimeUnit, u32), DecodeErrorKind> {
    let Value::Tuple(t) = v else {
        return Err(type_err("a datetime (unit, num) tuple", v));
    };
    if t.len() != 2 && t.len() != 4 {
        return Err(bad_dtype(format!(
            "datetime metadata tuple has {} items",
            t.len()
        )));
    }
    let unit = str_of(&t[0], "datetime unit")?;
    let unit = TimeUnit::parse(&unit)
        .ok_or_else(|| bad_dtype(format!("unknown datetime unit '{unit}'")))?;
    let num = int_of(&t[1], "datetime multiplier")?;
    let num = u32::try_from(num)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| bad_dtype(format!("datetime multiplier {num}")))?;
    if t.len() == 4 && int_of(&t[2], "datetime denominator")? != 1 {
        return Err(unsupported(
            "datetime metadata with a denominator other than 1".into(),
        ));
    }
    Ok((unit, num))
}

/// An array dtype: sub-array dtypes move their shape into the array's shape.
fn expand(dtype: DType, mut shape: Vec<usize>) -> (DType, Vec<usize>) {
    match dtype {
        DType::SubArray { base, shape: sub } => {
            shape.extend(sub);
            expand(*base, shape)
        }
        other => (other, shape),
    }
}

fn object_array(p: CallParts, opts: &ReadOptions, dtype: &DType) -> Result<Value, DecodeErrorKind> {
    if opts.opaque_globals() {
        return p.into_object();
    }
    Err(unsupported(format!(
        "arrays of dtype {dtype} hold Python objects"
    )))
}

fn raw_bytes(v: &Value) -> Result<Bytes, DecodeErrorKind> {
    match v {
        Value::Str(s) => latin1(s, "array data"),
        other => buffer_of(other)
            .map(|(b, _)| b)
            .ok_or_else(|| type_err("bytes for the array data", other)),
    }
}

fn dtype_arg(v: &Value) -> Result<DType, DecodeErrorKind> {
    match v {
        Value::DType(d) => Ok(d.clone()),
        other => spec_to_dtype(other, false),
    }
}

/// `_reconstruct(ndarray, (0,), b'b')` + `BUILD (version, shape, dtype, is_fortran, rawdata)`.
pub(crate) fn reconstruct(p: CallParts, opts: &ReadOptions) -> Result<Value, DecodeErrorKind> {
    p.plain(true)?;
    arity(&p, 3, 3)?;
    match &p.args[0] {
        Value::Global(g) if g.name == "ndarray" => {}
        other => return Err(type_err("numpy.ndarray as the array type", other)),
    }
    let Some(Value::Tuple(st)) = &p.state else {
        return Err(bad_array(
            "_reconstruct without an array state tuple".into(),
        ));
    };
    let (shape, dtype, fortran, raw) = match st.as_slice() {
        [_, s, d, f, r] | [s, d, f, r] => (s, d, f, r),
        _ => {
            return Err(bad_array(format!(
                "array state has {} items, not 4 or 5",
                st.len()
            )));
        }
    };
    let Value::DType(dtype) = dtype else {
        return Err(type_err("a dtype in the array state", dtype));
    };
    if dtype.has_object() {
        let d = dtype.clone();
        return object_array(p, opts, &d);
    }
    let shape = shape_of(shape, "array shape")?;
    let data = raw_bytes(raw)?;
    reconstruct_array(shape, dtype.clone(), truthy(fortran), data)
        .map(|a| Value::Array(Box::new(a)))
}

/// The array of `_reconstruct` + `BUILD (version, shape, dtype, is_fortran, rawdata)` from
/// the state's parts (`dtype` holds no Python objects).
pub(crate) fn reconstruct_array(
    shape: Vec<usize>,
    dtype: DType,
    fortran: bool,
    data: Bytes,
) -> Result<NdArray, DecodeErrorKind> {
    let (dtype, shape) = expand(dtype, shape);
    let n = wire::product(&shape, "element count")
        .and_then(|n| wire::mul(n, dtype.itemsize(), "array byte length"))?;
    if n != data.len() {
        return Err(bad_array(format!(
            "buffer size does not match array size: shape {shape:?} of {dtype} needs {n} bytes, data has {}",
            data.len()
        )));
    }
    let (dtype, data) = to_native_order(dtype, data);
    let strides = if fortran {
        f_strides(&shape, dtype.itemsize())
    } else {
        c_strides(&shape, dtype.itemsize())
    };
    NdArray::new(dtype, shape, strides, 0, data, false).map_err(|e| e.kind)
}

/// What numpy's `ndarray.__setstate__` does with a simple dtype (a number, a datetime, a
/// unicode string) in the other byte order: the array comes back in the native order, its
/// data byte-swapped, same values. Structured dtypes keep their fields' orders.
fn to_native_order(dtype: DType, data: Bytes) -> (DType, Bytes) {
    let native = ByteOrder::NATIVE;
    let (unit, swapped) = match dtype {
        DType::Scalar { kind, order } if !order.is_native() => (
            kind.swap_unit(),
            DType::Scalar {
                kind,
                order: native,
            },
        ),
        DType::Time {
            kind,
            unit,
            count,
            order,
        } if !order.is_native() => (
            8,
            DType::Time {
                kind,
                unit,
                count,
                order: native,
            },
        ),
        DType::Unicode { chars, order } if !order.is_native() => (
            4,
            DType::Unicode {
                chars,
                order: native,
            },
        ),
        other => return (other, data),
    };
    let mut v = data.to_vec();
    for element in v.chunks_exact_mut(unit.max(1)) {
        element.reverse();
    }
    (swapped, Bytes::from(v))
}

/// `_frombuffer(buf, dtype, shape, order[, axis_order])`: `frombuffer(buf, dtype)` reshaped
/// in `order`; with `'K'` the C-ordered shape is then transposed by `axis_order`.
pub(crate) fn frombuffer(p: CallParts, opts: &ReadOptions) -> Result<Value, DecodeErrorKind> {
    p.plain(false)?;
    arity(&p, 4, 5)?;
    let dtype = dtype_arg(&p.args[1])?;
    if dtype.has_object() {
        return object_array(p, opts, &dtype);
    }
    let (data, readonly) =
        buffer_of(&p.args[0]).ok_or_else(|| type_err("a buffer for _frombuffer", &p.args[0]))?;
    let shape = shape_of(&p.args[2], "array shape")?;
    let order = str_of(&p.args[3], "array order")?;
    let axis_order = match p.args.get(4) {
        None | Some(Value::None) => None,
        Some(v) => Some(shape_of(v, "axis order")?),
    };
    frombuffer_array(data, readonly, dtype, shape, &order, axis_order)
        .map(|a| Value::Array(Box::new(a)))
}

/// The array of `_frombuffer(buf, dtype, shape, order[, axis_order])` from its parts
/// (`dtype` holds no Python objects).
pub(crate) fn frombuffer_array(
    data: Bytes,
    readonly: bool,
    dtype: DType,
    shape: Vec<usize>,
    order: &str,
    axis_order: Option<Vec<usize>>,
) -> Result<NdArray, DecodeErrorKind> {
    if matches!(dtype, DType::SubArray { .. }) {
        return Err(unsupported(format!(
            "_frombuffer with sub-array dtype {dtype}"
        )));
    }
    let itemsize = dtype.itemsize();
    if itemsize == 0 {
        return Err(bad_array("itemsize cannot be zero in type".into()));
    }
    if !data.len().is_multiple_of(itemsize) {
        return Err(bad_array(format!(
            "buffer size {} must be a multiple of element size {itemsize}",
            data.len()
        )));
    }
    let count = wire::product(&shape, "element count")?;
    if count != data.len() / itemsize {
        return Err(bad_array(format!(
            "cannot reshape {} elements into shape {shape:?}",
            data.len() / itemsize
        )));
    }
    let (shape, strides) = match (order, axis_order) {
        ("C" | "A", _) => (shape.clone(), c_strides(&shape, itemsize)),
        ("F", _) => (shape.clone(), f_strides(&shape, itemsize)),
        ("K", Some(axes)) => {
            let mut seen = vec![false; shape.len()];
            if axes.len() != shape.len()
                || axes
                    .iter()
                    .any(|&a| a >= shape.len() || std::mem::replace(&mut seen[a], true))
            {
                return Err(bad_array(format!(
                    "axis order {axes:?} is not a permutation of {} axes",
                    shape.len()
                )));
            }
            let c = c_strides(&shape, itemsize);
            (
                axes.iter().map(|&a| shape[a]).collect(),
                axes.iter().map(|&a| c[a]).collect(),
            )
        }
        ("K", None) => return Err(bad_array("order 'K' needs an axis order".into())),
        (o, _) => return Err(bad_array(format!("unknown order '{o}'"))),
    };
    NdArray::new(dtype, shape, strides, 0, data, readonly).map_err(|e| e.kind)
}

/// The portable form `numpy.ndarray(shape, dtype, buffer, offset, strides, order)`.
pub(crate) fn ndarray_new(p: CallParts, opts: &ReadOptions) -> Result<Value, DecodeErrorKind> {
    p.plain(false)?;
    arity(&p, 1, 6)?;
    let shape = shape_of(&p.args[0], "array shape")?;
    let dtype = match p.args.get(1) {
        None | Some(Value::None) => DType::native(Scalar::F64),
        Some(v) => dtype_arg(v)?,
    };
    if dtype.has_object() {
        return object_array(p, opts, &dtype);
    }
    let (data, readonly) = match p.args.get(2) {
        None | Some(Value::None) => {
            return Err(bad_array(
                "numpy.ndarray without a buffer has undefined contents".into(),
            ));
        }
        // Another array as the buffer (ndpickle's views of an array sent earlier): its
        // memory, which numpy exports only from contiguous arrays.
        Some(Value::Array(base)) => contiguous_memory(base)
            .ok_or_else(|| bad_array("an array used as a buffer must be contiguous".into()))?,
        Some(v) => buffer_of(v).ok_or_else(|| type_err("a buffer for numpy.ndarray", v))?,
    };
    let offset = match p.args.get(3) {
        None | Some(Value::None) => 0,
        Some(v) => usize_of(v, "array offset")?,
    };
    let layout = match (p.args.get(4), p.args.get(5)) {
        (None | Some(Value::None), None | Some(Value::None)) => Layout::Order("C"),
        (None | Some(Value::None), Some(o)) => Layout::Order(&str_of(o, "array order")?),
        (Some(Value::Tuple(s) | Value::List(s)), _) => Layout::Strides(
            s.iter()
                .map(|x| {
                    let i = int_of(x, "array stride")?;
                    isize::try_from(i).map_err(|_| bad_array(format!("stride {i} too large")))
                })
                .collect::<Result<_, _>>()?,
        ),
        (Some(other), _) => return Err(type_err("a tuple of strides", other)),
    };
    ndarray_array(shape, dtype, data, readonly, offset, layout).map(|a| Value::Array(Box::new(a)))
}

/// How `numpy.ndarray(...)` lays its elements out: explicit byte strides, or an order.
pub(crate) enum Layout<'s> {
    /// Byte strides, one per dimension.
    Strides(Vec<isize>),
    /// `'C'`, `'F'` (or `'A'`/`'K'`, read as `'C'`) over contiguous elements.
    Order(&'s str),
}

/// The array of `numpy.ndarray(shape, dtype, buffer, offset, strides, order)` from its parts
/// (`dtype` holds no Python objects).
pub(crate) fn ndarray_array(
    shape: Vec<usize>,
    dtype: DType,
    data: Bytes,
    readonly: bool,
    offset: usize,
    layout: Layout<'_>,
) -> Result<NdArray, DecodeErrorKind> {
    let (dtype, shape) = expand(dtype, shape);
    let strides = match layout {
        Layout::Strides(s) => s,
        Layout::Order(o) => order_strides(&shape, dtype.itemsize(), o)?,
    };
    check_stride_count(&shape, &strides)?;
    NdArray::new(dtype, shape, strides, offset, data, readonly).map_err(|e| e.kind)
}

/// The contiguous strides of `numpy.ndarray(..., order=o)`.
pub(crate) fn order_strides(
    shape: &[usize],
    itemsize: usize,
    o: &str,
) -> Result<Vec<isize>, DecodeErrorKind> {
    let mut out = Vec::with_capacity(shape.len());
    order_strides_into(shape, itemsize, o, &mut out)?;
    Ok(out)
}

/// [`order_strides`] written into `out`.
pub(crate) fn order_strides_into(
    shape: &[usize],
    itemsize: usize,
    o: &str,
    out: &mut Vec<isize>,
) -> Result<(), DecodeErrorKind> {
    let fortran = match o {
        "C" | "A" | "K" => false,
        "F" => true,
        o => return Err(bad_array(format!("unknown order '{o}'"))),
    };
    crate::array::contiguous_strides_into(shape, itemsize, fortran, out);
    Ok(())
}

/// `numpy.ndarray`'s explicit strides must give one per dimension.
pub(crate) fn check_stride_count(
    shape: &[usize],
    strides: &[isize],
) -> Result<(), DecodeErrorKind> {
    if strides.len() != shape.len() {
        return Err(bad_array(format!(
            "{} strides for {} dimensions",
            strides.len(),
            shape.len()
        )));
    }
    Ok(())
}

/// The bytes a C- or Fortran-contiguous array exports as a buffer (in memory order, as
/// numpy does), and whether they are read-only.
fn contiguous_memory(a: &NdArray) -> Option<(Bytes, bool)> {
    if !(a.is_c_contiguous() || a.is_f_contiguous()) {
        return None;
    }
    let len = a.len().checked_mul(a.dtype().itemsize())?;
    let end = a.offset().checked_add(len)?;
    (end <= a.data().len()).then(|| (a.data().slice(a.offset()..end), a.is_readonly()))
}

/// `numpy.core.multiarray.scalar(dtype, bytes)`.
pub(crate) fn scalar(p: CallParts, opts: &ReadOptions) -> Result<Value, DecodeErrorKind> {
    p.plain(false)?;
    arity(&p, 2, 2)?;
    let Value::DType(dtype) = &p.args[0] else {
        return Err(type_err("a dtype for numpy scalar", &p.args[0]));
    };
    if dtype.has_object() {
        let d = dtype.clone();
        return object_array(p, opts, &d);
    }
    let (dtype, shape) = expand(dtype.clone(), Vec::new());
    let data = raw_bytes(&p.args[1])?;
    NdArray::from_c_bytes(dtype, shape, data)
        .map(|a| Value::Scalar(Box::new(a)))
        .map_err(|e| e.kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    fn dtype_states() {
        // numpy 2: datetime with unit only in the state.
        let st = Value::Tuple(vec![
            Value::Int(4),
            s("<"),
            Value::None,
            Value::None,
            Value::None,
            Value::Int(-1),
            Value::Int(-1),
            Value::Int(0),
            Value::Tuple(vec![
                Value::None,
                Value::Tuple(vec![
                    Value::Bytes("s".into()),
                    Value::Int(10),
                    Value::Int(1),
                    Value::Int(1),
                ]),
            ]),
        ]);
        let d = dtype_call(&[s("M8"), Value::Bool(false), Value::Bool(true)], Some(&st)).unwrap();
        assert_eq!(d.descr().unwrap(), "<M8[10s]");
        // Unicode spec fixed by elsize.
        let st = Value::Tuple(vec![
            Value::Int(3),
            s(">"),
            Value::None,
            Value::None,
            Value::None,
            Value::Int(12),
            Value::Int(4),
            Value::Int(8),
        ]);
        let d = dtype_call(&[s("U12")], Some(&st)).unwrap();
        assert_eq!(d.descr().unwrap(), ">U3");
        // Signed flags of old numpy.
        let st = Value::Tuple(vec![
            Value::Int(3),
            s("|"),
            Value::None,
            Value::None,
            Value::None,
            Value::Int(-1),
            Value::Int(-1),
            Value::Int(-128),
        ]);
        assert!(dtype_call(&[s("i1")], Some(&st)).is_ok());
        let st = Value::Tuple(vec![
            Value::Int(3),
            s("|"),
            Value::None,
            Value::None,
            Value::None,
            Value::Int(-1),
            Value::Int(-1),
            Value::Int(-129),
        ]);
        assert!(dtype_call(&[s("i1")], Some(&st)).is_err());
        // Bad version and size.
        let st = Value::Tuple(vec![
            Value::Int(7),
            s("<"),
            Value::None,
            Value::None,
            Value::None,
            Value::Int(-1),
            Value::Int(-1),
            Value::Int(0),
        ]);
        assert!(dtype_call(&[s("f8")], Some(&st)).is_err());
        assert!(dtype_call(&[s("f8")], Some(&Value::Tuple(vec![]))).is_err());
        assert!(dtype_call(&[s("f7")], None).is_err());
        assert_eq!(dtype_call(&[s("O8")], None).unwrap(), DType::Object);
    }

    #[test]
    fn dict_and_list_specs() {
        let spec = Value::Dict(vec![
            (s("names"), Value::List(vec![s("a"), s("b")])),
            (s("formats"), Value::List(vec![s("<i4"), s("u1")])),
            (
                s("offsets"),
                Value::List(vec![Value::Int(0), Value::Int(4)]),
            ),
            (s("itemsize"), Value::Int(8)),
        ]);
        let d = spec_to_dtype(&spec, false).unwrap();
        assert_eq!(d.itemsize(), 8);
        let aligned = spec_to_dtype(
            &Value::List(vec![
                Value::Tuple(vec![s("a"), s("u1")]),
                Value::Tuple(vec![s("b"), s("<f8")]),
            ]),
            true,
        )
        .unwrap();
        let DType::Struct {
            fields, itemsize, ..
        } = aligned
        else {
            panic!()
        };
        assert_eq!((fields[1].offset, itemsize), (8, 16));
        let bad = Value::Dict(vec![
            (s("names"), Value::List(vec![s("a")])),
            (s("formats"), Value::List(vec![s("<i4")])),
            (s("itemsize"), Value::Int(2)),
        ]);
        assert!(spec_to_dtype(&bad, false).is_err());
    }
}

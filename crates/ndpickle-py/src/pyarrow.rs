//! pyarrow objects from the safe reader's object nodes, built so that pyarrow never sees an
//! inconsistent array and validated in full before they are returned.
//!
//! pyarrow's own `_restore_array` builds arrays from pickled `ArrayData` without any
//! check, and `Array.from_buffers` builds the C++ array before it validates it: a child
//! of the wrong type, a missing dictionary or a map whose entries have nulls trips an
//! assertion (abort) or a null dereference inside Arrow C++ before validation can refuse
//! it. So every array here is built bottom-up by [`ArrayParts::build`]: children first
//! (each built and validated the same way), their types checked against the parent's
//! fields, the counts and sizes checked, then the public constructor
//! (`Array.from_buffers`, `DictionaryArray.from_buffers`, `ExtensionArray.from_storage`),
//! and last `validate(full=True)` (offsets, UTF-8, union type codes, dictionary indices,
//! run ends, views, null counts). Record batches, tables and chunked arrays are built
//! only from arrays and validated in full too.
//!
//! Nothing here converts Python values into Arrow data through pyarrow's conversion, which
//! tries to import pandas: scalars of plain types are built from buffers, others only once
//! pandas is imported, so loading never imports a module outside numpy and pyarrow.

use ndpickle::{DecodeErrorKind, EncodeError, Global, Object, Value, WireError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::convert::{Converter, as_decode_error};
use crate::error::{decode_msg, encode_err};

/// `pyarrow.lib`, imported on first use.
static LIB: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn lib<'py>(py: Python<'py>, g: &Global) -> PyResult<Bound<'py, PyModule>> {
    LIB.get_or_try_init(py, || {
        py.import("pyarrow.lib").map(Bound::unbind).map_err(|e| {
            decode_msg(DecodeErrorKind::Refused(format!(
                "the pickle holds pyarrow objects ({g}) but pyarrow cannot be imported: {e}"
            )))
        })
    })
    .map(|m| m.bind(py).clone())
}

/// Resolves an allow-listed `pyarrow.lib` global; anything else is a `DecodeError`.
fn global<'py>(py: Python<'py>, g: &Global) -> PyResult<Bound<'py, PyAny>> {
    let allowed = matches!(g.module.as_str(), "pyarrow.lib" | "pyarrow")
        && ndpickle::read::PYARROW_NAMES.contains(&g.name.as_str());
    if !allowed {
        return Err(decode_msg(DecodeErrorKind::ForbiddenGlobal {
            module: g.module.clone(),
            name: g.name.clone(),
        }));
    }
    // Dotted names (`Array.from_buffers`) are attribute chains from the allow-list only.
    let mut obj = lib(py, g)?.into_any();
    for part in g.name.split('.') {
        obj = obj.getattr(part)?;
    }
    Ok(obj)
}

/// A refusal of a pyarrow call's arguments.
fn refused(g: &Global, msg: impl std::fmt::Display) -> PyErr {
    decode_msg(DecodeErrorKind::Refused(format!("{g}: {msg}")))
}

/// Builds the pyarrow object for an allow-listed call.
pub(crate) fn object<'py>(
    conv: &Converter<'_>,
    py: Python<'py>,
    o: Object,
) -> PyResult<Bound<'py, PyAny>> {
    let g = o.callable.clone();
    build(conv, py, o).map_err(|e| as_decode_error(py, &format!("{g} refused its arguments"), e))
}

fn build<'py>(conv: &Converter<'_>, py: Python<'py>, o: Object) -> PyResult<Bound<'py, PyAny>> {
    let g = o.callable;
    if o.state.is_some() {
        return Err(refused(&g, "BUILD state is not a known pyarrow form"));
    }
    let pa = lib(py, &g)?;
    let name = g.name.as_str();
    match name {
        "_restore_array" => {
            let [data]: [Value; 1] = o
                .args
                .try_into()
                .map_err(|_| refused(&g, "takes one array data tuple"))?;
            let parts = ArrayParts::from_data_tuple(conv, py, &g, data)?;
            parts.build(py, &pa, &g)
        }
        "Array.from_buffers" | "DictionaryArray.from_buffers" => {
            let dictionary = name == "DictionaryArray.from_buffers";
            let parts = ArrayParts::from_call(conv, py, &g, o.args, dictionary)?;
            parts.build(py, &pa, &g)
        }
        "scalar" => scalar(conv, py, &pa, &g, o.args),
        "DictionaryScalar._reconstruct" => dictionary_scalar(conv, py, &pa, &g, o.args),
        _ => {
            let callable = global(py, &g)?;
            let args = o
                .args
                .into_iter()
                .map(|v| conv.to_py(py, v))
                .collect::<PyResult<Vec<_>>>()?;
            check_containers(py, &pa, &g, &args)?;
            let out = callable.call1(PyTuple::new(py, args)?)?;
            validate_full(&pa, &out)?;
            Ok(out)
        }
    }
}

/// `pyarrow.scalar(value, type)`, as pyarrow pickles scalars (`as_py()` and the type).
///
/// pyarrow builds it with its Python-to-Arrow conversion, which imports pandas when pandas
/// is installed. So nulls, booleans, numbers, strings and binaries are built here from
/// buffers (a one-element array, validated, then its element); other types go to
/// `pyarrow.scalar` only when that cannot import pandas, and are refused otherwise.
fn scalar<'py>(
    conv: &Converter<'_>,
    py: Python<'py>,
    pa: &Bound<'py, PyModule>,
    g: &Global,
    args: Vec<Value>,
) -> PyResult<Bound<'py, PyAny>> {
    if args.len() != 2 {
        return Err(refused(
            g,
            format!("takes (value, type), not {} arguments", args.len()),
        ));
    }
    let mut it = args.into_iter();
    let value = conv.to_py(py, it.next().unwrap_or_default())?;
    let ty = conv.to_py(py, it.next().unwrap_or_default())?;
    if !ty.is_instance(&pa.getattr("DataType")?)? {
        return Err(refused(g, "the scalar's type must be a pyarrow DataType"));
    }
    if let Some(array) = one_element_array(py, pa, &ty, &value)? {
        validate_full(pa, &array)?;
        return array.get_item(0);
    }
    if !pandas_imported(py)? {
        return Err(refused(
            g,
            format!(
                "building a pyarrow {ty} scalar goes through pyarrow's conversion of Python \
                 values, which imports pandas; it is done only once pandas is imported"
            ),
        ));
    }
    let out = pa.getattr("scalar")?.call1((value, ty))?;
    Ok(out)
}

/// `DictionaryScalar._reconstruct(type, is_valid, index, dictionary)`, as pyarrow pickles a
/// dictionary scalar: rebuilt as element 0 of a one-element `DictionaryArray` made from an
/// index array (built from buffers) and the dictionary, with the index checked against the
/// dictionary's length (`from_arrays(..., safe=True)`) and the array validated in full.
fn dictionary_scalar<'py>(
    conv: &Converter<'_>,
    py: Python<'py>,
    pa: &Bound<'py, PyModule>,
    g: &Global,
    args: Vec<Value>,
) -> PyResult<Bound<'py, PyAny>> {
    let [ty, is_valid, index, dictionary]: [Value; 4] =
        args.try_into().map_err(|a: Vec<Value>| {
            refused(
                g,
                format!(
                    "takes (type, is_valid, index, dictionary), not {} arguments",
                    a.len()
                ),
            )
        })?;
    let Value::Bool(is_valid) = is_valid else {
        return Err(refused(g, "is_valid must be a bool"));
    };
    let ty = conv.to_py(py, ty)?;
    if !ty.is_instance(&pa.getattr("DictionaryType")?)? {
        return Err(refused(g, "the type must be a pyarrow DictionaryType"));
    }
    let dictionary = conv.to_py(py, dictionary)?;
    if !dictionary.is_instance(&pa.getattr("Array")?)?
        || !dictionary.getattr("type")?.eq(ty.getattr("value_type")?)?
    {
        return Err(refused(
            g,
            "the dictionary must be an array of the type's value type",
        ));
    }
    let index = conv.to_py(py, index)?;
    let index_type = ty.getattr("index_type")?;
    if !index.is_instance(&pa.getattr("Scalar")?)? || !index.getattr("type")?.eq(&index_type)? {
        return Err(refused(
            g,
            "the index must be a scalar of the type's index type",
        ));
    }
    let value = if is_valid {
        index.call_method0("as_py")?
    } else {
        py.None().into_bound(py)
    };
    let Some(indices) = one_element_array(py, pa, &index_type, &value)? else {
        return Err(refused(g, "the index type must be an integer type"));
    };
    let kwargs = PyDict::new(py);
    kwargs.set_item("ordered", ty.getattr("ordered")?)?;
    kwargs.set_item("safe", true)?;
    let array = pa.getattr("DictionaryArray")?.call_method(
        "from_arrays",
        (indices, dictionary),
        Some(&kwargs),
    )?;
    validate_full(pa, &array)?;
    array.get_item(0)
}

/// A one-element array of `ty` holding `value`, built from buffers, for the types whose
/// bytes are plain; `None` for other types.
fn one_element_array<'py>(
    py: Python<'py>,
    pa: &Bound<'py, PyModule>,
    ty: &Bound<'py, PyAny>,
    value: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let types = py.import("pyarrow.types")?;
    let is = |pred: &str| -> PyResult<bool> { types.getattr(pred)?.call1((ty,))?.extract() };
    if value.is_none() {
        return Ok(Some(pa.getattr("nulls")?.call1((1, ty))?));
    }
    let data: Vec<Bound<'py, PyAny>> = if is("is_boolean")? {
        let bit: bool = value.extract()?;
        vec![pybytes(py, &[u8::from(bit)])]
    } else if is("is_integer")? {
        let width: usize = ty.getattr("bit_width")?.extract::<usize>()? / 8;
        let signed = is("is_signed_integer")?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("signed", signed)?;
        let raw = value
            .call_method("to_bytes", (width, "little"), Some(&kwargs))?
            .extract::<Vec<u8>>()?;
        vec![pybytes(py, &raw)]
    } else if is("is_floating")? {
        let format = match ty.getattr("bit_width")?.extract::<usize>()? {
            16 => "<e",
            32 => "<f",
            _ => "<d",
        };
        let raw = py
            .import("struct")?
            .getattr("pack")?
            .call1((format, value))?;
        vec![raw]
    } else if is("is_string")?
        || is("is_large_string")?
        || is("is_binary")?
        || is("is_large_binary")?
    {
        let raw: Vec<u8> = if is("is_string")? || is("is_large_string")? {
            value.extract::<String>()?.into_bytes()
        } else {
            value.extract::<Vec<u8>>()?
        };
        let offsets: Vec<u8> = if is("is_large_string")? || is("is_large_binary")? {
            [0i64.to_le_bytes(), (raw.len() as i64).to_le_bytes()].concat()
        } else {
            let n = i32::try_from(raw.len()).map_err(|_| {
                encode_err(EncodeError::Wire(WireError::Overflow {
                    what: "a string or binary scalar's length (over 2**31 - 1 bytes)",
                }))
            })?;
            [0i32.to_le_bytes(), n.to_le_bytes()].concat()
        };
        vec![pybytes(py, &offsets), pybytes(py, &raw)]
    } else {
        return Ok(None);
    };
    let py_buffer = pa.getattr("py_buffer")?;
    let mut buffers = vec![py.None().into_bound(py)];
    for d in data {
        buffers.push(py_buffer.call1((d,))?);
    }
    let array = pa
        .getattr("Array")?
        .call_method1("from_buffers", (ty, 1, PyList::new(py, buffers)?, 0, 0))?;
    Ok(Some(array))
}

fn pybytes<'py>(py: Python<'py>, b: &[u8]) -> Bound<'py, PyAny> {
    pyo3::types::PyBytes::new(py, b).into_any()
}

/// Record batches, tables and chunked arrays are built from arrays only: pyarrow would
/// otherwise convert Python values, which goes through its pandas-aware conversion.
fn check_containers(
    py: Python<'_>,
    pa: &Bound<'_, PyModule>,
    g: &Global,
    args: &[Bound<'_, PyAny>],
) -> PyResult<()> {
    let of = |name: &str| pa.getattr(name);
    let (what, allowed): (&str, Vec<Bound<'_, PyAny>>) = match g.name.as_str() {
        "chunked_array" | "RecordBatch.from_arrays" | "_reconstruct_record_batch" => {
            ("arrays", vec![of("Array")?])
        }
        "_reconstruct_table" | "Table.from_arrays" => (
            "arrays or chunked arrays",
            vec![of("Array")?, of("ChunkedArray")?],
        ),
        "Table.from_batches" => ("record batches", vec![of("RecordBatch")?]),
        _ => return Ok(()),
    };
    let Some(first) = args.first() else {
        return Ok(());
    };
    let items = first
        .cast::<PyList>()
        .map(|l| l.iter().collect::<Vec<_>>())
        .or_else(|_| first.cast::<PyTuple>().map(|t| t.iter().collect()))
        .map_err(|_| refused(g, format!("its first argument must be a list of {what}")))?;
    for item in items {
        let mut ok = false;
        for ty in &allowed {
            ok |= item.is_instance(ty)?;
        }
        if !ok {
            return Err(refused(
                g,
                format!(
                    "its first argument must hold {what}, not {}",
                    item.get_type().name()?
                ),
            ));
        }
    }
    let _ = py;
    Ok(())
}

/// Whether pandas is imported already, so that pyarrow's conversion of Python values
/// (which tries to import it) imports nothing.
fn pandas_imported(py: Python<'_>) -> PyResult<bool> {
    py.import("sys")?.getattr("modules")?.contains("pandas")
}

/// `validate(full=True)` on anything that has it (arrays, chunked arrays, batches, tables).
fn validate_full(pa: &Bound<'_, PyModule>, obj: &Bound<'_, PyAny>) -> PyResult<()> {
    for class in ["Array", "ChunkedArray", "RecordBatch", "Table"] {
        if obj.is_instance(&pa.getattr(class)?)? {
            let kwargs = PyDict::new(obj.py());
            kwargs.set_item("full", true)?;
            obj.call_method("validate", (), Some(&kwargs))?;
            return Ok(());
        }
    }
    Ok(())
}

/// Largest length, offset or null count Arrow represents (`int64_t`).
const I64_MAX: i128 = i64::MAX as i128;

/// The parts of one array: what `_restore_array`'s data tuple and `from_buffers` name.
struct ArrayParts<'py> {
    ty: Bound<'py, PyAny>,
    length: i64,
    null_count: i64,
    offset: i64,
    buffers: Vec<Bound<'py, PyAny>>,
    children: Vec<Bound<'py, PyAny>>,
    dictionary: Option<Bound<'py, PyAny>>,
}

/// An int argument within `lo..=I64_MAX`.
fn int_arg(g: &Global, v: &Value, what: &str, lo: i64) -> PyResult<i64> {
    let n: i128 = match v {
        Value::Int(i) => i128::from(*i),
        Value::Bool(b) => i128::from(*b),
        Value::BigInt(_) => I64_MAX + 1,
        other => {
            return Err(refused(
                g,
                format!("{what} must be an int, not {}", other.type_name()),
            ));
        }
    };
    if n < i128::from(lo) || n > I64_MAX {
        let shown = match v {
            Value::BigInt(b) => b.to_string(),
            _ => n.to_string(),
        };
        return Err(refused(g, format!("{what} {shown} is out of range")));
    }
    Ok(n as i64)
}

fn seq_arg(g: &Global, v: Value, what: &str) -> PyResult<Vec<Value>> {
    match v {
        Value::List(items) | Value::Tuple(items) => Ok(items),
        Value::None => Ok(Vec::new()),
        other => Err(refused(
            g,
            format!("{what} must be a list, not {}", other.type_name()),
        )),
    }
}

impl<'py> ArrayParts<'py> {
    /// From pyarrow's pickled `ArrayData`: `(type, length, null_count, offset, buffers,
    /// children[, dictionary])`, children and dictionary being such tuples too.
    fn from_data_tuple(
        conv: &Converter<'_>,
        py: Python<'py>,
        g: &Global,
        data: Value,
    ) -> PyResult<ArrayParts<'py>> {
        let Value::Tuple(t) = data else {
            return Err(refused(g, "array data must be a tuple"));
        };
        if t.len() != 6 && t.len() != 7 {
            return Err(refused(
                g,
                format!("array data has {} items, not 6 or 7", t.len()),
            ));
        }
        let mut it = t.into_iter();
        let mut next = || it.next().unwrap_or(Value::None);
        let ty = next();
        let (length, null_count, offset) = (next(), next(), next());
        let (buffers, children, dictionary) = (next(), next(), next());
        let pa = lib(py, g)?;
        let children = seq_arg(g, children, "children")?
            .into_iter()
            .map(|c| Self::from_data_tuple(conv, py, g, c)?.build(py, &pa, g))
            .collect::<PyResult<Vec<_>>>()?;
        let dictionary = match dictionary {
            Value::None => None,
            d => Some(Self::from_data_tuple(conv, py, g, d)?.build(py, &pa, g)?),
        };
        Ok(ArrayParts {
            ty: conv.to_py(py, ty)?,
            length: int_arg(g, &length, "array length", 0)?,
            null_count: int_arg(g, &null_count, "null count", -1)?,
            offset: int_arg(g, &offset, "array offset", 0)?,
            buffers: Self::buffers(conv, py, g, buffers)?,
            children,
            dictionary,
        })
    }

    /// From `Array.from_buffers(type, length, buffers, null_count=-1, offset=0,
    /// children=None)` or `DictionaryArray.from_buffers(type, length, buffers, dictionary,
    /// null_count=-1, offset=0)`; children and the dictionary are already arrays.
    fn from_call(
        conv: &Converter<'_>,
        py: Python<'py>,
        g: &Global,
        args: Vec<Value>,
        with_dictionary: bool,
    ) -> PyResult<ArrayParts<'py>> {
        let most = 6;
        if args.len() < 3 || args.len() > most {
            return Err(refused(
                g,
                format!("takes 3 to {most} arguments, not {}", args.len()),
            ));
        }
        let mut it = args.into_iter();
        let ty = it.next().unwrap_or_default();
        let length = it.next().unwrap_or_default();
        let buffers = it.next().unwrap_or_default();
        let dictionary = if with_dictionary {
            Some(it.next().ok_or_else(|| refused(g, "needs a dictionary"))?)
        } else {
            None
        };
        let null_count = it.next().unwrap_or(Value::Int(-1));
        let offset = it.next().unwrap_or(Value::Int(0));
        let children = if with_dictionary {
            if it.next().is_some() {
                return Err(refused(g, "takes at most 6 arguments"));
            }
            Vec::new()
        } else {
            seq_arg(g, it.next().unwrap_or(Value::None), "children")?
        };
        let children = children
            .into_iter()
            .map(|c| conv.to_py(py, c))
            .collect::<PyResult<Vec<_>>>()?;
        let dictionary = dictionary.map(|d| conv.to_py(py, d)).transpose()?;
        Ok(ArrayParts {
            ty: conv.to_py(py, ty)?,
            length: int_arg(g, &length, "array length", 0)?,
            null_count: int_arg(g, &null_count, "null count", -1)?,
            offset: int_arg(g, &offset, "array offset", 0)?,
            buffers: Self::buffers(conv, py, g, buffers)?,
            children,
            dictionary,
        })
    }

    fn buffers(
        conv: &Converter<'_>,
        py: Python<'py>,
        g: &Global,
        v: Value,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let (Value::List(items) | Value::Tuple(items)) = v else {
            return Err(refused(
                g,
                format!("buffers must be a list, not {}", v.type_name()),
            ));
        };
        items.into_iter().map(|b| conv.to_py(py, b)).collect()
    }

    /// Checks the parts against the type, builds the array with pyarrow's public
    /// constructor and validates it in full.
    fn build(
        self,
        py: Python<'py>,
        pa: &Bound<'py, PyModule>,
        g: &Global,
    ) -> PyResult<Bound<'py, PyAny>> {
        if !self.ty.is_instance(&pa.getattr("DataType")?)? {
            return Err(refused(
                g,
                format!(
                    "an array type must be a pyarrow DataType, not {}",
                    self.ty.get_type().name()?
                ),
            ));
        }
        if self.null_count > self.length {
            return Err(refused(
                g,
                format!(
                    "null count {} is over the length {}",
                    self.null_count, self.length
                ),
            ));
        }
        if self.offset.checked_add(self.length).is_none() {
            return Err(refused(g, "offset + length overflows"));
        }
        let buffer_type = pa.getattr("Buffer")?;
        for b in &self.buffers {
            if !b.is_none() && !b.is_instance(&buffer_type)? {
                return Err(refused(
                    g,
                    format!(
                        "buffers must be pyarrow Buffers or None, not {}",
                        b.get_type().name()?
                    ),
                ));
            }
        }
        let array_type = pa.getattr("Array")?;
        for c in self.children.iter().chain(&self.dictionary) {
            if !c.is_instance(&array_type)? {
                return Err(refused(
                    g,
                    format!(
                        "children must be pyarrow Arrays, not {}",
                        c.get_type().name()?
                    ),
                ));
            }
        }
        let offsets = self.offsets_bounds(py)?;
        let per_row = self.child_values_per_row(py)?;
        let children = self
            .children
            .iter()
            .map(|c| c.len().map(|n| n as i64))
            .collect::<PyResult<Vec<_>>>()?;
        let out = self.construct(py, pa, g)?;
        validate_full(pa, &out)?;
        let range = offset_range(&out)?;
        if let Some((buffer, width, values)) = offsets {
            check_offsets(g, &buffer, width, values, range)?;
        }
        if let Some(per_row) = per_row {
            check_children_cover(g, &children, per_row, range)?;
        }
        Ok(out)
    }

    /// For arrays whose children are sliced by the parent's offset (structs, sparse unions:
    /// one child value per row; fixed-size lists: `list_size` per row), how many child values
    /// one row takes.
    fn child_values_per_row(&self, py: Python<'py>) -> PyResult<Option<i64>> {
        let types = py.import("pyarrow.types")?;
        let is =
            |name: &str| -> PyResult<bool> { types.call_method1(name, (&self.ty,))?.extract() };
        if is("is_fixed_size_list")? {
            return Ok(Some(self.ty.getattr("list_size")?.extract()?));
        }
        let sparse = is("is_union")? && self.ty.getattr("mode")?.extract::<String>()? == "sparse";
        Ok((is("is_struct")? || sparse).then_some(1))
    }

    /// For arrays whose values are found through an offsets buffer (lists, maps, strings,
    /// binaries): that buffer, the offset width in bytes and how many values there are (the
    /// child's length, or the data buffer's size).
    fn offsets_bounds(&self, py: Python<'py>) -> PyResult<Option<(Bound<'py, PyAny>, usize, i64)>> {
        // Loaded with pyarrow itself (`pyarrow/__init__.py` imports it).
        let types = py.import("pyarrow.types")?;
        let is =
            |name: &str| -> PyResult<bool> { types.call_method1(name, (&self.ty,))?.extract() };
        let size = |b: Option<&Bound<'py, PyAny>>| -> PyResult<i64> {
            match b {
                Some(b) if !b.is_none() => b.getattr("size")?.extract(),
                _ => Ok(0),
            }
        };
        let child_len = || -> PyResult<i64> {
            match self.children.first() {
                Some(c) => c.len().map(|n| n as i64),
                None => Ok(0),
            }
        };
        let (width, values) = if is("is_list")? || is("is_map")? {
            (4, child_len()?)
        } else if is("is_large_list")? {
            (8, child_len()?)
        } else if is("is_string")? || is("is_binary")? {
            (4, size(self.buffers.get(2))?)
        } else if is("is_large_string")? || is("is_large_binary")? {
            (8, size(self.buffers.get(2))?)
        } else {
            return Ok(None);
        };
        Ok(self
            .buffers
            .get(1)
            .filter(|b| !b.is_none())
            .map(|b| (b.clone(), width, values)))
    }

    fn construct(
        self,
        py: Python<'py>,
        pa: &Bound<'py, PyModule>,
        g: &Global,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ty = self.ty.clone();
        if ty.is_instance(&pa.getattr("BaseExtensionType")?)? {
            // The storage is built and checked like any array, then wrapped (which checks
            // that its type is the extension's storage type).
            let storage = ArrayParts {
                ty: ty.getattr("storage_type")?,
                ..self
            }
            .build(py, pa, g)?;
            return pa
                .getattr("ExtensionArray")?
                .call_method1("from_storage", (ty, storage));
        }
        let is_dictionary = ty.is_instance(&pa.getattr("DictionaryType")?)?;
        if is_dictionary {
            let Some(dictionary) = self.dictionary else {
                return Err(refused(g, "a dictionary array needs its dictionary"));
            };
            if !self.children.is_empty() {
                return Err(refused(g, "a dictionary array has no children"));
            }
            // `DictionaryArray.from_buffers` does not count the buffers, and building the
            // indices from fewer than two reads past the list (a crash before validation).
            if self.buffers.len() != 2 {
                return Err(refused(
                    g,
                    format!(
                        "a dictionary array has 2 buffers (validity, indices), not {}",
                        self.buffers.len()
                    ),
                ));
            }
            let value_type = ty.getattr("value_type")?;
            if !dictionary.getattr("type")?.eq(&value_type)? {
                return Err(refused(
                    g,
                    "the dictionary's type is not the type's value type",
                ));
            }
            return pa.getattr("DictionaryArray")?.call_method1(
                "from_buffers",
                (
                    ty,
                    self.length,
                    PyList::new(py, self.buffers)?,
                    dictionary,
                    self.null_count,
                    self.offset,
                ),
            );
        }
        if self.dictionary.is_some() {
            return Err(refused(g, "only dictionary arrays have a dictionary"));
        }
        let num_fields: usize = ty.getattr("num_fields")?.extract()?;
        if num_fields != self.children.len() {
            return Err(refused(
                g,
                format!(
                    "the type has {num_fields} children, the array {}",
                    self.children.len()
                ),
            ));
        }
        for (i, child) in self.children.iter().enumerate() {
            let expected = ty.call_method1("field", (i,))?.getattr("type")?;
            if !child.getattr("type")?.eq(&expected)? {
                return Err(refused(
                    g,
                    format!(
                        "child {i} has type {}, the type says {expected}",
                        child.getattr("type")?
                    ),
                ));
            }
        }
        // Arrow C++ asserts (aborts) when a map's entries or keys have nulls, before
        // validation.
        if ty.is_instance(&pa.getattr("MapType")?)?
            && let Some(entries) = self.children.first()
        {
            let nulls: i64 = entries.getattr("null_count")?.extract()?;
            if nulls != 0 {
                return Err(refused(g, "a map's entries cannot have nulls"));
            }
            let keys = entries.call_method1("field", (0,))?;
            let nulls: i64 = keys.getattr("null_count")?.extract()?;
            if nulls != 0 {
                return Err(refused(g, "a map's keys cannot have nulls"));
            }
        }
        pa.getattr("Array")?.call_method1(
            "from_buffers",
            (
                ty,
                self.length,
                PyList::new(py, self.buffers)?,
                self.null_count,
                self.offset,
                PyList::new(py, self.children)?,
            ),
        )
    }
}

/// `(offset, length)` of an array as built.
fn offset_range(array: &Bound<'_, PyAny>) -> PyResult<(i64, i64)> {
    Ok((array.getattr("offset")?.extract()?, array.len()? as i64))
}

/// Arrow C++ checks a list's or string's offsets only for the elements the array has: the
/// one offset of an empty array may point anywhere, and slicing the values by it (an IPC
/// write, `take`, a cast) aborts the process. Both ends of the array's offsets must be
/// within the values, in order.
fn check_offsets(
    g: &Global,
    buffer: &Bound<'_, PyAny>,
    width: usize,
    values: i64,
    (offset, length): (i64, i64),
) -> PyResult<()> {
    let read = |index: i64| -> PyResult<i64> {
        let at = usize::try_from(index)
            .ok()
            .and_then(|i| i.checked_mul(width))
            .ok_or_else(|| refused(g, "offsets index overflows"))?;
        let bytes: Vec<u8> = buffer
            .call_method1("slice", (at, width))?
            .call_method0("to_pybytes")?
            .extract()?;
        if bytes.len() != width {
            return Err(refused(g, "the offsets buffer is too short"));
        }
        Ok(if width == 4 {
            i64::from(i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
        } else {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes);
            i64::from_le_bytes(b)
        })
    };
    let first = read(offset)?;
    let last = read(offset + length)?;
    if first < 0 || first > last || last > values {
        return Err(refused(
            g,
            format!(
                "offsets {first}..{last} are outside the {values} values (array offset {offset}, length {length})"
            ),
        ));
    }
    Ok(())
}

/// Arrow C++ checks that children cover their parent only for the rows the parent has: the
/// children of an empty struct, sparse union or fixed-size list at an offset past their end
/// are sliced there by an IPC write (or `take`, a cast), which aborts the process. Every
/// child must hold the values of rows `0..offset + length`.
fn check_children_cover(
    g: &Global,
    children: &[i64],
    per_row: i64,
    (offset, length): (i64, i64),
) -> PyResult<()> {
    let needed = offset
        .checked_add(length)
        .and_then(|rows| rows.checked_mul(per_row))
        .ok_or_else(|| refused(g, "offset + length overflows"))?;
    match children.iter().position(|&n| n < needed) {
        Some(i) => Err(refused(
            g,
            format!(
                "child {i} has {} values, rows up to {} need {needed} (array offset {offset}, length {length})",
                children[i],
                offset + length
            ),
        )),
        None => Ok(()),
    }
}

//! The allow-list: which globals a pickle may name, and what each one means.
//!
//! Nothing here imports or calls anything; a global is only a name that selects one of the
//! reconstruction shapes in [`super::numpy`], [`super::pyarrow`] and [`super::builtins`].

use crate::codec::names;
use crate::dtype::ML_DTYPES;
use crate::error::DecodeErrorKind;
use crate::value::valid_dotted;

use super::options::ReadOptions;
use super::stdlib::Std;

/// What an allowed global stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Known {
    /// `numpy.core.multiarray._reconstruct` and its other spellings.
    NpReconstruct,
    /// `numpy.ndarray`: argument of `_reconstruct`, or called in the portable form.
    NpNdarray,
    /// `numpy.dtype`.
    NpDtype,
    /// `numpy.core.numeric._frombuffer`.
    NpFrombuffer,
    /// `numpy.core.multiarray.scalar`.
    NpScalar,
    /// `ml_dtypes.<name>`: a dtype spec.
    MlDtype(&'static str, usize),
    /// `builtins.bytearray`.
    ByteArray,
    /// `builtins.bytes`.
    Bytes,
    /// `builtins.set`.
    Set,
    /// `builtins.frozenset`.
    FrozenSet,
    /// `builtins.complex`.
    Complex,
    /// `builtins.object` (only as the base of `copyreg._reconstructor`).
    Object,
    /// `collections.OrderedDict` and the other standard-library types of [`Std`].
    Stdlib(Std),
    /// A builtin type or constant a pickle may name but not call ([`super::stdlib::NAMEABLE`]).
    Nameable,
    /// `_codecs.encode`.
    CodecsEncode,
    /// `copyreg._reconstructor`.
    CopyregReconstructor,
    /// `ndpickle._decompress(header, frame, writable)`: compressed in-band array data.
    Decompress,
    /// `ndpickle._decompress_target(raw_len)`: the output of a chunked compressed buffer.
    DecompressTarget,
    /// `ndpickle._decompress_into(out, offset, header, frame[, writable])`: one chunk of it.
    DecompressInto,
    /// A pyarrow reconstructor, type factory or class method, kept as an object node.
    Pyarrow,
    /// Allowed by the caller or by opaque mode: kept as an opaque node.
    Opaque,
}

const NP_MULTIARRAY: &[&str] = &[
    "numpy.core.multiarray",
    "numpy._core.multiarray",
    "numpy.core._multiarray_umath",
    "numpy._core._multiarray_umath",
    "numpy.core._internal",
    "numpy._core._internal",
];

const NP_NUMERIC: &[&str] = &["numpy.core.numeric", "numpy._core.numeric"];

/// pyarrow names kept as object nodes (module `pyarrow.lib` or `pyarrow`): pyarrow's own
/// reconstructors, ours, and the type factories their arguments name. The Python bindings
/// rebuild pyarrow objects by calling exactly these.
pub const PYARROW_NAMES: &[&str] = &[
    "_restore_array",
    "_reconstruct_record_batch",
    "_reconstruct_table",
    "py_buffer",
    "type_for_alias",
    "chunked_array",
    "schema",
    "field",
    "scalar",
    "DictionaryScalar._reconstruct",
    "KeyValueMetadata",
    "Array.from_buffers",
    "DictionaryArray.from_buffers",
    "RecordBatch.from_arrays",
    "Table.from_batches",
    "Table.from_arrays",
    "ExtensionArray.from_storage",
    // Type factories.
    "null",
    "bool_",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "time32",
    "time64",
    "timestamp",
    "date32",
    "date64",
    "duration",
    "month_day_nano_interval",
    "binary",
    "large_binary",
    "binary_view",
    "string",
    "utf8",
    "large_string",
    "large_utf8",
    "string_view",
    "decimal32",
    "decimal64",
    "decimal128",
    "decimal256",
    "list_",
    "large_list",
    "list_view",
    "large_list_view",
    "map_",
    "struct",
    "dictionary",
    "run_end_encoded",
    "union",
    "sparse_union",
    "dense_union",
    "fixed_size_binary",
    // Canonical extension types (pyarrow's own reduce forms for them).
    "uuid",
    "bool8",
    "json_",
    "fixed_shape_tensor",
    "opaque",
];

/// Whether a dotted name reaches through a dunder attribute (`__class__`, `__globals__`...).
fn has_dunder(s: &str) -> bool {
    s.split('.')
        .any(|p| p.len() > 4 && p.starts_with("__") && p.ends_with("__"))
}

/// Python 2 module names that CPython maps to their Python 3 homes.
fn normalize_module(module: &str) -> &str {
    match module {
        "__builtin__" => "builtins",
        "copy_reg" => "copyreg",
        other => other,
    }
}

/// Resolves a global named by `GLOBAL`, `STACK_GLOBAL` or `INST`.
pub(crate) fn resolve(
    module: &str,
    name: &str,
    opts: &ReadOptions,
) -> Result<Known, DecodeErrorKind> {
    let forbidden = || DecodeErrorKind::ForbiddenGlobal {
        module: module.to_string(),
        name: name.to_string(),
    };
    let home = if opts.fix_imports() {
        normalize_module(module)
    } else {
        module
    };
    if let Some(k) = builtin(home, name) {
        return Ok(k);
    }
    let allowed = opts
        .allowed_globals()
        .iter()
        .any(|g| g.module == module && g.name == name);
    if allowed {
        return Ok(Known::Opaque);
    }
    if opts.opaque_globals()
        && valid_dotted(module)
        && valid_dotted(name)
        && !has_dunder(name)
        && !(has_dunder(module) && module != "__builtin__" && module != "__main__")
    {
        return Ok(Known::Opaque);
    }
    Err(forbidden())
}

fn builtin(module: &str, name: &str) -> Option<Known> {
    let np_array_module = module == "numpy" || NP_MULTIARRAY.contains(&module);
    Some(match (module, name) {
        (m, "_reconstruct") if NP_MULTIARRAY.contains(&m) => Known::NpReconstruct,
        (m, "scalar") if NP_MULTIARRAY.contains(&m) => Known::NpScalar,
        (_, "ndarray") if np_array_module => Known::NpNdarray,
        (_, "dtype") if np_array_module => Known::NpDtype,
        (m, "_frombuffer") if NP_NUMERIC.contains(&m) => Known::NpFrombuffer,
        ("ml_dtypes", n) => {
            let &(name, size) = ML_DTYPES.iter().find(|(m, _)| *m == n)?;
            Known::MlDtype(name, size)
        }
        ("builtins", "bytearray") => Known::ByteArray,
        ("builtins", "bytes") => Known::Bytes,
        ("builtins", "set") => Known::Set,
        ("builtins", "frozenset") => Known::FrozenSet,
        ("builtins", "complex") => Known::Complex,
        ("builtins", "object") => Known::Object,
        // Python 2 names `pickle.loads(fix_imports=True)` maps (the module is mapped already).
        ("builtins", "xrange") => Known::Stdlib(Std::Range),
        ("builtins", "long" | "unicode") => Known::Nameable,
        ("builtins", n) if super::stdlib::NAMEABLE.contains(&n) && n != "range" && n != "slice" => {
            Known::Nameable
        }
        (m, n) if super::stdlib::lookup(m, n).is_some() => {
            Known::Stdlib(super::stdlib::lookup(m, n)?)
        }
        ("_codecs", "encode") => Known::CodecsEncode,
        ("copyreg", "_reconstructor") => Known::CopyregReconstructor,
        (names::MODULE, names::DECOMPRESS) => Known::Decompress,
        (names::MODULE, names::DECOMPRESS_TARGET) => Known::DecompressTarget,
        (names::MODULE, names::DECOMPRESS_INTO) => Known::DecompressInto,
        ("pyarrow" | "pyarrow.lib", n) if PYARROW_NAMES.contains(&n) => Known::Pyarrow,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_known_and_refuses_others() {
        let o = ReadOptions::default();
        assert_eq!(
            resolve("numpy.core.multiarray", "_reconstruct", &o).unwrap(),
            Known::NpReconstruct
        );
        assert_eq!(
            resolve("numpy._core.numeric", "_frombuffer", &o).unwrap(),
            Known::NpFrombuffer
        );
        assert_eq!(
            resolve("__builtin__", "bytearray", &o).unwrap(),
            Known::ByteArray
        );
        assert_eq!(
            resolve("ml_dtypes", "bfloat16", &o).unwrap(),
            Known::MlDtype("bfloat16", 2)
        );
        for (m, n) in [
            ("os", "system"),
            ("builtins", "eval"),
            ("builtins", "getattr"),
            ("numpy", "ndarray.__class__.__subclasses__"),
            ("os.path", "sys"),
            ("numpy", "load"),
            ("ml_dtypes", "finfo"),
        ] {
            let e = resolve(m, n, &o).unwrap_err();
            assert!(e.to_string().contains(&format!("{m}.{n}")), "{e}");
        }
    }

    #[test]
    fn opaque_mode_still_refuses_dunders() {
        let o = ReadOptions::builder().opaque_globals(true).build().unwrap();
        assert_eq!(resolve("mymod", "Thing", &o).unwrap(), Known::Opaque);
        assert!(resolve("numpy", "ndarray.__class__", &o).is_err());
        assert!(resolve("a b", "c", &o).is_err());
        assert!(resolve("", "c", &o).is_err());
        let o = ReadOptions::builder()
            .allow_global("mymod", "Thing")
            .build()
            .unwrap();
        assert_eq!(resolve("mymod", "Thing", &o).unwrap(), Known::Opaque);
        assert!(resolve("mymod", "Other", &o).is_err());
    }
}

//! Known attacks on pickle readers: each must be refused quickly with a clean error, within
//! the configured limits, and never execute or import anything.

mod common;

use std::time::{Duration, Instant};

use common::P;
use ndpickle::opcodes::*;
use ndpickle::{DecodeError, DecodeErrorKind, ReadOptions, Value, from_slice, from_slice_with};

fn fails_fast(data: &[u8]) -> DecodeError {
    fails_fast_with(data, &ReadOptions::default())
}

fn fails_fast_with(data: &[u8], opts: &ReadOptions) -> DecodeError {
    let t = Instant::now();
    let r = from_slice_with(data, opts);
    let took = t.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}");
    match r {
        Ok(v) => panic!("accepted: {:?}", v.type_name()),
        Err(e) => e,
    }
}

fn is_limit(e: &DecodeError, name: &str) -> bool {
    matches!(&e.kind, DecodeErrorKind::Limit { limit, .. } if limit.contains(name))
}

#[test]
fn dup_doubling_bomb_53_bytes() {
    // EMPTY_LIST, then 25 x (DUP, TUPLE2): a tuple tree of 2**25 leaves in 53 bytes.
    let mut p = P::new(4).op(EMPTY_LIST);
    for _ in 0..25 {
        p = p.op(DUP).op(TUPLE2);
    }
    let data = p.stop();
    assert!(data.len() <= 54, "{}", data.len());
    let e = fails_fast(&data);
    assert!(is_limit(&e, "copied"), "{e}");
    assert!(e.offset.is_some());
}

#[test]
fn dup_bomb_through_lists_and_appends() {
    // l = []; l2 = [l, l] via DUP + APPENDS of MARK-delimited copies, 40 levels.
    let mut p = P::new(2).op(EMPTY_LIST);
    for _ in 0..40 {
        p = p.op(DUP).op(MARK).op(DUP).op(DUP).op(LIST).op(APPEND);
        p = p.op(EMPTY_LIST).op(MARK).raw(&[]).op(POP_MARK).op(POP);
    }
    let data = p.stop();
    // Whatever the shape, it must terminate within limits.
    let _ = from_slice(&data);
    let mut p = P::new(2).op(EMPTY_LIST).put(0);
    for i in 0..60u32 {
        p = p.op(MARK).get(i).get(i).op(LIST).put(i + 1);
    }
    let e = fails_fast(&p.stop());
    assert!(is_limit(&e, "copied"), "{e}");
}

#[test]
fn self_containing_list_is_refused() {
    let data = P::new(2).op(EMPTY_LIST).op(DUP).op(APPEND).stop();
    let e = fails_fast(&data);
    assert!(e.to_string().contains("recursive"), "{e}");
}

#[test]
fn memo_bomb() {
    let mut p = P::new(2).op(NONE);
    for i in 0..1001u32 {
        p = p.put(i);
    }
    let opts = ReadOptions::builder()
        .max_memo_entries(1000)
        .build()
        .unwrap();
    let e = fails_fast_with(&p.stop(), &opts);
    assert!(is_limit(&e, "memo"), "{e}");
    // A sparse key is one entry, not a 4-billion-entry table.
    let data = P::new(2)
        .op(NONE)
        .put(u32::MAX)
        .op(POP)
        .get(u32::MAX)
        .stop();
    assert_eq!(from_slice(&data).unwrap(), Value::None);
}

#[test]
fn big_string_fetched_many_times() {
    let big = "x".repeat(1 << 20);
    let mut p = P::new(4).str(&big).put(0).op(POP).op(MARK);
    for _ in 0..1000 {
        p = p.get(0);
    }
    let e = fails_fast(&p.op(LIST).stop());
    assert!(is_limit(&e, "copied"), "{e}");
}

#[test]
fn deep_nesting_100_000() {
    let n = 100_000;
    let mut p = P::new(2);
    for _ in 0..n {
        p = p.op(EMPTY_LIST);
    }
    for _ in 0..n - 1 {
        p = p.op(APPEND);
    }
    let e = fails_fast(&p.stop());
    assert!(is_limit(&e, "depth"), "{e}");
    let mut p = P::new(2);
    for _ in 0..n {
        p = p.op(MARK);
    }
    p = p.op(EMPTY_TUPLE);
    for _ in 0..n {
        p = p.op(TUPLE);
    }
    let e = fails_fast(&p.stop());
    assert!(is_limit(&e, "depth"), "{e}");
    // A smaller limit is honoured exactly.
    let opts = ReadOptions::builder().max_depth(3).build().unwrap();
    let ok = P::new(2)
        .op(EMPTY_LIST)
        .op(EMPTY_LIST)
        .op(EMPTY_LIST)
        .op(APPEND)
        .op(APPEND)
        .stop();
    assert!(from_slice_with(&ok, &opts).is_ok());
    let deep = P::new(2)
        .op(EMPTY_LIST)
        .op(EMPTY_LIST)
        .op(EMPTY_LIST)
        .op(EMPTY_LIST)
        .op(APPEND)
        .op(APPEND)
        .op(APPEND)
        .stop();
    assert!(from_slice_with(&deep, &opts).is_err());
}

#[test]
fn huge_length_prefixes() {
    let huge = 1u64 << 63;
    for op in [BINBYTES8, BINUNICODE8, BYTEARRAY8, FRAME] {
        let mut d = vec![PROTO, 5, op];
        d.extend(huge.to_le_bytes());
        d.extend(b"abc.");
        let e = fails_fast(&d);
        assert!(matches!(e.kind, DecodeErrorKind::Wire(_)), "{op:#x}: {e}");
        assert_eq!(e.offset, Some(2));
        assert_eq!(e.opcode, Some(op));
        let mut d = vec![PROTO, 5, op];
        d.extend(u64::MAX.to_le_bytes());
        assert!(from_slice(&d).is_err());
    }
    for op in [BINBYTES, BINUNICODE, LONG4, BINSTRING] {
        let mut d = vec![PROTO, 4, op];
        d.extend(0x7fff_ffffu32.to_le_bytes());
        d.push(b'.');
        fails_fast(&d);
        let mut d = vec![PROTO, 4, op];
        d.extend(u32::MAX.to_le_bytes());
        d.push(b'.');
        fails_fast(&d);
    }
}

fn forbidden(e: &DecodeError, module: &str, name: &str) -> bool {
    matches!(&e.kind, DecodeErrorKind::ForbiddenGlobal { module: m, name: n } if m == module && n == name)
}

const EVIL: &[(&str, &str)] = &[
    ("os", "system"),
    ("posix", "system"),
    ("nt", "system"),
    ("subprocess", "Popen"),
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("__builtin__", "eval"),
    ("builtins", "getattr"),
    ("builtins", "__import__"),
    ("importlib", "import_module"),
    ("numpy", "ndarray.__class__.__subclasses__"),
    ("numpy", "load"),
    ("numpy.testing._private.utils", "runstring"),
    ("os.path", "sys"),
    ("pyarrow.lib", "_restore_array.__globals__"),
    ("ml_dtypes", "__builtins__"),
    ("copyreg", "_reconstructor.__globals__"),
    ("collections", "OrderedDict.__init__"),
];

#[test]
fn code_execution_globals_are_refused_everywhere() {
    for &(m, n) in EVIL {
        let arg = |p: P| p.str("echo pwned").op(TUPLE1);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("GLOBAL", arg(P::new(2).global(m, n)).op(REDUCE).stop()),
            (
                "STACK_GLOBAL",
                arg(P::new(4).stack_global(m, n)).op(REDUCE).stop(),
            ),
            ("INST", {
                let mut d = P::new(0).op(MARK).str("echo pwned").0;
                d.push(INST);
                d.extend(format!("{m}\n{n}\n").as_bytes());
                d.push(STOP);
                d
            }),
            (
                "OBJ",
                P::new(2).op(MARK).global(m, n).str("echo").op(OBJ).stop(),
            ),
            ("NEWOBJ", arg(P::new(2).global(m, n)).op(NEWOBJ).stop()),
            (
                "NEWOBJ_EX",
                arg(P::new(4).stack_global(m, n))
                    .op(EMPTY_DICT)
                    .op(NEWOBJ_EX)
                    .stop(),
            ),
            ("bare", P::new(4).stack_global(m, n).stop()),
            (
                "nested",
                P::new(4)
                    .op(EMPTY_DICT)
                    .str("k")
                    .stack_global(m, n)
                    .op(SETITEM)
                    .stop(),
            ),
        ];
        for (how, data) in cases {
            let e = fails_fast(&data);
            assert!(forbidden(&e, m, n), "{m}.{n} via {how}: {e}");
            assert!(e.to_string().contains(&format!("'{m}.{n}'")), "{e}");
        }
        // Opaque mode keeps unknown globals as data, but never dunder attribute chains.
        let opaque = ReadOptions::builder().opaque_globals(true).build().unwrap();
        let data = arg(P::new(4).stack_global(m, n)).op(REDUCE).stop();
        match from_slice_with(&data, &opaque) {
            Ok(Value::Object(o)) => {
                assert!(
                    !n.contains("__") && !m.contains("__") || m == "__builtin__",
                    "{m}.{n} kept"
                );
                assert_eq!(o.callable.module, m);
            }
            Ok(other) => panic!("{m}.{n}: {other:?}"),
            Err(e) => assert!(n.contains("__") || m.contains("__"), "{m}.{n}: {e}"),
        }
    }
}

#[test]
fn non_global_callables_are_refused() {
    // REDUCE on a str, a list and a call result.
    for callable in [P::new(4).str("os.system"), P::new(4).op(EMPTY_LIST)] {
        let data = callable.str("x").op(TUPLE1).op(REDUCE).stop();
        let e = fails_fast(&data);
        assert!(matches!(e.kind, DecodeErrorKind::Type { .. }), "{e}");
    }
    let data = P::new(4)
        .stack_global("pyarrow.lib", "type_for_alias")
        .str("int64")
        .op(TUPLE1)
        .op(REDUCE)
        .str("x")
        .op(TUPLE1)
        .op(REDUCE)
        .stop();
    fails_fast(&data);
    // REDUCE with a non-tuple argument.
    let data = P::new(4)
        .stack_global("builtins", "set")
        .op(EMPTY_LIST)
        .op(REDUCE)
        .stop();
    assert!(matches!(
        fails_fast(&data).kind,
        DecodeErrorKind::Type { .. }
    ));
}

#[test]
fn extension_codes_and_persistent_ids() {
    for (op, arg) in [(EXT1, &[1u8][..]), (EXT2, &[1, 0]), (EXT4, &[1, 0, 0, 0])] {
        let data = P::new(2).op(op).raw(arg).stop();
        let e = fails_fast(&data);
        assert!(matches!(e.kind, DecodeErrorKind::Refused(_)), "{e}");
        assert!(e.to_string().contains("EXT"), "{e}");
    }
    let pers = P::new(0).raw(b"Pmy-id\n").stop();
    let binpers = P::new(2).str("key").op(BINPERSID).stop();
    for d in [&pers, &binpers] {
        let e = fails_fast(d);
        assert!(e.to_string().contains("persistent"), "{e}");
    }
    let opts = ReadOptions::builder()
        .persistent_id(|pid| match pid.as_str() {
            Some("key") | Some("my-id") => Ok(Value::Int(42)),
            _ => Err("unknown id".into()),
        })
        .build()
        .unwrap();
    assert_eq!(from_slice_with(&pers, &opts).unwrap(), Value::Int(42));
    assert_eq!(from_slice_with(&binpers, &opts).unwrap(), Value::Int(42));
    let other = P::new(2).str("nope").op(BINPERSID).stop();
    assert!(
        from_slice_with(&other, &opts)
            .unwrap_err()
            .to_string()
            .contains("unknown id")
    );
    // A persistent id built from a doubling bomb is charged too.
    let mut p = P::new(4).op(EMPTY_LIST);
    for _ in 0..40 {
        p = p.op(DUP).op(TUPLE2);
    }
    let e = fails_fast_with(&p.op(BINPERSID).stop(), &opts);
    assert!(is_limit(&e, "copied"), "{e}");
}

#[test]
fn allocation_limit_is_enforced() {
    let opts = ReadOptions::builder()
        .max_alloc_bytes(1 << 16)
        .build()
        .unwrap();
    let data = P::new(4).bytes(&vec![0u8; 1 << 17]).stop();
    let e = fails_fast_with(&data, &opts);
    assert!(is_limit(&e, "allocation"), "{e}");
    let mut p = P::new(4).op(MARK);
    for _ in 0..10_000 {
        p = p.op(NONE);
    }
    let e = fails_fast_with(&p.op(LIST).stop(), &opts);
    assert!(is_limit(&e, "allocation"), "{e}");
    let mut r = std::io::repeat(b'(').take_limit(1 << 17);
    let e = ndpickle::from_reader_with(&mut r, &opts).unwrap_err();
    assert!(is_limit(&e, "stream size"), "{e}");
}

trait TakeLimit: Sized {
    fn take_limit(self, n: u64) -> std::io::Take<Self>;
}
impl<R: std::io::Read> TakeLimit for R {
    fn take_limit(self, n: u64) -> std::io::Take<Self> {
        std::io::Read::take(self, n)
    }
}

#[test]
fn object_arrays_are_refused_or_opaque() {
    // _reconstruct(ndarray, (0,), b'b') + BUILD (1, (2,), dtype('O8'), False, [1, 2])
    let data = P::new(4)
        .stack_global("numpy.core.multiarray", "_reconstruct")
        .stack_global("numpy", "ndarray")
        .int(0)
        .op(TUPLE1)
        .bytes(b"b")
        .op(TUPLE3)
        .op(REDUCE)
        .op(MARK)
        .int(1)
        .int(2)
        .op(TUPLE1)
        .dtype("O8")
        .op(NEWFALSE)
        .op(MARK)
        .int(1)
        .int(2)
        .op(LIST)
        .op(TUPLE)
        .op(BUILD)
        .stop();
    let e = fails_fast(&data);
    assert!(
        matches!(e.kind, DecodeErrorKind::UnsupportedDtype(_)),
        "{e}"
    );
    let opaque = ReadOptions::builder().opaque_globals(true).build().unwrap();
    match from_slice_with(&data, &opaque).unwrap() {
        Value::Object(o) => {
            assert_eq!(o.callable.name, "_reconstruct");
            assert!(o.state.is_some());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn array_bounds_are_checked() {
    // numpy.ndarray((4,), '<f8', bytearray(16 bytes), 0, None, 'C'): needs 32 bytes.
    let mk = |shape: &[i64], offset: i64, strides: Option<&[i64]>| {
        let mut p = P::new(5)
            .stack_global("numpy", "ndarray")
            .op(MARK)
            .shape(shape)
            .dtype("<f8")
            .bytearray(&[0u8; 16])
            .int(offset);
        p = match strides {
            None => p.op(NONE),
            Some(s) => p.shape(s),
        };
        p.str("C").op(TUPLE).op(REDUCE).stop()
    };
    assert!(from_slice(&mk(&[2], 0, None)).is_ok());
    for bad in [
        mk(&[4], 0, None),
        mk(&[2], 8, None),
        mk(&[2], 0, Some(&[16])),
        mk(&[2], 0, Some(&[-8])),
        mk(&[3], 8, Some(&[-8])),
        mk(&[1 << 40, 1 << 40], 0, None),
        mk(&[2], 0, Some(&[8, 8])),
    ] {
        let e = fails_fast(&bad);
        assert!(
            matches!(
                e.kind,
                DecodeErrorKind::BadArray(_) | DecodeErrorKind::Wire(_)
            ),
            "{e}"
        );
    }
    // Negative and zero strides inside the buffer are fine.
    let v = from_slice(&mk(&[2], 8, Some(&[-8]))).unwrap();
    assert_eq!(v.as_array().unwrap().strides(), &[-8]);
    let v = from_slice(&mk(&[5], 0, Some(&[0]))).unwrap();
    assert_eq!(v.as_array().unwrap().shape(), &[5]);
}

/// `numpy.ndarray(shape, dtype(spec), bytearray(buffer), 0, None, 'C')`.
fn ndarray_pickle(shape: &[i64], spec: &str, buffer: &[u8]) -> Vec<u8> {
    P::new(5)
        .stack_global("numpy", "ndarray")
        .op(MARK)
        .shape(shape)
        .dtype(spec)
        .bytearray(buffer)
        .int(0)
        .op(NONE)
        .str("C")
        .op(TUPLE)
        .op(REDUCE)
        .stop()
}

#[test]
fn numpy_dimension_and_size_limits() {
    // 64 dimensions load, 65 do not (numpy's NPY_MAXDIMS).
    assert!(from_slice(&ndarray_pickle(&[1; 64], "<f8", &[0; 8])).is_ok());
    let e = fails_fast(&ndarray_pickle(&[1; 65], "<f8", &[0; 8]));
    assert!(matches!(e.kind, DecodeErrorKind::BadArray(_)), "{e}");
    assert!(e.to_string().contains("65 dimensions"), "{e}");
    // Zero-sized elements: a huge element count costs nothing, but it must fit numpy's intp.
    let v = from_slice(&ndarray_pickle(&[1 << 40], "|V0", &[])).unwrap();
    assert_eq!(v.as_array().unwrap().shape(), &[1 << 40]);
    let e = fails_fast(&ndarray_pickle(&[1 << 62, 2], "|V0", &[]));
    assert!(e.to_string().contains("more than numpy can index"), "{e}");
}

#[test]
fn dtypes_numpy_refuses_are_refused() {
    let dtype = |spec: &str| from_slice(&P::new(5).dtype(spec).stop());
    assert!(dtype("|S2147483647").is_ok());
    for spec in [
        "|S4294967296",
        "|V2147483648",
        "<U600000000",
        "<M8[4294967295s]",
    ] {
        let e = dtype(spec).expect_err(spec);
        assert!(e.to_string().contains("numpy's limit"), "{spec}: {e}");
    }
}

/// `numpy.dtype(<list of (name, format[, shape]) tuples>, False, True)`; `fields` is written
/// by the caller between MARK and LIST.
fn struct_dtype(fields: impl FnOnce(P) -> P) -> Vec<u8> {
    let p = P::new(5).stack_global("numpy", "dtype").op(MARK);
    fields(p)
        .op(LIST)
        .op(NEWFALSE)
        .op(NEWTRUE)
        .op(TUPLE3)
        .op(REDUCE)
        .stop()
}

#[test]
fn struct_dtype_limits() {
    // A title used twice, and a title equal to a field name.
    for (t1, t2) in [("t", "t"), ("b", "t")] {
        let data = struct_dtype(|p| {
            p.op(MARK)
                .op(MARK)
                .str(t1)
                .str("a")
                .op(TUPLE)
                .str("<i4")
                .op(TUPLE)
                .op(MARK)
                .op(MARK)
                .str(t2)
                .str("b")
                .op(TUPLE)
                .str("<i4")
                .op(TUPLE)
        });
        let e = from_slice(&data).expect_err("duplicate title");
        assert!(e.to_string().contains("already used"), "{e}");
    }
    // Sub-arrays nested 65 dimensions deep (numpy allows 64).
    let deep = |n: usize| {
        // [('f', '<i1', (1,)*n)]: one sub-array of n dimensions.
        struct_dtype(|p| p.op(MARK).str("f").str("<i1").shape(&vec![1; n]).op(TUPLE))
    };
    assert!(from_slice(&deep(64)).is_ok());
    let e = from_slice(&deep(65)).expect_err("65 sub-array dimensions");
    assert!(e.to_string().contains("numpy allows 64"), "{e}");
    // A struct whose itemsize or field offset is over C int.
    let dict = |key: &str, n: i64| {
        let p = P::new(5)
            .stack_global("numpy", "dtype")
            .op(MARK)
            .op(EMPTY_DICT)
            .op(MARK);
        let mut p = p
            .str("names")
            .op(MARK)
            .str("a")
            .op(LIST)
            .str("formats")
            .op(MARK)
            .str("<i4")
            .op(LIST);
        p = if key == "offsets" {
            p.str("offsets").op(MARK).int(n).op(LIST)
        } else {
            p.str("itemsize").int(n)
        };
        p.op(SETITEMS)
            .op(NEWFALSE)
            .op(NEWTRUE)
            .op(TUPLE)
            .op(REDUCE)
            .stop()
    };
    assert!(from_slice(&dict("itemsize", 8)).is_ok());
    for key in ["itemsize", "offsets"] {
        let e = from_slice(&dict(key, 1 << 31)).expect_err(key);
        assert!(e.to_string().contains("numpy's limit"), "{key}: {e}");
    }
}

#[test]
fn strict_refuses_trailing_bytes() {
    let mut data = P::new(5).int(1).stop();
    data.extend_from_slice(&P::new(5).int(2).stop());
    assert_eq!(from_slice(&data).unwrap(), Value::Int(1));
    let strict = ReadOptions::builder().strict(true).build().unwrap();
    let e = from_slice_with(&data, &strict).unwrap_err();
    assert!(
        matches!(e.kind, DecodeErrorKind::TrailingData(n) if n as usize == data.len() / 2),
        "{e}"
    );
    assert_eq!(e.offset, Some((data.len() / 2) as u64));
    let single = P::new(5).int(1).stop();
    assert_eq!(from_slice_with(&single, &strict).unwrap(), Value::Int(1));
}

#[test]
fn unicode_code_points_beyond_u10ffff_are_refused_in_bounded_time() {
    use bytes::Bytes;
    use ndpickle::{ByteOrder, DType, Field, NdArray};
    let u1 = |order| DType::Unicode { chars: 1, order };
    let words = |w: &[u32]| Bytes::from(w.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>());
    let new = |dtype: DType, shape: Vec<usize>, strides: Vec<isize>, data: Bytes| {
        NdArray::new(dtype, shape, strides, 0, data, true)
    };
    // Surrogates and U+10FFFF are str; U+110000 is not.
    let ok = words(&[0x41, 0xD800, 0x10_FFFF]);
    assert!(new(u1(ByteOrder::Little), vec![3], vec![4], ok.clone()).is_ok());
    let bad = words(&[0x41, 0x11_0000, 0x42]);
    let e = new(u1(ByteOrder::Little), vec![3], vec![4], bad.clone()).unwrap_err();
    assert!(e.to_string().contains("0x110000"), "{e}");
    // Big-endian: the same bytes are other code points.
    assert!(new(u1(ByteOrder::Big), vec![3], vec![4], ok).is_err());
    // A broadcast of a huge shape is checked once per distinct element.
    assert!(
        new(
            u1(ByteOrder::Little),
            vec![1 << 40, 3],
            vec![0, 4],
            bad.clone()
        )
        .is_err()
    );
    // Odd strides: element by element; overlapping elements beyond the span are refused.
    let odd = Bytes::from(vec![0u8; 4096]);
    assert!(new(u1(ByteOrder::Little), vec![10], vec![5], odd.clone()).is_ok());
    let e = new(u1(ByteOrder::Little), vec![1000, 1000], vec![1, 1], odd).unwrap_err();
    assert!(e.to_string().contains("overlapping"), "{e}");
    // A view of a struct's U field: the gaps hold the other field (here 0xffffffff), which
    // is not part of any element.
    let gaps = words(&[0xFFFF_FFFF, 0x78, 0xFFFF_FFFF, 0x79]);
    assert!(new(u1(ByteOrder::Little), vec![2], vec![8], gaps.slice(4..)).is_ok());
    // A field of a struct.
    let rec = DType::Struct {
        fields: vec![
            Field {
                name: "n".into(),
                dtype: DType::Bytes(4),
                offset: 0,
                title: None,
            },
            Field {
                name: "s".into(),
                dtype: u1(ByteOrder::Little),
                offset: 4,
                title: None,
            },
        ],
        itemsize: 8,
        aligned: false,
    };
    let fine = words(&[0xFFFF_FFFF, 0x263A]);
    assert!(new(rec.clone(), vec![1], vec![8], fine).is_ok());
    let e = new(rec, vec![1], vec![8], words(&[0, 0xFFFF_FFFF])).unwrap_err();
    assert!(e.to_string().contains("0xffffffff"), "{e}");
}

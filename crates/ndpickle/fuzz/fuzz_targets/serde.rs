//! Fuzzes serde's deserializer over the reader's value graph (`ndpickle::serde::from_slice`
//! and `from_payload_with`): any input must give a value or a clean error, never a panic,
//! abort, hang or unbounded allocation; and wherever the tree path (`from_value` of the
//! `Value` the reader builds) reads a value, the walk must read the same one. The input is
//! a pickle and out-of-band buffers in the format of `tests/common/fuzz_input.rs`.

#![no_main]

#[path = "../../tests/common/fuzz_input.rs"]
mod fuzz_input;

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use ndpickle::ReadOptions;
use serde::de::{DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// Whatever the pickle holds, read through `deserialize_any`.
#[derive(Debug, PartialEq)]
enum Any {
    Unit,
    Bool(bool),
    Int(i128),
    Float(u64),
    Str(String),
    Bytes(Vec<u8>),
    Seq(Vec<Any>),
    Map(Vec<(Any, Any)>),
    Some(Box<Any>),
}

impl<'de> Deserialize<'de> for Any {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Any, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Any;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("anything")
            }
            fn visit_unit<E>(self) -> Result<Any, E> {
                Ok(Any::Unit)
            }
            fn visit_none<E>(self) -> Result<Any, E> {
                Ok(Any::Unit)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Any, D::Error> {
                Ok(Any::Some(Box::new(Any::deserialize(d)?)))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Any, E> {
                Ok(Any::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Any, E> {
                Ok(Any::Int(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Any, E> {
                Ok(Any::Int(v.into()))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Any, E> {
                Ok(Any::Int(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Any, E> {
                Ok(Any::Float(v.to_bits()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Any, E> {
                Ok(Any::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Any, E> {
                Ok(Any::Str(v))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Any, E> {
                Ok(Any::Bytes(v.to_vec()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Any, A::Error> {
                let mut out = Vec::new();
                while let Some(x) = a.next_element()? {
                    out.push(x);
                }
                Ok(Any::Seq(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Any, A::Error> {
                let mut out = Vec::new();
                while let Some(kv) = a.next_entry()? {
                    out.push(kv);
                }
                Ok(Any::Map(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// An externally tagged enum.
#[derive(Debug, PartialEq, Deserialize)]
enum Kind {
    Plain,
    Scaled { factor: f64 },
    Pair(i32, String),
    Wrapped(Option<u8>),
}

/// A record with most of serde's shapes.
#[derive(Debug, PartialEq, Deserialize)]
struct Record {
    id: u64,
    name: String,
    #[serde(default)]
    tags: Vec<String>,
    counts: Option<BTreeMap<String, i64>>,
    kind: Kind,
    #[serde(with = "ndpickle::serde::array", default)]
    data: ndarray::ArrayD<f32>,
}

fn options() -> ReadOptions {
    ReadOptions::builder()
        .max_alloc_bytes(fuzz_input::MAX_ALLOC)
        .max_copied_bytes(fuzz_input::MAX_COPIED)
        .max_decompressed_bytes(fuzz_input::MAX_DECOMPRESSED)
        .build()
        .unwrap()
}

/// The walk and the tree path on one type.
fn compare<T: DeserializeOwned + std::fmt::Debug>(pickle: &[u8], buffers: &[&[u8]]) {
    let opts = options();
    let owned = || buffers.iter().map(|b| b.to_vec()).collect::<Vec<_>>();
    let walked = ndpickle::serde::from_payload_with::<T, _>(pickle, owned(), &opts);
    let tree = ndpickle::from_payload_with(pickle, owned(), &opts)
        .and_then(|v| ndpickle::serde::from_value::<T>(&v));
    if let Ok(t) = tree {
        match walked {
            // Compared as printed: a NaN read by both is the same value.
            Ok(w) => assert_eq!(
                format!("{w:?}"),
                format!("{t:?}"),
                "the walk and the tree read different values"
            ),
            Err(e) => panic!("the tree reads {t:?}, the walk refuses: {e}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let parts = fuzz_input::split(data);
    let (pickle, buffers) = (parts[0], &parts[1..]);
    compare::<Any>(pickle, buffers);
    compare::<Vec<Record>>(pickle, buffers);
    compare::<Record>(pickle, buffers);
    compare::<(Kind, Option<String>, BTreeMap<i64, Vec<u8>>)>(pickle, buffers);
});

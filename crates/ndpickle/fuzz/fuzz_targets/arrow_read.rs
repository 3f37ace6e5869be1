//! Fuzzes the Arrow reader: a pickle and out-of-band buffers (the format of
//! `tests/common/fuzz_input.rs`) read by the core reader, then turned into arrow-rs objects.
//! Every array returned must pass arrow-rs's full validation (`ArrayData::validate_full`),
//! and reading every value of it must not panic.

#![no_main]

#[path = "../../tests/common/fuzz_input.rs"]
mod fuzz_input;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, downcast_primitive_array};
use arrow_schema::DataType;
use libfuzzer_sys::fuzz_target;
use ndpickle::arrow::{ArrowValue, from_value};

/// Validates `a` in full and reads every value (bounded, for huge null or run-end arrays).
fn check_array(a: &ArrayRef) {
    a.to_data().validate_full().unwrap_or_else(|e| {
        panic!(
            "the Arrow reader returned an invalid {}: {e}",
            a.data_type()
        )
    });
    let _ = (a.null_count(), a.logical_nulls(), a.get_array_memory_size());
    read_values(a.as_ref());
    if a.len() > 1 {
        check_slice(&a.slice(1, a.len() - 1));
    }
}

/// Reads every value of `a` (and of its children) through arrow-rs's typed accessors.
fn read_values(a: &dyn Array) {
    if a.len() > 1 << 20 {
        return;
    }
    for i in 0..a.len() {
        let _ = a.is_null(i);
    }
    downcast_primitive_array!(
        a => { let _ = a.iter().flatten().count(); },
        DataType::Boolean => { let _ = a.as_boolean().iter().flatten().count(); }
        DataType::Utf8 => { let _ = a.as_string::<i32>().iter().flatten().map(str::len).sum::<usize>(); }
        DataType::LargeUtf8 => { let _ = a.as_string::<i64>().iter().flatten().map(str::len).sum::<usize>(); }
        DataType::Utf8View => { let _ = a.as_string_view().iter().flatten().map(str::len).sum::<usize>(); }
        DataType::Binary => { let _ = a.as_binary::<i32>().iter().flatten().map(<[u8]>::len).sum::<usize>(); }
        DataType::LargeBinary => { let _ = a.as_binary::<i64>().iter().flatten().map(<[u8]>::len).sum::<usize>(); }
        DataType::BinaryView => { let _ = a.as_binary_view().iter().flatten().map(<[u8]>::len).sum::<usize>(); }
        DataType::FixedSizeBinary(_) => { let _ = a.as_fixed_size_binary().iter().flatten().count(); }
        DataType::List(_) => { let l = a.as_list::<i32>(); l.iter().flatten().for_each(|v| read_values(&v)); }
        DataType::LargeList(_) => { let l = a.as_list::<i64>(); l.iter().flatten().for_each(|v| read_values(&v)); }
        DataType::ListView(_) => { let l = a.as_list_view::<i32>(); l.iter().flatten().for_each(|v| read_values(&v)); }
        DataType::LargeListView(_) => { let l = a.as_list_view::<i64>(); l.iter().flatten().for_each(|v| read_values(&v)); }
        DataType::FixedSizeList(..) => { let l = a.as_fixed_size_list(); l.iter().flatten().for_each(|v| read_values(&v)); }
        DataType::Struct(_) => { a.as_struct().columns().iter().for_each(|c| read_values(c.as_ref())); }
        DataType::Map(..) => { let m = a.as_map(); read_values(m.keys().as_ref()); read_values(m.values().as_ref()); for i in 0..m.len() { read_values(&m.value(i)); } }
        DataType::Union(..) => { let u = a.as_union(); for i in 0..u.len() { read_values(&u.value(i)); } }
        DataType::Dictionary(..) => { let d = a.as_any_dictionary(); read_values(d.keys()); read_values(d.values().as_ref()); let _ = d.normalized_keys(); }
        DataType::RunEndEncoded(..) => { a.to_data().child_data().iter().for_each(|c| read_values(&arrow_array::make_array(c.clone()))); }
        _ => {}
    );
}

fn check_slice(a: &ArrayRef) {
    a.to_data()
        .validate_full()
        .expect("a slice of a valid array is valid");
}

fuzz_target!(|data: &[u8]| {
    let parts = fuzz_input::split(data);
    let buffers: Vec<_> = parts[1..]
        .iter()
        .map(|p| fuzz_input::in_buffer(p))
        .collect();
    let Ok(v) = ndpickle::from_payload_with(parts[0], buffers, &fuzz_input::options(false)) else {
        return;
    };
    match from_value(&v) {
        Ok(ArrowValue::Array(a)) => check_array(&a),
        Ok(ArrowValue::ChunkedArray(c)) => c.chunks().iter().for_each(check_array),
        Ok(ArrowValue::RecordBatch(b)) => b.columns().iter().for_each(check_array),
        Ok(ArrowValue::Table(t)) => t
            .batches()
            .iter()
            .for_each(|b| b.columns().iter().for_each(check_array)),
        Ok(_) | Err(_) => {}
    }
});

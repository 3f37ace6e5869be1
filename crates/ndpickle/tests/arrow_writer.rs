//! Arrow writer: zero copies (buffer addresses), what sliced arrays ship, errors, alignment.
//! Loading by pyarrow is tested in `tests/test_writer_arrow.py`.
#![cfg(feature = "arrow")]

use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    Array, ArrayRef, BooleanArray, DictionaryArray, Int64Array, IntervalYearMonthArray, ListArray,
    RecordBatch, StringArray,
};
use ndpickle::arrow::{AsNumpy, ChunkedArray, Table};
use ndpickle::{EncodeError, PayloadBuffer, WriteOptions};

fn ints(n: usize) -> Int64Array {
    (0..n as i64)
        .map(|i| (i % 7 != 3).then_some(i * 3))
        .collect()
}

fn ptr(b: &PayloadBuffer<'_>) -> usize {
    b.as_slice().as_ptr() as usize
}

#[test]
fn buffers_are_the_arrays_memory() {
    let a = ints(1000);
    let p = ndpickle::to_payload(&a).unwrap();
    assert_eq!(p.buffers.len(), 2);
    assert!(p.buffers.iter().all(|b| b.is_borrowed()));
    assert_eq!(
        ptr(&p.buffers[0]),
        a.nulls().unwrap().validity().as_ptr() as usize
    );
    assert_eq!(ptr(&p.buffers[1]), a.values().inner().as_ptr() as usize);
    assert_eq!(p.buffers[1].len(), 8000);
    assert_eq!(p.buffers[0].len(), 125);
}

#[test]
fn byte_aligned_slice_ships_its_window_only() {
    let a = ints(1000);
    let s = a.slice(16, 100);
    let p = ndpickle::to_payload(&s).unwrap();
    assert!(p.buffers.iter().all(|b| b.is_borrowed()));
    let validity = a.nulls().unwrap().validity().as_ptr() as usize;
    assert_eq!(ptr(&p.buffers[0]), validity + 2);
    assert_eq!(p.buffers[0].len(), 13);
    assert_eq!(
        ptr(&p.buffers[1]),
        a.values().inner().as_ptr() as usize + 16 * 8
    );
    assert_eq!(p.buffers[1].len(), 800);
}

#[test]
fn odd_bit_offset_realigns_the_bitmap_only() {
    // The window starts at element 0 of the sliced arrow-rs array: the values cannot be
    // widened, so the bitmap alone is copied (realigned) and the values stay borrowed.
    let a = ints(1000);
    let s = a.slice(3, 100);
    let p = ndpickle::to_payload(&s).unwrap();
    assert!(!p.buffers[0].is_borrowed());
    assert_eq!(p.buffers[0].len(), 13);
    assert!(p.buffers[1].is_borrowed());
    assert_eq!(
        ptr(&p.buffers[1]),
        a.values().inner().as_ptr() as usize + 3 * 8
    );
    // A boolean array is all bitmaps: widened to the byte, offset passed, zero copies.
    let b: BooleanArray = (0..1000)
        .map(|i| (i % 5 != 0).then_some(i % 3 == 0))
        .collect();
    let bs = b.slice(3, 100);
    let p = ndpickle::to_payload(&bs).unwrap();
    assert!(p.buffers.iter().all(|b| b.is_borrowed()));
    assert_eq!(ptr(&p.buffers[1]), b.values().values().as_ptr() as usize);
}

#[test]
fn sliced_strings_ship_the_values_window() {
    let a: StringArray = (0..10_000).map(|i| Some(format!("value-{i}"))).collect();
    let s = a.slice(5000, 10);
    let p = ndpickle::to_payload(&s).unwrap();
    // No nulls: no validity buffer. Offsets rebased (a copy of 11 offsets), values borrowed.
    assert_eq!(p.buffers.len(), 2);
    assert!(!p.buffers[0].is_borrowed());
    assert_eq!(p.buffers[0].len(), 44);
    let o0 = s.offsets()[0] as usize;
    assert!(p.buffers[1].is_borrowed());
    assert_eq!(ptr(&p.buffers[1]), a.values().as_ptr() as usize + o0);
    assert_eq!(p.buffers[1].len(), s.offsets()[10] as usize - o0);
    // The child of a sliced list is a window too.
    let l = ListArray::from_iter_primitive::<Int32Type, _, _>(
        (0..10_000).map(|i| Some(vec![Some(i); 3])),
    );
    let ls = l.slice(9000, 5);
    let p = ndpickle::to_payload(&ls).unwrap();
    let child_values = p.buffers.last().unwrap();
    assert_eq!(child_values.len(), 15 * 4);
    assert!(p.total_len() < 1000);
}

#[test]
fn shared_dictionary_is_written_once() {
    let d: DictionaryArray<Int32Type> = (0..100).map(|i| ["a", "b", "c"][i % 3]).collect();
    let d: ArrayRef = Arc::new(d);
    let c = ChunkedArray::from_chunks(vec![d.slice(0, 50), d.slice(50, 50)]).unwrap();
    let p = ndpickle::to_payload(&c).unwrap();
    // Two chunks' keys, one dictionary (offsets + values).
    assert_eq!(p.buffers.len(), 4);
}

#[test]
fn tables_share_their_schema() {
    let a: ArrayRef = Arc::new(ints(10));
    let b = RecordBatch::try_from_iter([("x", a)]).unwrap();
    let t = Table::try_new(b.schema(), vec![b.clone(), b.clone(), b]).unwrap();
    let v = ndpickle::to_vec(&t).unwrap();
    let count = v.windows(6).filter(|w| w == b"schema").count();
    assert_eq!(count, 1, "pyarrow.schema written once");
    assert!(
        Table::try_new(
            Arc::new(arrow_schema::Schema::empty()),
            t.batches().to_vec()
        )
        .is_err()
    );
}

#[test]
fn errors_are_clear() {
    let a = ints(10);
    let p3 = WriteOptions::builder().protocol(3).build().unwrap();
    let e = ndpickle::to_vec_with(&a, &p3).unwrap_err();
    assert!(
        matches!(
            e,
            EncodeError::NeedsProtocol {
                min: 4,
                protocol: 3,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("pyarrow arrays"), "{e}");
    let ym = IntervalYearMonthArray::from(vec![1, 2]);
    let e = ndpickle::to_vec(&ym).unwrap_err();
    assert!(matches!(e, EncodeError::UnsupportedDtype(_)), "{e}");
    let a: ArrayRef = Arc::new(a);
    let e = ndpickle::to_vec(&AsNumpy(a)).unwrap_err();
    assert!(e.to_string().contains("missing values"), "{e}");
    let s: ArrayRef = Arc::new(StringArray::from(vec!["a"]));
    assert!(ndpickle::to_vec(&AsNumpy(s)).is_err());
}

#[test]
fn in_band_payloads_are_aligned_in_files() {
    let a: Int64Array = (0..1000).map(|i| i * 0x0101_0101).collect();
    let opts = WriteOptions::builder().align(Some(64)).build().unwrap();
    let v = ndpickle::to_vec_with(&a, &opts).unwrap();
    let values: &[u8] = bytemuck::cast_slice(a.values());
    let at = v.windows(values.len()).position(|w| w == values).unwrap();
    assert_eq!(at % 64, 0);
}

#[test]
fn numpy_form_is_zero_copy() {
    let a: ArrayRef = Arc::new(Int64Array::from_iter_values(0..100));
    let w = AsNumpy(a.clone());
    let p = ndpickle::to_payload(&w).unwrap();
    assert_eq!(p.buffers.len(), 1);
    assert!(p.buffers[0].is_borrowed());
    assert_eq!(p.buffers[0].len(), 800);
}

//! `to_file` replaces its target atomically: a write that fails part-way leaves the old file
//! intact and no temporary file behind.

use std::fs;
use std::path::Path;

use ndarray::Array1;
use ndpickle::write::Encoder;
use ndpickle::{EncodeError, ToPickle, WriteOptions, to_file, to_file_with};

/// A value whose pickling fails (after the arrays before it were written).
struct Refuses;

impl ToPickle for Refuses {
    fn to_pickle<'a>(&'a self, _: &mut Encoder<'a, '_>) -> Result<(), EncodeError> {
        Err(EncodeError::Layout("refused on purpose".into()))
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_failing_write_keeps_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.pkl");
    let old = Array1::from_shape_fn(1000, |i| i as f64);
    to_file(&path, &old).unwrap();
    let before = fs::read(&path).unwrap();
    // 8 MiB of arrays reach the temporary file before the failure.
    let big = Array1::from_shape_fn(1 << 20, |i| i as f64);
    let value = (&big, &big.view(), Refuses);
    let err = to_file(&path, &value).unwrap_err();
    assert!(err.to_string().contains("refused on purpose"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(names(dir.path()), ["data.pkl"]);
}

#[test]
fn a_successful_write_replaces_the_file_with_and_without_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.pkl");
    fs::write(&path, b"not a pickle").unwrap();
    for fsync in [true, false] {
        let a = Array1::from_shape_fn(100, |i| i as i32 + i32::from(fsync));
        let opts = WriteOptions::builder().fsync(fsync).build().unwrap();
        to_file_with(&path, &a, &opts).unwrap();
        let value = ndpickle::from_slice(&fs::read(&path).unwrap()).unwrap();
        let back = ndarray::ArrayD::<i32>::try_from(value.as_array().unwrap()).unwrap();
        assert_eq!(back, a.into_dyn());
        assert_eq!(names(dir.path()), ["data.pkl"]);
    }
}

#[test]
fn a_missing_directory_is_an_io_error_naming_the_path() {
    let err = to_file_with(
        "/nonexistent-ndpickle-dir/x.pkl",
        &1i64,
        &WriteOptions::default(),
    )
    .unwrap_err();
    let EncodeError::Io(io) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert!(
        err.to_string().contains("/nonexistent-ndpickle-dir/x.pkl"),
        "{err}"
    );
}

//! An extension module whose `Field` objects hold Rust-owned `ndarray` arrays and pickle
//! them with [`ndpickle_py::reduce_array`]: at protocol 5 the pickler's `buffer_callback`
//! receives a `pickle.PickleBuffer` over the Rust allocation itself; `pickle.loads` with
//! only numpy installed rebuilds a `numpy.ndarray`. Below protocol 5 the bytes go in-band.
//!
//! Build: `cargo build -p ndpickle-py --example zero_copy_ext` (with
//! `PYO3_BUILD_EXTENSION_MODULE=1`), then import the library as `zero_copy_ext`.

use std::sync::Arc;

use ndarray::{ArrayD, Axis, IxDyn};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// A 2-d float64 field owned by Rust.
#[pyclass(module = "zero_copy_ext", frozen)]
struct Field {
    data: Arc<ArrayD<f64>>,
}

#[pymethods]
impl Field {
    /// A `rows` x `cols` field holding `0, 1, 2, ...` in row-major order; `layout` picks
    /// how the Rust array is laid out: `"c"`, `"f"` (column-major) or `"reversed"` (rows
    /// in reverse order: negative strides over one allocation).
    #[new]
    #[pyo3(signature = (rows, cols, layout = "c"))]
    fn new(rows: usize, cols: usize, layout: &str) -> PyResult<Field> {
        let values = |(i, j): (usize, usize)| (i * cols + j) as f64;
        let a = ndarray::Array2::from_shape_fn((rows, cols), values);
        let a = match layout {
            "c" => a,
            "f" => {
                let mut f = ndarray::Array2::zeros((rows, cols).f());
                f.assign(&a);
                f
            }
            "reversed" => {
                let mut r = ndarray::Array2::from_shape_fn((rows, cols), |(i, j)| {
                    values((rows - 1 - i, j))
                });
                r.invert_axis(Axis(0));
                r
            }
            other => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "unknown layout {other:?}"
                )));
            }
        };
        Ok(Field {
            data: Arc::new(a.into_dimensionality::<IxDyn>().expect("2-d")),
        })
    }

    /// Address of the Rust allocation holding the elements (lowest address).
    #[getter]
    fn allocation_address(&self) -> usize {
        self.data
            .as_slice_memory_order()
            .map(|s| s.as_ptr() as usize)
            .unwrap_or(0)
    }

    /// Pickles the field as a numpy array over the Rust memory.
    fn __reduce_ex__<'py>(&self, py: Python<'py>, protocol: u8) -> PyResult<Bound<'py, PyTuple>> {
        ndpickle_py::reduce_array(py, &self.data, protocol)
    }
}

use ndarray::ShapeBuilder;

/// The module.
#[pymodule]
fn zero_copy_ext(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Field>()
}

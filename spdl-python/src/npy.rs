//! `spdl_rs.io.load_npy` / `load_npz`: NumPy files read by spdl-io (no
//! pickles, limits checked before allocation) with the GIL released, then
//! handed to NumPy as arrays of their own dtype, shape and order.

use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PySlice, PyTuple};
use spdl::io::npy::{self, NpyArray};

use crate::errors::off_gil;
use crate::sources::extract;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(load_npy, m)?)?;
    m.add_function(wrap_pyfunction!(load_npz, m)?)?;
    Ok(())
}

/// One array as NumPy's: the buffer it was read into becomes a NumPy
/// buffer without a copy (when nothing else holds it), then the data's
/// range is viewed as the dtype and reshaped in the array's order. The
/// `.npy` format pads headers to 64 bytes, so the view is aligned.
pub(crate) fn to_numpy<'py>(py: Python<'py>, array: NpyArray) -> PyResult<Bound<'py, PyAny>> {
    let (descr, fortran) = (array.dtype.descr(), array.fortran_order);
    let shape = array.shape.clone();
    let (buffer, range) = array.into_buffer();
    let flat = PyArray1::<u8>::from_vec(py, Vec::from(buffer));
    let data = flat.get_item(PySlice::new(py, range.start as isize, range.end as isize, 1))?;
    let typed = data.call_method1("view", (descr,))?;
    let order = PyDict::new(py);
    order.set_item("order", if fortran { "F" } else { "C" })?;
    typed.call_method("reshape", (PyTuple::new(py, &shape)?,), Some(&order))
}

/// Loads a `.npy` (path, URL, bytes or file-like) as a NumPy array.
#[pyfunction]
fn load_npy<'py>(py: Python<'py>, src: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let source = extract(src)?;
    let array = off_gil(py, || npy::load_npy(source))?;
    to_numpy(py, array)
}

/// Loads every array of a `.npz` as a dict, by name, in archive order.
#[pyfunction]
fn load_npz<'py>(py: Python<'py>, src: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let source = extract(src)?;
    let arrays = off_gil(py, || npy::load_npz(source))?;
    let out = PyDict::new(py);
    for (name, array) in arrays {
        out.set_item(name, to_numpy(py, array)?)?;
    }
    Ok(out)
}

//! NumPy arrays over Rust buffers, without a copy. A large array's NumPy
//! base is a [`PooledBuffer`] that hands the buffer back to spdl-io's pool
//! (`spdl::io::memory`) when NumPy frees it, so a loop that drops each
//! output before asking for the next touches no new memory (measured:
//! BENCHMARKS.md, "Output buffer pool"). Small arrays own their buffer the
//! usual way (`IntoPyArray`).

use ndarray::{Array, ArrayD, Dimension};
use numpy::{IntoPyArray, PyArrayDyn};
use pyo3::prelude::*;
use spdl::io::memory;

/// The base object of a large NumPy array: it owns the array's buffer and
/// returns it to the pool when dropped.
#[pyclass(frozen, module = "spdl_rs.io")]
pub(crate) struct PooledBuffer(Owned);

/// The buffers the pool takes back: frames and images (`u8`), audio (`f32`).
pub(crate) enum Owned {
    U8(ArrayD<u8>),
    F32(ArrayD<f32>),
}

/// An element type whose large arrays go back to the pool.
pub(crate) trait PoolElement: numpy::Element + memory::Pooled {
    fn own(array: ArrayD<Self>) -> Owned;
}

impl PoolElement for u8 {
    fn own(array: ArrayD<u8>) -> Owned {
        Owned::U8(array)
    }
}

impl PoolElement for f32 {
    fn own(array: ArrayD<f32>) -> Owned {
        Owned::F32(array)
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        match &mut self.0 {
            Owned::U8(a) => memory::recycle(std::mem::take(a).into_raw_vec_and_offset().0),
            Owned::F32(a) => memory::recycle(std::mem::take(a).into_raw_vec_and_offset().0),
        }
    }
}

/// `array` as a NumPy array that owns its buffer: through a
/// [`PooledBuffer`] when it is large enough for the pool.
pub(crate) fn to_numpy<T: PoolElement, D: Dimension>(py: Python<'_>, array: Array<T, D>) -> PyResult<Bound<'_, PyAny>> {
    let bytes = array.len().saturating_mul(std::mem::size_of::<T>());
    if bytes < memory::POOL_MIN_BYTES || !array.is_standard_layout() {
        return Ok(array.into_pyarray(py).into_any());
    }
    let owner = Bound::new(py, PooledBuffer(T::own(array.into_dyn())))?;
    let base = owner.clone().into_any();
    // SAFETY (both arms): `owner` becomes the array's NumPy base and so
    // lives as long as the array; it is frozen, so the buffer it owns is
    // never moved, resized or freed before its drop.
    Ok(match &owner.get().0 {
        // SAFETY: see above.
        Owned::U8(a) => unsafe { PyArrayDyn::borrow_from_array(a, base) }.into_any(),
        // SAFETY: see above.
        Owned::F32(a) => unsafe { PyArrayDyn::borrow_from_array(a, base) }.into_any(),
    })
}

/// The pool's state: `limit_bytes`, `idle_bytes`, `idle_buffers`, `hits`
/// and `misses` (requests of 4 MiB or more served from it or not).
#[pyfunction]
pub(crate) fn buffer_pool_stats(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyDict>> {
    let s = memory::pool_stats();
    let dict = pyo3::types::PyDict::new(py);
    dict.set_item("limit_bytes", s.limit_bytes)?;
    dict.set_item("idle_bytes", s.idle_bytes)?;
    dict.set_item("idle_buffers", s.idle_buffers)?;
    dict.set_item("hits", s.hits)?;
    dict.set_item("misses", s.misses)?;
    Ok(dict)
}

/// Sets the most bytes of freed output buffers kept for reuse (default:
/// 1/8 of physical memory, at most 2 GiB); 0 turns reuse off and frees
/// what is kept.
#[pyfunction]
pub(crate) fn set_buffer_pool_limit(limit_bytes: usize) {
    memory::set_pool_limit(limit_bytes);
}

//! Turning Python arguments into spdl-io [`Source`]s: `str` (a path or a
//! URL), `os.PathLike`, `bytes`, and any contiguous byte buffer
//! (`memoryview`, `bytearray`, a uint8 NumPy array), all without copying
//! the data (the wheel, built for the stable ABI of CPython 3.9, where
//! the buffer protocol is not part of it, copies a buffer that is not
//! `bytes` once).

use std::path::PathBuf;

use bytes::Bytes;
#[cfg(not(feature = "abi3"))]
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyString};
use spdl::io::Source;

/// A Python buffer kept exported while Rust reads it.
#[cfg(not(feature = "abi3"))]
struct ExportedBuffer(PyBuffer<u8>);

#[cfg(not(feature = "abi3"))]
impl AsRef<[u8]> for ExportedBuffer {
    fn as_ref(&self) -> &[u8] {
        let Some(ptr) = self.0.as_slice_ptr() else {
            return &[];
        };
        // SAFETY: contiguity was checked when the buffer was taken
        // (`as_slice_ptr` is `Some` only for C-contiguous buffers); the
        // export, and so the memory, lives as long as `self`. A Python
        // thread writing into the buffer during a decode changes what is
        // decoded (documented), as with any buffer shared across threads.
        unsafe { ptr.as_ref() }
    }
}

/// The Rust source for a Python object.
pub(crate) fn extract(obj: &Bound<'_, PyAny>) -> PyResult<Source> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Source::from(&*s.to_cow()?));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Source::from_bytes(
            Bytes::from_owner(PyBackedBytes::from(b.clone())),
            "<bytes>",
        ));
    }
    if obj.hasattr("__fspath__")? {
        return Ok(Source::Path(obj.extract::<PathBuf>()?));
    }
    let data = buffer_bytes(obj).map_err(|_| {
        PyTypeError::new_err(format!(
            "expected str, os.PathLike, bytes or a uint8 buffer, not {}",
            obj.get_type().name().map_or("?".into(), |n| n.to_string())
        ))
    })?;
    Ok(Source::from_bytes(data, "<buffer>"))
}

/// The bytes of a contiguous uint8 buffer, shared while it stays exported.
#[cfg(not(feature = "abi3"))]
fn buffer_bytes(obj: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    let buffer = PyBuffer::<u8>::get(obj)?;
    Ok(if buffer.as_slice_ptr().is_some() {
        Bytes::from_owner(ExportedBuffer(buffer))
    } else {
        Bytes::from(buffer.to_vec(obj.py())?)
    })
}

/// The bytes of a uint8 buffer, copied through `memoryview` (the stable
/// ABI of CPython 3.9 has no buffer protocol).
#[cfg(feature = "abi3")]
fn buffer_bytes(obj: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    let view = obj.py().import("builtins")?.getattr("memoryview")?.call1((obj,))?;
    if view.getattr("itemsize")?.extract::<usize>()? != 1 {
        return Err(PyTypeError::new_err("not a byte buffer"));
    }
    Ok(Bytes::from(view.call_method0("tobytes")?.extract::<Vec<u8>>()?))
}

/// Sources for every item of a Python iterable. In-memory items are named
/// by their position (`<bytes #3>`), so a batch's failure report says
/// which one failed.
pub(crate) fn extract_all(objs: &Bound<'_, PyAny>) -> PyResult<Vec<Source>> {
    if objs.is_instance_of::<PyString>() || objs.is_instance_of::<PyBytes>() || objs.hasattr("__fspath__")? {
        return Err(PyTypeError::new_err(
            "expected an iterable of sources (a list of paths, URLs or bytes), not a single source",
        ));
    }
    let numbered = |(i, src): (usize, Source)| match src {
        Source::Bytes { data, name } => Source::from_bytes(data, format!("{} #{i}>", name.trim_end_matches('>'))),
        other => other,
    };
    objs.try_iter()?
        .enumerate()
        .map(|(i, o)| extract(&o?).map(|src| numbered((i, src))))
        .collect()
}

//! Python exception classes and the mapping from Rust errors: a missing
//! file is `FileNotFoundError`, a bad argument `ValueError`, and decode,
//! limit, fetch and pipeline failures are `spdl_rs` classes under
//! `SpdlError` (a `RuntimeError`), each carrying the Rust message (which
//! names the source).

use pyo3::create_exception;
use pyo3::exceptions::{PyFileNotFoundError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use spdl::io::Error as IoError;
use spdl::pipeline::Error as PipelineError;

create_exception!(spdl_rs, SpdlError, PyRuntimeError, "Base class of spdl_rs errors.");
create_exception!(
    spdl_rs,
    DecodeError,
    SpdlError,
    "Media could not be demuxed, decoded or converted."
);
create_exception!(
    spdl_rs,
    LimitError,
    SpdlError,
    "An input is over a configured safety limit."
);
create_exception!(
    spdl_rs,
    RemoteError,
    SpdlError,
    "Fetching from object storage failed after retries."
);
create_exception!(
    spdl_rs,
    PipelineFailure,
    SpdlError,
    "A pipeline stopped (failure budget, timeout)."
);

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("SpdlError", py.get_type::<SpdlError>())?;
    m.add("DecodeError", py.get_type::<DecodeError>())?;
    m.add("LimitError", py.get_type::<LimitError>())?;
    m.add("RemoteError", py.get_type::<RemoteError>())?;
    m.add("PipelineFailure", py.get_type::<PipelineFailure>())?;
    Ok(())
}

/// The Python exception for an spdl-io error.
pub(crate) fn io_error(e: IoError) -> PyErr {
    let text = e.to_string();
    match e {
        IoError::NotFound { .. } => PyFileNotFoundError::new_err(text),
        IoError::InvalidConfig(_) | IoError::FrameIndex { .. } | IoError::FrameTime { .. } => {
            PyValueError::new_err(text)
        }
        IoError::Limit { .. } => LimitError::new_err(text),
        IoError::Remote { .. } => RemoteError::new_err(text),
        IoError::Write { .. } => pyo3::exceptions::PyOSError::new_err(text),
        _ => DecodeError::new_err(text),
    }
}

/// Runs library work with the GIL released. A panic in it (a bug, ours or
/// a decoder's that spdl-io did not catch) becomes `DecodeError`, never
/// pyo3's `PanicException`, which derives from `BaseException` and so
/// escapes `except Exception`.
pub(crate) fn off_gil<T: Send>(py: Python<'_>, work: impl FnOnce() -> Result<T, IoError> + Send) -> PyResult<T> {
    match py.detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))) {
        Ok(result) => result.map_err(io_error),
        Err(payload) => Err(panicked(payload)),
    }
}

/// A panic's payload as the `DecodeError` of the work that panicked.
pub(crate) fn panicked(payload: Box<dyn std::any::Any + Send>) -> PyErr {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    DecodeError::new_err(format!("internal error: a panic ({message}); please report it"))
}

/// The Python exception for a pipeline error.
pub(crate) fn pipeline_error(e: PipelineError) -> PyErr {
    match e {
        PipelineError::Build(text) => PyValueError::new_err(text),
        e => PipelineFailure::new_err(e.to_string()),
    }
}

//! `spdl_rs`: the Python package over spdl-io and spdl-pipeline.
//!
//! Every decode, convert and wait runs with the GIL released (the module
//! declares `gil_used = false`), results are NumPy arrays that own the Rust
//! buffer (no copy), and no thread is started at import: CPU pools are
//! created on first use and rebuilt in a forked child.

mod aio;
mod arrays;
mod errors;
mod io;
mod npy;
mod pipeline;
mod pools;
mod sources;
mod video;
mod writers;

use pyo3::prelude::*;

/// The extension module, imported as `spdl_rs._native` and re-exported by
/// the pure-Python `spdl_rs/__init__.py`.
#[pymodule(gil_used = false)]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    // Fail at import (not at the first array) if NumPy is missing, and load
    // its C API now: loaded lazily, a Ctrl-C pending at the first array
    // made that load fail, and rust-numpy panics then.
    py.import("numpy")?;
    numpy::PyArray1::<u8>::zeros(py, 0, false);
    errors::register(m)?;
    install_logging(py)?;
    m.add_function(wrap_pyfunction!(pools::shutdown, m)?)?;
    let modules = py.import("sys")?.getattr("modules")?;
    for (name, register) in [
        ("io", io::register as fn(&Bound<'_, PyModule>) -> PyResult<()>),
        ("pipeline", pipeline::register),
    ] {
        let sub = PyModule::new(py, name)?;
        register(&sub)?;
        m.add_submodule(&sub)?;
        // Its full name, so pickle (and cloudpickle, shipping closures to
        // Ray or multiprocessing workers) imports this module, not `io`.
        let full = format!("spdl_rs.{name}");
        sub.setattr("__name__", &full)?;
        modules.set_item(full, &sub)?;
    }
    Ok(())
}

/// Routes Rust `log` records and `tracing` events (the pipeline's dropped
/// items and periodic reports, FFmpeg's log) to Python's `logging`, under
/// loggers named `spdl_rs.<target>` (`spdl_rs.ffmpeg`,
/// `spdl_rs.spdl_pipeline`). Records below INFO are not forwarded (each
/// costs a GIL hand-off). Loggers are cached but their levels are not, so
/// `logging` configured after import takes effect.
fn install_logging(py: Python<'_>) -> PyResult<()> {
    let logger = pyo3_log::Logger::new(py, pyo3_log::Caching::Loggers)?
        .set_prefix("spdl_rs")
        .filter(log::LevelFilter::Info);
    // Another extension in the process may own the `log` facade already.
    let _ = logger.install();
    Ok(())
}

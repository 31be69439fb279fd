//! `spdl_rs`: the Python package over spdl-io and spdl-pipeline.
//!
//! Every decode, convert and wait runs with the GIL released (the module
//! declares `gil_used = false`), results are NumPy arrays that own the Rust
//! buffer (no copy), and no thread is started at import: CPU pools are
//! created on first use and rebuilt in a forked child.

mod errors;
mod io;
mod pipeline;
mod pools;
mod sources;

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
    m.add_function(wrap_pyfunction!(pools::shutdown, m)?)?;
    let modules = py.import("sys")?.getattr("modules")?;
    for (name, register) in [
        ("io", io::register as fn(&Bound<'_, PyModule>) -> PyResult<()>),
        ("pipeline", pipeline::register),
    ] {
        let sub = PyModule::new(py, name)?;
        register(&sub)?;
        m.add_submodule(&sub)?;
        modules.set_item(format!("spdl_rs.{name}"), &sub)?;
    }
    Ok(())
}

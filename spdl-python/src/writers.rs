//! `spdl_rs.io.VideoWriter` and `AudioWriter`: frames or samples encoded
//! and muxed into a file as they come, with the GIL released; a lock
//! serialises calls from several threads, `close()` (or the end of a
//! `with` block) finishes the file.

use std::sync::Mutex;

use pyo3::prelude::*;
use spdl::io as sio;

use crate::errors::off_gil;

/// What both writers finish with.
trait Finish: Send {
    fn finish(self) -> sio::Result<()>;
}

impl Finish for sio::video::VideoWriter {
    fn finish(self) -> sio::Result<()> {
        sio::video::VideoWriter::finish(self)
    }
}

impl Finish for sio::audio::AudioWriter {
    fn finish(self) -> sio::Result<()> {
        sio::audio::AudioWriter::finish(self)
    }
}

/// An open writer behind a lock, until `close()` takes it.
struct WriterSlot<W> {
    inner: Mutex<Option<W>>,
    name: String,
}

impl<W: Finish> WriterSlot<W> {
    fn new(writer: W, name: String) -> Self {
        WriterSlot {
            inner: Mutex::new(Some(writer)),
            name,
        }
    }

    /// Runs `work` on the open writer with the GIL released.
    fn with(&self, py: Python<'_>, work: impl FnOnce(&mut W) -> sio::Result<()> + Send) -> PyResult<()> {
        off_gil(py, || match self.inner.lock().ok().as_deref_mut() {
            Some(Some(writer)) => work(writer),
            _ => Err(sio::Error::InvalidConfig(format!(
                "{}: the writer is closed",
                self.name
            ))),
        })
    }

    /// Finishes the file; a second call does nothing.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        match self.inner.lock().ok().and_then(|mut w| w.take()) {
            Some(writer) => off_gil(py, || writer.finish()),
            None => Ok(()),
        }
    }
}

/// A video file being written: `write(frames)` encodes (N, H, W, 3) uint8
/// RGB frames as they come (the GIL released), `close()` flushes and
/// writes the trailer; also a context manager.
#[pyclass(frozen, module = "spdl_rs.io")]
pub(crate) struct VideoWriter(WriterSlot<sio::video::VideoWriter>);

#[pymethods]
impl VideoWriter {
    #[new]
    #[pyo3(signature = (path, width, height, *, fps=(30, 1), codec="libx264", pix_fmt="yuv420p", options=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: std::path::PathBuf,
        width: u32,
        height: u32,
        fps: (i32, i32),
        codec: &str,
        pix_fmt: &str,
        options: Option<std::collections::BTreeMap<String, String>>,
    ) -> PyResult<Self> {
        let mut config = sio::video::WriterConfig::new(fps.0, fps.1)
            .with_codec(codec)
            .with_pix_fmt(pix_fmt);
        config.options = options.unwrap_or_default().into_iter().collect();
        let writer = off_gil(py, || sio::video::VideoWriter::create(&path, width, height, &config))?;
        Ok(VideoWriter(WriterSlot::new(writer, path.display().to_string())))
    }

    /// Encodes (N, H, W, 3) uint8 RGB frames.
    fn write(&self, py: Python<'_>, frames: numpy::PyReadonlyArray4<'_, u8>) -> PyResult<()> {
        let view = frames.as_array();
        self.0.with(py, |w| w.write(view))
    }

    /// Flushes the encoder and finishes the file (again: nothing).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.0.close(py)
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.0.close(py).map(|()| false)
    }
}

/// An audio file being written: `write(samples)` encodes (channels,
/// samples) float32 arrays as they come (the GIL released), `close()`
/// flushes and writes the trailer; also a context manager.
#[pyclass(frozen, module = "spdl_rs.io")]
pub(crate) struct AudioWriter(WriterSlot<sio::audio::AudioWriter>);

#[pymethods]
impl AudioWriter {
    #[new]
    #[pyo3(signature = (path, sample_rate, channels, *, codec=None))]
    fn new(
        py: Python<'_>,
        path: std::path::PathBuf,
        sample_rate: u32,
        channels: u32,
        codec: Option<String>,
    ) -> PyResult<Self> {
        let writer = off_gil(py, || {
            sio::audio::AudioWriter::create(&path, sample_rate, channels, codec.as_deref())
        })?;
        Ok(AudioWriter(WriterSlot::new(writer, path.display().to_string())))
    }

    /// Encodes (channels, samples) float32 samples.
    fn write(&self, py: Python<'_>, samples: numpy::PyReadonlyArray2<'_, f32>) -> PyResult<()> {
        let view = samples.as_array();
        self.0.with(py, |w| w.write(view))
    }

    /// Flushes the encoder and finishes the file (again: nothing).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.0.close(py)
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.0.close(py).map(|()| false)
    }
}

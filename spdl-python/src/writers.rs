//! `spdl_rs.io.VideoWriter` and `AudioWriter`: frames or samples encoded
//! and muxed as they come into a file, an object (`s3://...`) or memory,
//! with the GIL released; a lock serialises calls from several threads,
//! `close()` (or the end of a `with` block) finishes the output.

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use sio::source::Destination;
use spdl::io as sio;

use crate::errors::off_gil;

/// What both writers finish with: the bytes, for an in-memory output.
trait Finish: Send {
    fn finish(self) -> sio::Result<Option<Vec<u8>>>;
}

impl Finish for sio::video::VideoWriter {
    fn finish(self) -> sio::Result<Option<Vec<u8>>> {
        sio::video::VideoWriter::finish(self)
    }
}

impl Finish for sio::audio::AudioWriter {
    fn finish(self) -> sio::Result<Option<Vec<u8>>> {
        sio::audio::AudioWriter::finish(self)
    }
}

/// Where a writer writes: `path` (str, os.PathLike, or an object URL), or
/// memory when it is None (`format` then names the container, as a file
/// extension would: `mp4`, `mkv`, `flac`, `wav`).
pub(crate) fn destination(path: Option<&Bound<'_, PyAny>>, format: Option<&str>) -> PyResult<Destination> {
    match (path, format) {
        (Some(p), _) if p.is_instance_of::<PyString>() => Ok(Destination::from(p.extract::<String>()?)),
        (Some(p), _) => Ok(Destination::from(p.extract::<PathBuf>()?)),
        (None, Some(f)) => Ok(Destination::memory(format!("<memory>.{f}"))),
        (None, None) => Err(PyValueError::new_err(
            "give a path or URL to write to, or path=None and format= (mp4, mkv, flac...) to write into memory",
        )),
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

    /// Finishes the output (the bytes, for memory); a second call does
    /// nothing.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let bytes = match self.inner.lock().ok().and_then(|mut w| w.take()) {
            Some(writer) => off_gil(py, || writer.finish())?,
            None => None,
        };
        Ok(bytes.map(|b| PyBytes::new(py, &b)))
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
    #[pyo3(signature = (path, width, height, *, fps=(30, 1), codec="libx264", pix_fmt="yuv420p", options=None,
                        format=None, muxer_options=None, audio_rate=None, audio_channels=2, audio_codec=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: Option<&Bound<'_, PyAny>>,
        width: u32,
        height: u32,
        fps: (i32, i32),
        codec: &str,
        pix_fmt: &str,
        options: Option<std::collections::BTreeMap<String, String>>,
        format: Option<&str>,
        muxer_options: Option<std::collections::BTreeMap<String, String>>,
        audio_rate: Option<u32>,
        audio_channels: u32,
        audio_codec: Option<String>,
    ) -> PyResult<Self> {
        let dest = destination(path, format)?;
        let mut config = sio::video::WriterConfig::new(fps.0, fps.1)
            .with_codec(codec)
            .with_pix_fmt(pix_fmt);
        config.options = options.unwrap_or_default().into_iter().collect();
        config.muxer_options = muxer_options.unwrap_or_default().into_iter().collect();
        config.audio = audio_rate.map(|rate| (rate, audio_channels));
        config.audio_codec = audio_codec;
        let name = dest.name();
        let writer = off_gil(py, || sio::video::VideoWriter::create(dest, width, height, &config))?;
        Ok(VideoWriter(WriterSlot::new(writer, name)))
    }

    /// Encodes (N, H, W, 3) uint8 RGB frames.
    fn write(&self, py: Python<'_>, frames: numpy::PyReadonlyArray4<'_, u8>) -> PyResult<()> {
        let view = frames.as_array();
        self.0.with(py, |w| w.write(view))
    }

    /// Encodes (channels, samples) float32 samples of the audio track
    /// (`audio_rate=` given); video and audio may come in any order.
    fn write_audio(&self, py: Python<'_>, samples: numpy::PyReadonlyArray2<'_, f32>) -> PyResult<()> {
        let view = samples.as_array();
        self.0.with(py, |w| w.write_audio(view))
    }

    /// Flushes the encoders and finishes the output: its bytes when it is
    /// in memory, else None (again: nothing).
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        self.0.close(py)
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.0.close(py).map(|_| false)
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
    #[pyo3(signature = (path, sample_rate, channels, *, codec=None, format=None))]
    fn new(
        py: Python<'_>,
        path: Option<&Bound<'_, PyAny>>,
        sample_rate: u32,
        channels: u32,
        codec: Option<String>,
        format: Option<&str>,
    ) -> PyResult<Self> {
        let dest = destination(path, format)?;
        let name = dest.name();
        let writer = off_gil(py, || {
            sio::audio::AudioWriter::create(dest, sample_rate, channels, codec.as_deref())
        })?;
        Ok(AudioWriter(WriterSlot::new(writer, name)))
    }

    /// Encodes (channels, samples) float32 samples.
    fn write(&self, py: Python<'_>, samples: numpy::PyReadonlyArray2<'_, f32>) -> PyResult<()> {
        let view = samples.as_array();
        self.0.with(py, |w| w.write(view))
    }

    /// Flushes the encoder and finishes the output: its bytes when it is
    /// in memory, else None (again: nothing).
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        self.0.close(py)
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.0.close(py).map(|_| false)
    }
}

//! `spdl_rs.io.VideoReader`: a video opened once for many lookups (by
//! index, slice, time, range or clip), each decoded with the GIL released.
//! The reader keeps its demuxer, decoder and frame index between calls; a
//! lock serialises calls on one reader from several threads.

use std::sync::Mutex;

use numpy::IntoPyArray;
use pyo3::exceptions::{PyIndexError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PySlice};
use spdl::io as sio;
use spdl::io::video::{ClipSampling, FrameIndex, IndexOrigin, VideoReader as Reader};

use crate::errors::off_gil;
use crate::io::{value_error, video_config, video_result};
use crate::sources::extract;

/// A video opened once: `len(reader)`, `reader[i]`, `reader[a:b:c]`,
/// frames at indices or times, ranges, time windows and clips. Options as
/// `load_video`'s, plus `seek_mode` ("exact" or "approximate") and `index`
/// (bytes from `save_index()`, so the file is not indexed again).
/// `num_threads` counts decoder threads; a call for two or more frames also
/// converts them on one more thread, beside the decoding.
#[pyclass(frozen, module = "spdl_rs.io")]
pub(crate) struct VideoReader {
    inner: Mutex<Reader>,
    name: String,
}

impl VideoReader {
    /// Runs `work` on the reader with the GIL released.
    fn with<T: Send>(&self, py: Python<'_>, work: impl FnOnce(&mut Reader) -> sio::Result<T> + Send) -> PyResult<T> {
        off_gil(py, || match self.inner.lock() {
            Ok(mut reader) => work(&mut reader),
            Err(_) => Err(sio::Error::InvalidConfig(format!(
                "{}: the reader failed in an earlier call and cannot be used",
                self.name
            ))),
        })
    }

    fn length(&self) -> PyResult<usize> {
        self.inner
            .lock()
            .map(|r| r.len())
            .map_err(|_| PyRuntimeError::new_err("the reader failed in an earlier call"))
    }
}

#[pymethods]
impl VideoReader {
    #[new]
    #[pyo3(signature = (src, *, size=None, pix_fmt="rgb24", interpolation="bilinear", num_threads=1, apply_rotation=true, seek_mode="exact", index=None, trusted_input=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        src: &Bound<'_, PyAny>,
        size: Option<(u32, u32)>,
        pix_fmt: &str,
        interpolation: &str,
        num_threads: usize,
        apply_rotation: bool,
        seek_mode: &str,
        index: Option<&[u8]>,
        trusted_input: bool,
    ) -> PyResult<Self> {
        let mut config = video_config(
            size,
            pix_fmt,
            interpolation,
            None,
            None,
            None,
            num_threads,
            apply_rotation,
        )?
        .with_seek_mode(seek_mode.parse().map_err(value_error)?);
        config.limits.trusted_input = trusted_input;
        let index = index.map(FrameIndex::from_bytes).transpose().map_err(value_error)?;
        let source = extract(src)?;
        let name = source.name();
        let reader = off_gil(py, || match index {
            Some(index) => Reader::open_with_index(source, &config, index),
            None => Reader::open(source, &config),
        })?;
        Ok(VideoReader {
            inner: Mutex::new(reader),
            name,
        })
    }

    fn __len__(&self) -> PyResult<usize> {
        self.length()
    }

    /// `reader[i]`: one frame (H, W, C), negative indices from the end;
    /// `reader[a:b:c]`: frames (N, H, W, C).
    fn __getitem__<'py>(&self, py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let n = self.length()?;
        if let Ok(slice) = key.cast::<PySlice>() {
            let s = slice.indices(n as isize)?;
            let indices: Vec<usize> = (0..s.slicelength)
                .map(|k| (s.start + k as isize * s.step) as usize)
                .collect();
            let video = self.with(py, |r| r.get_frames_at(&indices))?;
            return video_result(py, video, false);
        }
        let i: isize = key.extract()?;
        let at = if i < 0 { i + n as isize } else { i };
        if at < 0 || at >= n as isize {
            return Err(PyIndexError::new_err(format!(
                "{}: frame index {i} is out of range for {n} frames",
                self.name
            )));
        }
        let video = self.with(py, |r| r.get_frames_at(&[at as usize]))?;
        let frame = video.frames.index_axis_move(ndarray::Axis(0), 0);
        crate::arrays::to_numpy(py, frame)
    }

    /// Frames at `indices` (any order, repeats allowed): (N, H, W, C).
    #[pyo3(signature = (indices, *, return_pts=false))]
    fn get_frames_at<'py>(
        &self,
        py: Python<'py>,
        indices: Vec<usize>,
        return_pts: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let video = self.with(py, |r| r.get_frames_at(&indices))?;
        video_result(py, video, return_pts)
    }

    /// The frames shown at each time in `seconds` (stream time).
    #[pyo3(signature = (seconds, *, return_pts=false))]
    fn get_frames_played_at<'py>(
        &self,
        py: Python<'py>,
        seconds: Vec<f64>,
        return_pts: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let video = self.with(py, |r| r.get_frames_played_at(&seconds))?;
        video_result(py, video, return_pts)
    }

    /// Frames `start`, `start + step`, ... before `stop`.
    #[pyo3(signature = (start, stop, step=1, *, return_pts=false))]
    fn get_frames_in_range<'py>(
        &self,
        py: Python<'py>,
        start: usize,
        stop: usize,
        step: usize,
        return_pts: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let video = self.with(py, |r| r.get_frames_in_range(start, stop, step))?;
        video_result(py, video, return_pts)
    }

    /// Frames shown from `start` (inclusive) to `end` (exclusive) seconds.
    #[pyo3(signature = (start, end, *, return_pts=false))]
    fn get_frames_played_in<'py>(
        &self,
        py: Python<'py>,
        start: f64,
        end: f64,
        return_pts: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let video = self.with(py, |r| r.get_frames_played_in(start, end))?;
        video_result(py, video, return_pts)
    }

    /// `num_clips` clips of `frames_per_clip` frames, `stride` apart:
    /// (num_clips, frames_per_clip, H, W, C). Starts spread evenly, or
    /// drawn at random from `seed`.
    #[pyo3(signature = (num_clips=1, frames_per_clip=8, *, stride=1, seed=None, return_pts=false))]
    fn get_clips<'py>(
        &self,
        py: Python<'py>,
        num_clips: usize,
        frames_per_clip: usize,
        stride: usize,
        seed: Option<u64>,
        return_pts: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut sampling = ClipSampling::default()
            .with_clips(num_clips)
            .with_frames_per_clip(frames_per_clip)
            .with_stride(stride);
        sampling.random = seed;
        let clips = self.with(py, |r| r.get_clips(&sampling))?;
        let frames = crate::arrays::to_numpy(py, clips.frames)?;
        if !return_pts {
            return Ok(frames);
        }
        Ok((frames, clips.pts.into_pyarray(py)).into_pyobject(py)?.into_any())
    }

    /// Presentation time of every frame, in seconds.
    #[getter]
    fn frame_times<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let times = self.with(py, |r| Ok(r.index().frame_seconds()))?;
        Ok(times.into_pyarray(py).into_any())
    }

    /// Presentation time of every keyframe, in seconds.
    #[getter]
    fn keyframe_times<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let times = self.with(py, |r| Ok(r.index().keyframe_seconds()))?;
        Ok(times.into_pyarray(py).into_any())
    }

    /// Where the index came from: "sample_table", "scan" or "header".
    #[getter]
    fn index_origin(&self, py: Python<'_>) -> PyResult<&'static str> {
        self.with(py, |r| {
            Ok(match r.index().origin() {
                IndexOrigin::SampleTable => "sample_table",
                IndexOrigin::Scan => "scan",
                _ => "header",
            })
        })
    }

    /// The stream's metadata (as `spdl_rs.io.info` gives a stream's) with
    /// `num_frames` from the index.
    #[getter]
    fn metadata(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let (json, frames) = self.with(py, |r| {
            let json = serde_json::to_string(r.info()).map_err(|e| sio::Error::InvalidConfig(e.to_string()))?;
            Ok((json, r.len()))
        })?;
        let meta = py.import("json")?.call_method1("loads", (json,))?;
        meta.set_item("num_frames", frames)?;
        Ok(meta.unbind())
    }

    /// The frame index as bytes: pass them as `index=` to open the same
    /// file again without indexing it.
    fn save_index<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self.with(py, |r| Ok(r.index().to_bytes()))?;
        Ok(PyBytes::new(py, &bytes))
    }

    fn __repr__(&self) -> PyResult<String> {
        Ok(format!("VideoReader({:?}, frames={})", self.name, self.length()?))
    }
}

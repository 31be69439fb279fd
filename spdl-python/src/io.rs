//! `spdl_rs.io`: decode images, video and audio into NumPy arrays with the
//! GIL released. Arrays own the Rust buffer (their `.base` keeps it alive),
//! so nothing is copied on the way to Python, `torch.from_numpy` or DLPack.

use std::sync::mpsc::RecvTimeoutError;
use std::sync::Mutex;

use ndarray::{Array2, Array4};
use numpy::IntoPyArray;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use spdl::io::{self as sio, AudioConfig, ImageConfig, Source, VideoConfig};

use crate::arrays::to_numpy;
use crate::errors::{io_error, off_gil, panicked};
use crate::pools::cpu_pool;
use crate::sources::{extract, extract_all};

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(info, m)?)?;
    m.add_function(wrap_pyfunction!(crate::arrays::buffer_pool_stats, m)?)?;
    m.add_function(wrap_pyfunction!(crate::arrays::set_buffer_pool_limit, m)?)?;
    m.add_function(wrap_pyfunction!(load_image, m)?)?;
    m.add_function(wrap_pyfunction!(load_image_batch, m)?)?;
    m.add_function(wrap_pyfunction!(load_video, m)?)?;
    m.add_function(wrap_pyfunction!(sample_frames, m)?)?;
    m.add_function(wrap_pyfunction!(stream_video, m)?)?;
    m.add_function(wrap_pyfunction!(load_audio, m)?)?;
    m.add_function(wrap_pyfunction!(stream_audio, m)?)?;
    m.add_class::<ChunkIterator>()?;
    m.add_class::<crate::video::VideoReader>()?;
    m.add_class::<crate::writers::VideoWriter>()?;
    m.add_class::<crate::writers::AudioWriter>()?;
    m.add_function(wrap_pyfunction!(list_dataset, m)?)?;
    m.add_function(wrap_pyfunction!(class_folders, m)?)?;
    crate::npy::register(m)?;
    m.add_function(wrap_pyfunction!(save_image, m)?)?;
    m.add_function(wrap_pyfunction!(encode_image, m)?)?;
    Ok(())
}

/// The files under `root` (a folder, or a URL prefix such as
/// `s3://bucket/train/`), recursively, whose names end with one of
/// `extensions` (case-insensitive; none keeps all), sorted: paths or URLs
/// ready for a pipeline source. Entries that cannot be read (a dangling
/// or out-of-root symlink, a folder without permission) are listed too,
/// so the decode stage reports them instead of losing them silently.
#[pyfunction]
#[pyo3(signature = (root, extensions=None, *, external_links=false))]
fn list_dataset(
    py: Python<'_>,
    root: &str,
    extensions: Option<Vec<String>>,
    external_links: bool,
) -> PyResult<Vec<String>> {
    let extensions = extensions.unwrap_or_default();
    let exts: Vec<&str> = extensions.iter().map(String::as_str).collect();
    let items = off_gil(py, || sio::dataset::list_dataset_with(root, &exts, external_links))?;
    Ok(items.into_iter().map(|item| item.source.name()).collect())
}

/// Class names, and every file with its label.
type LabelledFiles = (Vec<String>, Vec<(String, usize)>);

/// A labelled dataset in class folders (`root/<class>/<file>`), as
/// torchvision's `ImageFolder`: `(classes, [(path, label), ...])`, classes
/// sorted by name and labels their index.
#[pyfunction]
#[pyo3(signature = (root, extensions=None))]
fn class_folders(py: Python<'_>, root: &str, extensions: Option<Vec<String>>) -> PyResult<LabelledFiles> {
    let extensions = extensions.unwrap_or_default();
    let exts: Vec<&str> = extensions.iter().map(String::as_str).collect();
    let data = off_gil(py, || sio::class_folders(root, &exts))?;
    let items = data
        .items
        .into_iter()
        .map(|(item, label)| (item.source.name(), label))
        .collect();
    Ok((data.classes, items))
}

/// Runs `work` on a helper thread while this one waits without the GIL,
/// checking for Python signals every 50 ms. On one (Ctrl-C), `cancel` is
/// set, the work is waited for (it stops at its next image), and the
/// signal's exception is raised, so a long batch stops when asked.
fn interruptible<T: Send>(py: Python<'_>, cancel: &sio::Cancel, work: impl FnOnce() -> T + Send) -> PyResult<T> {
    let (done, mut result) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        // A panic in the work is caught here: the scope would re-raise it.
        s.spawn(move || done.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))));
        loop {
            // The receiver moves in and out: it may not be shared.
            let (r, received) = py.detach(move || {
                let received = result.recv_timeout(std::time::Duration::from_millis(50));
                (result, received)
            });
            result = r;
            match received {
                Ok(value) => return value.map_err(panicked),
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(signal) = py.check_signals() {
                        cancel.cancel();
                        py.detach(move || result.recv()).ok();
                        return Err(signal);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(PyRuntimeError::new_err("the batch's worker thread failed"))
                }
            }
        }
    })
}

pub(crate) fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// The image settings shared by `load_image`, `load_image_batch` and the
/// pipeline's native decode stage.
pub(crate) fn image_config(
    size: Option<(u32, u32)>,
    pix_fmt: &str,
    interpolation: &str,
    fit: &str,
    apply_orientation: bool,
) -> PyResult<ImageConfig> {
    let mut config = ImageConfig::default()
        .with_pix_fmt(pix_fmt.parse().map_err(value_error)?)
        .with_interpolation(interpolation.parse().map_err(value_error)?)
        .with_fit(fit.parse().map_err(value_error)?)
        .with_orientation(apply_orientation);
    (config.width, config.height) = (size.map(|s| s.0), size.map(|s| s.1));
    // Checked when made, so a native pipeline stage refuses it when built.
    config.validate().map_err(value_error)?;
    Ok(config)
}

/// Container and stream metadata (or an image's header) as a dict.
#[pyfunction]
#[pyo3(signature = (src, *, trusted_input=false))]
fn info(py: Python<'_>, src: &Bound<'_, PyAny>, trusted_input: bool) -> PyResult<Py<PyAny>> {
    let source = extract(src)?;
    let limits = sio::Limits::default().with_trusted_input(trusted_input);
    let json = off_gil(py, || -> Result<String, sio::Error> {
        let text = match sio::probe_kind_with_limits(source, limits)? {
            sio::MediaKind::Image(image) => serde_json::to_string(&image),
            sio::MediaKind::Video(info) | sio::MediaKind::Audio(info) => serde_json::to_string(&info),
            other => return Err(sio::Error::InvalidConfig(format!("no metadata for {other:?}"))),
        };
        text.map_err(|e| sio::Error::InvalidConfig(e.to_string()))
    });
    let json = json?;
    Ok(py.import("json")?.call_method1("loads", (json,))?.unbind())
}

/// An image array as an (H, W, C) view: (H, W) is one gray channel.
fn image_view<'a>(array: &'a numpy::PyReadonlyArrayDyn<'_, u8>) -> PyResult<ndarray::ArrayView3<'a, u8>> {
    let view = array.as_array();
    let view = match view.ndim() {
        2 => view.insert_axis(ndarray::Axis(2)),
        _ => view,
    };
    view.into_dimensionality()
        .map_err(|_| PyValueError::new_err("an image is an (H, W, C) or (H, W) uint8 array"))
}

/// Encodes an (H, W, C) or (H, W) uint8 array as JPEG, PNG or WebP bytes.
#[pyfunction]
#[pyo3(signature = (image, format, *, quality=95, subsampling=None))]
fn encode_image<'py>(
    py: Python<'py>,
    image: numpy::PyReadonlyArrayDyn<'py, u8>,
    format: &str,
    quality: u8,
    subsampling: Option<u16>,
) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
    let format: sio::image::ImageFormat = format.parse().map_err(value_error)?;
    let mut config = sio::image::SaveConfig::default().with_quality(quality);
    config.subsampling = subsampling;
    let view = image_view(&image)?;
    let bytes = off_gil(py, || sio::image::encode_image(view, format, &config))?;
    Ok(pyo3::types::PyBytes::new(py, &bytes))
}

/// Writes an (H, W, C) or (H, W) uint8 array to `path` (a path or an
/// object URL such as `s3://bucket/out.jpg`; format from `format=` or the
/// extension: jpg/jpeg, png, webp).
#[pyfunction]
#[pyo3(signature = (path, image, *, format=None, quality=95, subsampling=None))]
fn save_image(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    image: numpy::PyReadonlyArrayDyn<'_, u8>,
    format: Option<&str>,
    quality: u8,
    subsampling: Option<u16>,
) -> PyResult<()> {
    let mut config = sio::image::SaveConfig::default().with_quality(quality);
    config.subsampling = subsampling;
    config.format = format.map(str::parse).transpose().map_err(value_error)?;
    let view = image_view(&image)?;
    let dest = crate::writers::destination(Some(path), None)?;
    off_gil(py, || sio::image::save_image(dest, view, &config))
}

/// Decodes one image to an (H, W, C) uint8 array, or uint16 with
/// `dtype="uint16"` (16-bit sources keep their samples, 8-bit ones are
/// scaled by 257).
#[pyfunction]
#[pyo3(signature = (src, *, size=None, pix_fmt="rgb24", interpolation="bilinear", fit="stretch", apply_orientation=true, dtype="uint8"))]
#[allow(clippy::too_many_arguments)]
fn load_image<'py>(
    py: Python<'py>,
    src: &Bound<'py, PyAny>,
    size: Option<(u32, u32)>,
    pix_fmt: &str,
    interpolation: &str,
    fit: &str,
    apply_orientation: bool,
    dtype: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let config = image_config(size, pix_fmt, interpolation, fit, apply_orientation)?;
    let source = extract(src)?;
    match dtype {
        "uint8" => to_numpy(py, off_gil(py, || sio::load_image(source, &config))?),
        "uint16" => Ok(off_gil(py, || sio::load_image_u16(source, &config))?
            .into_pyarray(py)
            .into_any()),
        other => Err(value_error(format!(
            "dtype must be \"uint8\" or \"uint16\", not {other:?}"
        ))),
    }
}

/// Decodes images in parallel into one (N, H, W, C) uint8 array.
#[pyfunction]
#[pyo3(signature = (srcs, *, size, pix_fmt="rgb24", interpolation="bilinear", fit="stretch", apply_orientation=true, num_threads=0, on_error="raise"))]
#[allow(clippy::too_many_arguments)]
fn load_image_batch<'py>(
    py: Python<'py>,
    srcs: &Bound<'py, PyAny>,
    size: (u32, u32),
    pix_fmt: &str,
    interpolation: &str,
    fit: &str,
    apply_orientation: bool,
    num_threads: usize,
    on_error: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let policy: sio::FailurePolicy = on_error.parse().map_err(value_error)?;
    let config = sio::BatchConfig::new(image_config(
        Some(size),
        pix_fmt,
        interpolation,
        fit,
        apply_orientation,
    )?)
    .with_policy(policy);
    let sources = extract_all(srcs)?;
    let pool = cpu_pool(num_threads)?;
    let cancel = sio::Cancel::default();
    let config = config.with_cancel(cancel.clone());
    let batch =
        interruptible(py, &cancel, || pool.install(|| sio::load_image_batch(sources, &config)))?.map_err(io_error)?;
    let images = to_numpy(py, batch.images)?;
    if policy == sio::FailurePolicy::Strict {
        return Ok(images);
    }
    let failures: Vec<(String, String)> = batch.failures.into_iter().map(|(s, e)| (s, e.to_string())).collect();
    Ok((images, failures).into_pyobject(py)?.into_any())
}

/// The video settings of `load_video`, `sample_frames` and `stream_video`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn video_config(
    size: Option<(u32, u32)>,
    pix_fmt: &str,
    interpolation: &str,
    start: Option<f64>,
    end: Option<f64>,
    fps: Option<(i32, i32)>,
    num_threads: usize,
    apply_rotation: bool,
) -> PyResult<VideoConfig> {
    let mut config = VideoConfig::default()
        .with_pix_fmt(pix_fmt.parse().map_err(value_error)?)
        .with_interpolation(interpolation.parse().map_err(value_error)?)
        .with_threads(num_threads)
        .with_rotation(apply_rotation);
    if let Some((w, h)) = size {
        config = config.with_size(w, h);
    }
    (config.start, config.end) = (start, end);
    if let Some((num, den)) = fps {
        config = config.with_frame_rate(num, den);
    }
    config.validate().map_err(value_error)?;
    Ok(config)
}

/// Sets an FFmpeg filter chain (`filter_desc=`) and checks the result.
pub(crate) fn with_filter(config: &mut VideoConfig, filter_desc: Option<String>) -> PyResult<()> {
    config.filter = filter_desc;
    config.validate().map_err(value_error)
}

/// Frames as (N, H, W, C) uint8, plus pts in seconds when asked.
pub(crate) fn video_result<'py>(py: Python<'py>, video: sio::Video, return_pts: bool) -> PyResult<Bound<'py, PyAny>> {
    let frames = to_numpy(py, video.frames)?;
    if !return_pts {
        return Ok(frames);
    }
    let pts = video.pts.into_pyarray(py).into_any();
    Ok((frames, pts).into_pyobject(py)?.into_any())
}

/// `"cpu"`, `"cuda"` (device 0) or `"cuda:N"`.
fn decode_device(device: &str) -> PyResult<sio::media::Device> {
    use sio::media::Device;
    let index = match device {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => Some(0),
        _ => device.strip_prefix("cuda:").and_then(|n| n.parse().ok()),
    };
    index.map(Device::Cuda).ok_or_else(|| {
        pyo3::exceptions::PyValueError::new_err(format!(
            "device must be \"cpu\", \"cuda\" or \"cuda:N\", not {device:?}"
        ))
    })
}

/// Decodes a video (or the window `[start, end)` seconds of it). With
/// `device="cuda:N"` it decodes on NVDEC GPU N and copies frames to host
/// memory; without a usable device it decodes on the CPU and logs why
/// (a warning on the `spdl_io` logger).
#[pyfunction]
#[pyo3(signature = (src, *, size=None, pix_fmt="rgb24", interpolation="bilinear", start=None, end=None, fps=None, num_threads=1, apply_rotation=true, return_pts=false, trusted_input=false, filter_desc=None, device="cpu"))]
#[allow(clippy::too_many_arguments)]
fn load_video<'py>(
    py: Python<'py>,
    src: &Bound<'py, PyAny>,
    size: Option<(u32, u32)>,
    pix_fmt: &str,
    interpolation: &str,
    start: Option<f64>,
    end: Option<f64>,
    fps: Option<(i32, i32)>,
    num_threads: usize,
    apply_rotation: bool,
    return_pts: bool,
    trusted_input: bool,
    filter_desc: Option<String>,
    device: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let mut config = video_config(
        size,
        pix_fmt,
        interpolation,
        start,
        end,
        fps,
        num_threads,
        apply_rotation,
    )?;
    config.limits.trusted_input = trusted_input;
    config.decoder.device = decode_device(device)?;
    with_filter(&mut config, filter_desc)?;
    let source = extract(src)?;
    let video = off_gil(py, || sio::load_video(source, &config))?;
    video_result(py, video, return_pts)
}

/// Decodes only the frames at `indices` (presentation order).
#[pyfunction]
#[pyo3(signature = (src, indices, *, size=None, pix_fmt="rgb24", interpolation="bilinear", num_threads=1, apply_rotation=true, return_pts=false, trusted_input=false))]
#[allow(clippy::too_many_arguments)]
fn sample_frames<'py>(
    py: Python<'py>,
    src: &Bound<'py, PyAny>,
    indices: Vec<usize>,
    size: Option<(u32, u32)>,
    pix_fmt: &str,
    interpolation: &str,
    num_threads: usize,
    apply_rotation: bool,
    return_pts: bool,
    trusted_input: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let mut config = video_config(
        size,
        pix_fmt,
        interpolation,
        None,
        None,
        None,
        num_threads,
        apply_rotation,
    )?;
    config.limits.trusted_input = trusted_input;
    let source = extract(src)?;
    let video = off_gil(py, || sio::sample_frames(source, &indices, &config))?;
    video_result(py, video, return_pts)
}

pub(crate) fn audio_config(
    sample_rate: Option<u32>,
    channels: Option<u32>,
    start: Option<f64>,
    end: Option<f64>,
    layout: &str,
    backend: &str,
) -> PyResult<AudioConfig> {
    let mut config = AudioConfig::default().with_backend(backend.parse().map_err(value_error)?);
    (config.sample_rate, config.channels, config.start, config.end) = (sample_rate, channels, start, end);
    config.order = layout.parse().map_err(value_error)?;
    // Checked when made, so a native pipeline stage refuses it when built.
    config.validate().map_err(value_error)?;
    Ok(config)
}

/// Decodes audio to float32 (channels, samples) and its sample rate.
#[pyfunction]
#[pyo3(signature = (src, *, sample_rate=None, channels=None, start=None, end=None, layout="channels_first", backend="auto", trusted_input=false, filter_desc=None))]
#[allow(clippy::too_many_arguments)]
fn load_audio<'py>(
    py: Python<'py>,
    src: &Bound<'py, PyAny>,
    sample_rate: Option<u32>,
    channels: Option<u32>,
    start: Option<f64>,
    end: Option<f64>,
    layout: &str,
    backend: &str,
    trusted_input: bool,
    filter_desc: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut config = audio_config(sample_rate, channels, start, end, layout, backend)?;
    config.limits.trusted_input = trusted_input;
    config.filter = filter_desc;
    let source = extract(src)?;
    let audio = off_gil(py, || sio::load_audio(source, &config))?;
    Ok((to_numpy(py, audio.samples)?, audio.sample_rate)
        .into_pyobject(py)?
        .into_any())
}

/// One chunk of a streaming reader.
enum Chunk {
    Frames(Array4<u8>),
    Samples(Array2<f32>),
}

type Chunks = Box<dyn Iterator<Item = Result<Chunk, sio::Error>> + Send>;

/// An iterator over chunks of a long video or audio stream; each `next`
/// decodes with the GIL released. Memory stays bounded by one chunk.
#[pyclass(frozen, module = "spdl_rs.io")]
pub(crate) struct ChunkIterator {
    inner: Mutex<Chunks>,
}

#[pymethods]
impl ChunkIterator {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let next = off_gil(py, || Ok(self.inner.lock().map(|mut it| it.next()).unwrap_or(None)))?;
        match next {
            None => Ok(None),
            Some(Err(e)) => Err(io_error(e)),
            Some(Ok(Chunk::Frames(a))) => to_numpy(py, a).map(Some),
            Some(Ok(Chunk::Samples(a))) => to_numpy(py, a).map(Some),
        }
    }
}

fn chunks(py: Python<'_>, open: impl FnOnce() -> Result<Chunks, sio::Error> + Send) -> PyResult<ChunkIterator> {
    let inner = off_gil(py, open)?;
    Ok(ChunkIterator {
        inner: Mutex::new(inner),
    })
}

/// Streams a video in chunks of `chunk_frames` frames, (n, H, W, C) each.
#[pyfunction]
#[pyo3(signature = (src, chunk_frames, *, size=None, pix_fmt="rgb24", interpolation="bilinear", start=None, end=None, fps=None, num_threads=1, apply_rotation=true, trusted_input=false, filter_desc=None))]
#[allow(clippy::too_many_arguments)]
fn stream_video(
    py: Python<'_>,
    src: &Bound<'_, PyAny>,
    chunk_frames: usize,
    size: Option<(u32, u32)>,
    pix_fmt: &str,
    interpolation: &str,
    start: Option<f64>,
    end: Option<f64>,
    fps: Option<(i32, i32)>,
    num_threads: usize,
    apply_rotation: bool,
    trusted_input: bool,
    filter_desc: Option<String>,
) -> PyResult<ChunkIterator> {
    let mut config = video_config(
        size,
        pix_fmt,
        interpolation,
        start,
        end,
        fps,
        num_threads,
        apply_rotation,
    )?;
    config.limits.trusted_input = trusted_input;
    with_filter(&mut config, filter_desc)?;
    let source: Source = extract(src)?;
    chunks(py, move || {
        let it = sio::stream_video(source, &config, chunk_frames)?;
        Ok(Box::new(it.map(|r| r.map(|v| Chunk::Frames(v.frames)))) as Chunks)
    })
}

/// Streams audio in chunks of `chunk_samples` samples per channel.
#[pyfunction]
#[pyo3(signature = (src, chunk_samples, *, sample_rate=None, channels=None, start=None, end=None, layout="channels_first", trusted_input=false, filter_desc=None))]
#[allow(clippy::too_many_arguments)]
fn stream_audio(
    py: Python<'_>,
    src: &Bound<'_, PyAny>,
    chunk_samples: usize,
    sample_rate: Option<u32>,
    channels: Option<u32>,
    start: Option<f64>,
    end: Option<f64>,
    layout: &str,
    trusted_input: bool,
    filter_desc: Option<String>,
) -> PyResult<ChunkIterator> {
    let mut config = audio_config(sample_rate, channels, start, end, layout, "ffmpeg")?;
    config.limits.trusted_input = trusted_input;
    config.filter = filter_desc;
    let source: Source = extract(src)?;
    chunks(py, move || {
        let it = sio::stream_audio(source, &config, chunk_samples)?;
        Ok(Box::new(it.map(|r| r.map(|a| Chunk::Samples(a.samples)))) as Chunks)
    })
}

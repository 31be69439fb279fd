//! `spdl_rs.pipeline`: the Rust pipeline driven from Python.
//!
//! Items are Python objects or native values (sources, arrays, shard
//! samples, groups; `item`). Python-callable stages run on the pipeline's
//! CPU threads and hold the GIL only while the callable runs; `async def`
//! stages run on the run's event loop (`crate::aio`); native stages
//! (decode, collate) never take the GIL; iterating releases it while it
//! waits (`run`). Sources are Python iterables, samplers and tar shards
//! (`feed`), or merges of them.

mod feed;
mod item;
mod run;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use spdl::io::{self as sio, ImageConfig, Source};
use spdl::pipeline::{self as sp, FailureBudget, MergePolicy, PipelineConfig, StageConfig};

use crate::aio::{call_async, EventLoop};
use crate::errors::pipeline_error;
use crate::io::{audio_config, image_config, video_config, with_filter};
use crate::pools::with_python;
use feed::{shard_items, DistributedSampler, PythonItems, SourceError};
pub(crate) use item::Item;
use item::{collate, elements, ListAggregator};
use run::{Pipeline, PipelineRun, PipelineStats};

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PipelineBuilder>()?;
    m.add_class::<Pipeline>()?;
    m.add_class::<PipelineRun>()?;
    m.add_class::<PipelineStats>()?;
    m.add_class::<DistributedSampler>()?;
    Ok(())
}

type Builder = sp::PipelineBuilder<Item, Item>;

/// Builds a pipeline: a source, stages, and a sink.
///
/// Methods return the builder, so calls chain; `build()` consumes it.
#[pyclass(frozen, module = "spdl_rs.pipeline")]
struct PipelineBuilder {
    inner: Mutex<Option<Builder>>,
    /// Nothing added yet: the only state in which `add_source` may come.
    empty: AtomicBool,
    /// The event loop of this builder's `async def` stages and async source.
    aio: Arc<EventLoop>,
    /// The loops runs must hold: `aio` once something async was added, and
    /// those of merged pipelines and route branches.
    loops: Mutex<Vec<Arc<EventLoop>>>,
    /// A source was added (a route branch must have none).
    has_source: AtomicBool,
    /// The exception a Python source raised, for the run's error.
    source_error: SourceError,
}

fn stage(name: &str, concurrency: usize, ordered: bool, timeout: Option<Duration>) -> StageConfig {
    let cfg = StageConfig::new(name)
        .with_concurrency(concurrency.max(1))
        .with_ordered(ordered);
    with_timeout(cfg, timeout)
}

fn with_timeout(cfg: StageConfig, timeout: Option<Duration>) -> StageConfig {
    match timeout {
        Some(t) => cfg.with_timeout(t),
        None => cfg,
    }
}

/// A function of `spdl_rs._aio`.
fn aio_helper<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("spdl_rs._aio")?.getattr(name)
}

/// A stage timeout in seconds: positive and finite, or `inf` for none.
fn stage_timeout(seconds: Option<f64>) -> PyResult<Option<Duration>> {
    match seconds {
        None => Ok(None),
        Some(t) if t == f64::INFINITY => Ok(None),
        Some(t) => Duration::try_from_secs_f64(t)
            .ok()
            .filter(|d| !d.is_zero())
            .map(Some)
            .ok_or_else(|| PyValueError::new_err(format!("timeout must be a positive number of seconds, not {t}"))),
    }
}

/// Calls a Python stage function on a CPU thread, with the GIL held only
/// around the call; refuses once the interpreter is shutting down. `out`
/// turns what the function returned into the stage's output.
fn call_python<R>(f: &Py<PyAny>, item: Item, out: impl FnOnce(Bound<'_, PyAny>) -> PyResult<R>) -> Result<R, String> {
    with_python(|py| {
        let arg = item.into_py(py)?;
        out(f.call1(py, (arg,))?.into_bound(py))
    })
    .ok_or_else(|| "the Python interpreter is shutting down".to_string())?
    .map_err(|e| e.to_string())
}

/// A sync stage's output; an awaitable is refused (a function returning a
/// coroutine without being `async def` would pass coroutines on).
fn one_output(out: Bound<'_, PyAny>) -> PyResult<Item> {
    if out.hasattr("__await__")? {
        // Closed so Python does not warn that it was never awaited.
        if out.hasattr("close")? {
            out.call_method0("close")?;
        }
        return Err(PyTypeError::new_err(
            "the stage returned an awaitable: declare the function `async def` so the pipeline awaits it",
        ));
    }
    Ok(Item::from_py(out))
}

/// A generator stage's outputs (every item it yields).
fn all_outputs(out: Bound<'_, PyAny>) -> PyResult<Vec<Item>> {
    out.try_iter()?.map(|o| o.map(Item::from_py)).collect()
}

impl PipelineBuilder {
    /// Adds a native stage: `decode` runs on the CPU pool on each item's
    /// source (or its field `key` for shard samples), never taking the GIL.
    fn native(
        slf: &Bound<'_, Self>,
        cfg: StageConfig,
        key: Option<String>,
        decode: impl Fn(Source) -> Result<Item, sio::Error> + Send + Sync + 'static,
    ) -> PyResult<Py<Self>> {
        Self::update(slf, move |b| {
            b.pipe_blocking(move |item: Item| item.decode(key.as_deref(), &decode), cfg)
        })
    }

    /// Starts the chain at a source made by `make` (the builder must be
    /// empty).
    fn source(slf: &Bound<'_, Self>, make: impl FnOnce(Builder) -> Builder) -> PyResult<Py<Self>> {
        slf.get().has_source.store(true, Ordering::SeqCst);
        if !slf.get().empty.swap(false, Ordering::SeqCst) {
            return Err(PyValueError::new_err(
                "a source (add_source, add_shards, add_merged_*) must be the builder's first call, and its only source",
            ));
        }
        Self::update(slf, make)
    }

    /// A maker of the per-epoch iterator over a Python iterable (an async
    /// one through this builder's event loop).
    fn python_items(
        slf: &Bound<'_, Self>,
        iterable: Py<PyAny>,
    ) -> PyResult<impl Fn() -> PythonItems + Send + Sync + 'static> {
        let py = slf.py();
        let is_async = aio_helper(py, "is_async_iterable")?.call1((&iterable,))?.is_truthy()?;
        if !is_async {
            iterable.bind(py).try_iter()?; // a TypeError now, not an empty run
        }
        let aio = is_async.then(|| slf.get().aio.clone());
        if let Some(aio) = &aio {
            slf.get().hold([aio.clone()]);
        }
        let iterable = Arc::new(iterable);
        let raised = slf.get().source_error.clone();
        Ok(move || PythonItems::new(iterable.clone(), aio.clone(), raised.clone()))
    }

    /// Records event loops that this pipeline's runs must hold.
    fn hold(&self, loops: impl IntoIterator<Item = Arc<EventLoop>>) {
        let mut held = self.loops.lock().unwrap_or_else(|e| e.into_inner());
        for aio in loops {
            if !held.iter().any(|h| Arc::ptr_eq(h, &aio)) {
                held.push(aio);
            }
        }
    }

    /// Applies `f` to the builder, which must still be unbuilt.
    fn update(slf: &Bound<'_, Self>, f: impl FnOnce(Builder) -> Builder) -> PyResult<Py<Self>> {
        let this = slf.get();
        let mut slot = this
            .inner
            .lock()
            .map_err(|_| PyRuntimeError::new_err("builder lock poisoned"))?;
        let builder = slot
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("this builder was already built"))?;
        this.empty.store(false, Ordering::SeqCst);
        *slot = Some(f(builder));
        Ok(slf.clone().unbind())
    }
}

#[pymethods]
impl PipelineBuilder {
    #[new]
    fn new() -> Self {
        PipelineBuilder {
            inner: Mutex::new(Some(sp::PipelineBuilder::branch())),
            empty: AtomicBool::new(true),
            aio: Arc::default(),
            loops: Mutex::default(),
            has_source: AtomicBool::new(false),
            source_error: SourceError::default(),
        }
    }

    /// Items from a Python iterable or async iterable, iterated again for
    /// every epoch, or a `DistributedSampler`'s indices for each epoch.
    /// Strings and bytes stay native (for the decode stages).
    fn add_source(slf: &Bound<'_, Self>, iterable: Py<PyAny>) -> PyResult<Py<Self>> {
        let py = slf.py();
        if let Ok(sampler) = iterable.bind(py).cast::<DistributedSampler>() {
            let sampler = sampler.get().inner;
            return Self::source(slf, move |_| {
                sp::PipelineBuilder::new()
                    .add_source_fn(move |epoch| sampler.indices(epoch).into_iter().map(|i| Item::Index(i as u64)))
            });
        }
        let items = Self::python_items(slf, iterable)?;
        Self::source(slf, move |_| {
            sp::PipelineBuilder::new().add_try_source_fn(move |_| items())
        })
    }

    /// The samples of webdataset-style tar shards (paths or URLs, read in
    /// order, streamed without extracting): dicts with `__key__`, `__url__`
    /// and one bytes value per field (`"jpg"`, `"cls"`); decode stages take
    /// a field with `key=`. A shard that cannot be read, or a broken
    /// member, is dropped as a failure of the stage `"shards"` naming the
    /// shard and member; the other shards are still read. With `sampler`
    /// (a `DistributedSampler` over the shards), each epoch reads this
    /// rank's shards in the sampler's order for that epoch.
    #[pyo3(signature = (shards, *, max_member_bytes=1 << 30, sampler=None))]
    fn add_shards(
        slf: &Bound<'_, Self>,
        shards: &Bound<'_, PyAny>,
        max_member_bytes: u64,
        sampler: Option<PyRef<'_, DistributedSampler>>,
    ) -> PyResult<Py<Self>> {
        let shards = crate::sources::extract_all(shards)?;
        let sampler = sampler.map(|s| s.inner);
        if let Some(s) = sampler.filter(|s| s.dataset_len() != shards.len()) {
            return Err(PyValueError::new_err(format!(
                "the sampler is over {} items, there are {} shards",
                s.dataset_len(),
                shards.len()
            )));
        }
        let shards = Arc::new(shards);
        Self::source(slf, move |_| {
            let samples = sp::PipelineBuilder::new().add_source_fn(move |epoch| {
                let order = match sampler {
                    Some(s) => s.indices(epoch).into_iter().map(|i| shards[i].clone()).collect(),
                    None => shards.to_vec(),
                };
                shard_items(Arc::new(order), max_member_bytes)
            });
            with_failed_dropped(samples, "shards")
        })
    }

    /// Several Python iterables (sync or async) merged into one source:
    /// round-robin, or with `weights` a seeded random pick per item (the
    /// order depends only on `seed` and the epoch). An exception in any of
    /// them ends the run with `PipelineFailure`.
    #[pyo3(signature = (iterables, *, weights=None, seed=0))]
    fn add_merged_sources(
        slf: &Bound<'_, Self>,
        iterables: Vec<Py<PyAny>>,
        weights: Option<Vec<f64>>,
        seed: u64,
    ) -> PyResult<Py<Self>> {
        let policy = merge_policy(iterables.len(), weights, seed)?;
        let sources = iterables
            .into_iter()
            .map(|it| Self::python_items(slf, it))
            .collect::<PyResult<Vec<_>>>()?;
        let sources = Arc::new(sources);
        Self::source(slf, move |_| {
            sp::PipelineBuilder::new().add_try_source_fn(move |epoch| {
                sp::Merge::new(sources.iter().map(|s| s()).collect(), policy.clone(), epoch)
            })
        })
    }

    /// Built pipelines merged into one source: epoch `e` runs epoch `e` of
    /// each and interleaves their outputs (round-robin, or by `weights`
    /// with `seed`). Every item a merged pipeline dropped is reported by
    /// this one as a failure of the stage `"merge"`.
    #[pyo3(signature = (pipelines, *, weights=None, seed=0))]
    fn add_merged_pipelines(
        slf: &Bound<'_, Self>,
        pipelines: Vec<PyRef<'_, Pipeline>>,
        weights: Option<Vec<f64>>,
        seed: u64,
    ) -> PyResult<Py<Self>> {
        let policy = merge_policy(pipelines.len(), weights, seed)?;
        for p in &pipelines {
            p.check_process()?;
            slf.get().hold(p.loops.iter().cloned());
        }
        let inners: Vec<_> = pipelines.iter().map(|p| p.shared().clone()).collect();
        Self::source(slf, move |_| {
            let runs = move |epoch| sp::merge_runs(&inners, &policy, epoch).map(|r| r.unwrap_or_else(Item::failed));
            with_failed_dropped(sp::PipelineBuilder::new().add_source_fn(runs), "merge")
        })
    }

    /// A Python-callable stage: `fn(item) -> item`, run on up to
    /// `concurrency` CPU threads, holding the GIL only while it runs; an
    /// `async def` function is awaited on the run's event loop (up to
    /// `concurrency` coroutines in flight); a generator function (sync or
    /// async) passes on every item it yields. An exception, a timeout or a
    /// cancellation drops the item and is reported in `failures()`; more
    /// than `max_failures` of them in this stage (a count, or a fraction
    /// of its items) stop the run. As in SPDL, a container (dict, list)
    /// instead of a function maps each item through `container[item]`, and
    /// `output_order="input"` is `ordered=True`.
    #[pyo3(signature = (fn_, *, concurrency=1, name=None, ordered=false, timeout=None, max_failures=None, output_order=None))]
    #[allow(clippy::too_many_arguments)]
    fn pipe(
        slf: &Bound<'_, Self>,
        fn_: Py<PyAny>,
        concurrency: usize,
        name: Option<String>,
        ordered: bool,
        timeout: Option<f64>,
        max_failures: Option<&Bound<'_, PyAny>>,
        output_order: Option<&str>,
    ) -> PyResult<Py<Self>> {
        let py = slf.py();
        let ordered = match output_order {
            None => ordered,
            Some("input") => true,
            Some("completion") => false,
            Some(other) => {
                return Err(PyValueError::new_err(format!(
                    "output_order must be \"completion\" or \"input\", not {other:?}"
                )))
            }
        };
        let fn_ = if fn_.bind(py).is_callable() {
            fn_
        } else {
            fn_.bind(py)
                .getattr("__getitem__")
                .map_err(|_| {
                    PyTypeError::new_err("pipe takes a callable, or a container (dict, list) to look items up in")
                })?
                .unbind()
        };
        let name = match name {
            Some(n) => n,
            None => fn_
                .bind(py)
                .getattr("__name__")
                .map_or("python".into(), |n| n.to_string()),
        };
        let timeout = stage_timeout(timeout)?;
        let kind: String = aio_helper(py, "kind")?.call1((&fn_,))?.extract()?;
        let mut cfg = stage(&name, concurrency, ordered, None);
        if let Some(budget) = max_failures.map(failure_budget).transpose()? {
            cfg = cfg.with_budget(budget);
        }
        let fn_ = Arc::new(fn_);
        let aio = slf.get().aio.clone();
        match kind.as_str() {
            "async" | "asyncgen" => {
                slf.get().hold([aio.clone()]);
                let secs = timeout.map(|t| t.as_secs_f64());
                let many = kind == "asyncgen";
                let call = move |item| call_async(aio.clone(), fn_.clone(), item, secs, many);
                if !many {
                    Self::update(slf, move |b| b.pipe(call, cfg))
                } else {
                    let many = move |item| {
                        let out = call(item);
                        async move { out.await.and_then(Item::elements_of_list) }
                    };
                    Self::update(slf, move |b| b.pipe(many, cfg).disaggregate())
                }
            }
            "gen" => {
                let cfg = with_timeout(cfg, timeout);
                Self::update(slf, move |b| {
                    b.pipe_blocking(move |item| call_python(&fn_, item, all_outputs), cfg)
                        .disaggregate()
                })
            }
            _ => {
                let cfg = with_timeout(cfg, timeout);
                Self::update(slf, move |b| {
                    b.pipe_blocking(move |item| call_python(&fn_, item, one_output), cfg)
                })
            }
        }
    }

    /// A native stage decoding each item (path, URL or bytes) to an
    /// (H, W, C) uint8 image without the GIL.
    #[pyo3(signature = (*, size=None, pix_fmt="rgb24", interpolation="bilinear", fit="stretch", apply_orientation=true, concurrency=1, ordered=false, name="decode_image", key=None))]
    #[allow(clippy::too_many_arguments)]
    fn decode_image(
        slf: &Bound<'_, Self>,
        size: Option<(u32, u32)>,
        pix_fmt: &str,
        interpolation: &str,
        fit: &str,
        apply_orientation: bool,
        concurrency: usize,
        ordered: bool,
        name: &str,
        key: Option<String>,
    ) -> PyResult<Py<Self>> {
        let config: ImageConfig = image_config(size, pix_fmt, interpolation, fit, apply_orientation)?;
        let cfg = stage(name, concurrency, ordered, None);
        Self::native(slf, cfg, key, move |src| sio::load_image(src, &config).map(Item::Image))
    }

    /// A native stage decoding each item's video to (N, H, W, C) uint8.
    #[pyo3(signature = (*, size=None, pix_fmt="rgb24", num_threads=1, concurrency=1, ordered=false, name="decode_video", key=None, filter_desc=None))]
    #[allow(clippy::too_many_arguments)]
    fn decode_video(
        slf: &Bound<'_, Self>,
        size: Option<(u32, u32)>,
        pix_fmt: &str,
        num_threads: usize,
        concurrency: usize,
        ordered: bool,
        name: &str,
        key: Option<String>,
        filter_desc: Option<String>,
    ) -> PyResult<Py<Self>> {
        let mut config = video_config(size, pix_fmt, "bilinear", None, None, None, num_threads, true)?;
        with_filter(&mut config, filter_desc)?;
        let cfg = stage(name, concurrency, ordered, None);
        Self::native(slf, cfg, key, move |src| {
            sio::load_video(src, &config).map(|v| Item::Frames(v.frames))
        })
    }

    /// A native stage picking frames of each item's video without the GIL:
    /// the frames at `indices`, or `num_frames` evenly spaced over the
    /// whole video (one at the middle of each of `num_frames` equal
    /// segments), as (T, H, W, C) uint8; `collate` stacks clips into
    /// (B, T, H, W, C).
    #[pyo3(signature = (indices=None, *, num_frames=None, size=None, pix_fmt="rgb24", num_threads=1, concurrency=1, ordered=false, name="sample_frames", key=None))]
    #[allow(clippy::too_many_arguments)]
    fn sample_frames(
        slf: &Bound<'_, Self>,
        indices: Option<Vec<usize>>,
        num_frames: Option<usize>,
        size: Option<(u32, u32)>,
        pix_fmt: &str,
        num_threads: usize,
        concurrency: usize,
        ordered: bool,
        name: &str,
        key: Option<String>,
    ) -> PyResult<Py<Self>> {
        let pick: Arc<dyn Fn(usize) -> Vec<usize> + Send + Sync> = match (indices, num_frames) {
            (Some(indices), None) => Arc::new(move |_| indices.clone()),
            (None, Some(n)) if n > 0 => Arc::new(move |frames| sio::video::evenly_spaced(frames, n)),
            _ => {
                return Err(PyValueError::new_err(
                    "sample_frames takes either indices or num_frames (at least 1)",
                ))
            }
        };
        let config = video_config(size, pix_fmt, "bilinear", None, None, None, num_threads, true)?;
        let cfg = stage(name, concurrency, ordered, None);
        Self::native(slf, cfg, key, move |src| {
            let name = src.name();
            let video = sio::video::sample_frames_by(src, |frames| pick(frames), &config)?;
            if video.is_empty() {
                return Err(sio::Error::InvalidConfig(format!(
                    "{name}: the video has no frames to sample"
                )));
            }
            Ok(Item::Frames(video.frames))
        })
    }

    /// A native stage cutting clips from each item's video without the
    /// GIL: `num_clips` clips of `frames_per_clip` frames `stride` apart,
    /// spread evenly, or at random when `seed` is given (mixed with the
    /// item's name, so videos differ and reruns repeat). One clip comes
    /// out as (T, H, W, C), so `collate` gives (B, T, H, W, C); several as
    /// (N, T, H, W, C).
    #[pyo3(signature = (num_clips=1, frames_per_clip=8, *, stride=1, seed=None, size=None, pix_fmt="rgb24", num_threads=1, concurrency=1, ordered=false, name="sample_clips", key=None))]
    #[allow(clippy::too_many_arguments)]
    fn sample_clips(
        slf: &Bound<'_, Self>,
        num_clips: usize,
        frames_per_clip: usize,
        stride: usize,
        seed: Option<u64>,
        size: Option<(u32, u32)>,
        pix_fmt: &str,
        num_threads: usize,
        concurrency: usize,
        ordered: bool,
        name: &str,
        key: Option<String>,
    ) -> PyResult<Py<Self>> {
        let sampling = sio::video::ClipSampling::default()
            .with_clips(num_clips)
            .with_frames_per_clip(frames_per_clip)
            .with_stride(stride);
        if num_clips == 0 || frames_per_clip == 0 || stride == 0 {
            return Err(PyValueError::new_err(
                "sample_clips needs num_clips, frames_per_clip and stride of at least 1",
            ));
        }
        let config = video_config(size, pix_fmt, "bilinear", None, None, None, num_threads, true)?;
        let cfg = stage(name, concurrency, ordered, None);
        Self::native(slf, cfg, key, move |src| {
            let mut sampling = sampling.clone();
            sampling.random = seed.map(|s| s ^ name_hash(&src.name()));
            let clips = sio::video::VideoReader::open(src, &config)?.get_clips(&sampling)?;
            match clips.frames.shape()[0] {
                1 => Ok(Item::Frames(clips.frames.index_axis_move(ndarray::Axis(0), 0))),
                _ => Ok(Item::Clips(clips.frames)),
            }
        })
    }

    /// A native stage reading each item (a `.npy` path, URL or bytes, or a
    /// shard sample's field with `key=`) as a NumPy array of its own dtype,
    /// without the GIL; `collate` stacks them.
    #[pyo3(signature = (*, concurrency=1, ordered=false, name="decode_npy", key=None))]
    fn decode_npy(
        slf: &Bound<'_, Self>,
        concurrency: usize,
        ordered: bool,
        name: &str,
        key: Option<String>,
    ) -> PyResult<Py<Self>> {
        let cfg = stage(name, concurrency, ordered, None);
        Self::native(slf, cfg, key, move |src| sio::npy::load_npy(src).map(Item::Array))
    }

    /// A native stage decoding each item's audio to float32 (channels,
    /// samples), optionally resampled and remixed, without the GIL.
    #[pyo3(signature = (*, sample_rate=None, channels=None, backend="auto", concurrency=1, ordered=false, name="decode_audio", key=None, filter_desc=None))]
    #[allow(clippy::too_many_arguments)]
    fn decode_audio(
        slf: &Bound<'_, Self>,
        sample_rate: Option<u32>,
        channels: Option<u32>,
        backend: &str,
        concurrency: usize,
        ordered: bool,
        name: &str,
        key: Option<String>,
        filter_desc: Option<String>,
    ) -> PyResult<Py<Self>> {
        let mut config = audio_config(sample_rate, channels, None, None, "channels_first", backend)?;
        config.filter = filter_desc;
        let cfg = stage(name, concurrency, ordered, None);
        Self::native(slf, cfg, key, move |src| {
            sio::load_audio(src, &config).map(|a| Item::Audio(a.samples))
        })
    }

    /// Groups items into lists of `n` (the last may be shorter unless
    /// `drop_last`).
    #[pyo3(signature = (n, *, drop_last=false))]
    fn aggregate(slf: &Bound<'_, Self>, n: usize, drop_last: bool) -> PyResult<Py<Self>> {
        if n == 0 {
            return Err(PyValueError::new_err("aggregate needs n >= 1"));
        }
        Self::update(slf, move |b| {
            b.aggregate_by("aggregate", move || ListAggregator {
                n,
                drop_last,
                group: Vec::new(),
            })
        })
    }

    /// Splits each item into its elements: the lists `aggregate` makes
    /// (without the GIL) or any other Python iterable a stage returned.
    #[pyo3(signature = (*, name="disaggregate"))]
    fn disaggregate(slf: &Bound<'_, Self>, name: &str) -> PyResult<Py<Self>> {
        let cfg = stage(name, 1, true, None);
        Self::update(slf, move |b| b.pipe_blocking(elements, cfg).disaggregate())
    }

    /// A native stage stacking each aggregated group of images into one
    /// (N, H, W, C) array, without the GIL.
    #[pyo3(signature = (*, concurrency=1, ordered=false, name="collate"))]
    fn collate(slf: &Bound<'_, Self>, concurrency: usize, ordered: bool, name: &str) -> PyResult<Py<Self>> {
        let cfg = stage(name, concurrency, ordered, None);
        Self::update(slf, move |b| b.pipe_blocking(collate, cfg))
    }

    /// Sends each item to the branch `select(item)` picks (an int, taken
    /// modulo the number of branches) and merges the branches' outputs in
    /// completion order. Branches are builders without a source
    /// (`PipelineBuilder()` followed by stages); `select` runs with the
    /// GIL, once per item. An exception in it drops the item as a failure
    /// of the stage `"route"`.
    fn route(
        slf: &Bound<'_, Self>,
        select: Py<PyAny>,
        branches: Vec<PyRef<'_, PipelineBuilder>>,
    ) -> PyResult<Py<Self>> {
        if branches.is_empty() {
            return Err(PyValueError::new_err("route needs at least one branch"));
        }
        let mut chains = Vec::with_capacity(branches.len());
        for branch in &branches {
            if branch.has_source.load(Ordering::SeqCst) {
                return Err(PyValueError::new_err("a route branch must not have a source"));
            }
            let chain = branch
                .inner
                .lock()
                .ok()
                .and_then(|mut b| b.take())
                .ok_or_else(|| PyRuntimeError::new_err("a route branch was already built or used"))?;
            chains.push(chain);
            let loops = branch.loops.lock().map(|l| l.clone()).unwrap_or_default();
            slf.get().hold(loops);
        }
        let branches = chains.len() as i64;
        let select = move |item: &Item| -> usize { route_index(&select, item, branches) };
        Self::update(slf, move |b| b.route(select, chains))
    }

    /// Sets the output queue's capacity (the items buffered ahead of the
    /// consumer).
    #[pyo3(signature = (capacity=16))]
    fn add_sink(slf: &Bound<'_, Self>, capacity: usize) -> PyResult<Py<Self>> {
        Self::update(slf, move |b| b.add_sink(capacity))
    }

    /// Builds the pipeline. `num_threads` sizes the CPU pool (0: one per
    /// core); `max_failures` stops a run after that many dropped items
    /// (default: never; every drop is still reported).
    #[pyo3(signature = (*, num_threads=0, max_failures=None, report_stats_interval=None))]
    fn build(
        &self,
        py: Python<'_>,
        num_threads: usize,
        max_failures: Option<&Bound<'_, PyAny>>,
        report_stats_interval: Option<f64>,
    ) -> PyResult<Pipeline> {
        let builder = self
            .inner
            .lock()
            .ok()
            .and_then(|mut b| b.take())
            .ok_or_else(|| PyRuntimeError::new_err("this builder was already built"))?;
        let mut config = PipelineConfig::default();
        if num_threads > crate::pools::MAX_THREADS {
            return Err(PyValueError::new_err(format!(
                "num_threads is {num_threads}, over the maximum of {}",
                crate::pools::MAX_THREADS
            )));
        }
        if num_threads > 0 {
            config.cpu_threads = num_threads;
        }
        if let Some(budget) = max_failures.map(failure_budget).transpose()? {
            config.budget = budget;
        }
        config = config.with_report_interval(stage_timeout(report_stats_interval)?);
        let pipeline = py
            .detach(|| builder.with_config(config).build())
            .map_err(pipeline_error)?;
        Ok(Pipeline {
            inner: Some(Arc::new(pipeline)),
            pid: std::process::id(),
            loops: self.loops.lock().map(|l| l.clone()).unwrap_or_default(),
            source_error: self.source_error.clone(),
        })
    }
}

/// A merge policy for `n` sources: round-robin, or weighted with a seed.
fn merge_policy(n: usize, weights: Option<Vec<f64>>, seed: u64) -> PyResult<MergePolicy> {
    if n == 0 {
        return Err(PyValueError::new_err("merging needs at least one source"));
    }
    match weights {
        None => Ok(MergePolicy::RoundRobin),
        Some(w) if w.len() != n => Err(PyValueError::new_err(format!("{} weights for {n} sources", w.len()))),
        Some(w) if w.iter().any(|x| !x.is_finite() || *x < 0.0) || w.iter().sum::<f64>() <= 0.0 => Err(
            PyValueError::new_err("weights must be finite, non-negative, and not all zero"),
        ),
        Some(weights) => Ok(MergePolicy::Weighted { weights, seed }),
    }
}

/// The branch `select` picks for `item`: the Python call's int result
/// modulo `branches`, as Python computes it. A failure unwinds, which the
/// route stage reports as the item's failure.
fn route_index(select: &Py<PyAny>, item: &Item, branches: i64) -> usize {
    let picked = with_python(|py| -> PyResult<i64> {
        let arg = item.peek(py)?;
        select.call1(py, (arg,))?.extract(py)
    });
    // Unwinding without the panic hook: no "thread panicked" line per item.
    let fail = |reason: String| -> ! { std::panic::resume_unwind(Box::new(reason)) };
    match picked {
        Some(Ok(i)) => i.rem_euclid(branches) as usize, // Python's modulo
        Some(Err(e)) => fail(format!("route select failed: {e}")),
        None => fail("the Python interpreter is shutting down".into()),
    }
}

/// Adds the stage `name` that drops each `Item::Failed` as a reported
/// failure (what a native source could not read).
fn with_failed_dropped(b: Builder, name: &str) -> Builder {
    let drop_failed = |item| async move {
        match item {
            Item::Failed(reason) => Err(reason),
            item => Ok(item),
        }
    };
    b.pipe(drop_failed, StageConfig::new(name))
}

/// A failure budget from Python: an int is a count (negative: unlimited,
/// as SPDL's -1), a float or `fractions.Fraction` in [0, 1] a rate of the
/// items seen (checked after 10 items).
fn failure_budget(value: &Bound<'_, PyAny>) -> PyResult<FailureBudget> {
    if let Ok(n) = value.extract::<i64>() {
        return Ok(u64::try_from(n).map_or_else(|_| FailureBudget::default(), FailureBudget::count));
    }
    let rate: f64 = value
        .extract()
        .map_err(|_| PyTypeError::new_err("max_failures is an int (a count) or a fraction in [0, 1] (a rate)"))?;
    if !(0.0..=1.0).contains(&rate) {
        return Err(PyValueError::new_err(format!(
            "max_failures as a rate must be in [0, 1], not {rate}"
        )));
    }
    Ok(FailureBudget::rate(rate, 10))
}

/// FNV-1a of a source name: a stable per-item seed for random clips.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

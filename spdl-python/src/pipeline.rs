//! `spdl_rs.pipeline`: the Rust pipeline driven from Python.
//!
//! Items are Python objects or native values (sources, arrays, lists).
//! Python-callable stages run on the pipeline's CPU threads and hold the
//! GIL only while the callable runs; native stages (image/video/audio
//! decode, collate) never take it; iterating releases the GIL while it
//! waits. Stats and the failure report are readable while and after it
//! runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ndarray::{Array2, Array3, Array4, Axis};
use numpy::IntoPyArray;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};
use spdl::io::{self as sio, ImageConfig, Source};
use spdl::pipeline::{self as sp, FailureBudget, PipelineConfig, StageConfig};

use crate::aio::{call_async, EventLoop, LoopLease};
use crate::errors::pipeline_error;
use crate::io::{audio_config, image_config, video_config};
use crate::pools::with_python;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PipelineBuilder>()?;
    m.add_class::<Pipeline>()?;
    m.add_class::<PipelineRun>()?;
    Ok(())
}

/// A value moving through the pipeline.
pub(crate) enum Item {
    /// Any Python object (GIL needed to touch it).
    Object(Py<PyAny>),
    /// A path, URL or bytes: what native decode stages take.
    Source(Source),
    /// A decoded image (H, W, C).
    Image(Array3<u8>),
    /// Video frames or a collated batch (N, H, W, C).
    Frames(Array4<u8>),
    /// Decoded audio, float32 (channels, samples).
    Audio(Array2<f32>),
    /// A group from `aggregate`.
    List(Vec<Item>),
}

impl Item {
    /// Wraps a Python object, keeping strings, paths and bytes as native
    /// sources so decode stages need no GIL.
    pub(crate) fn from_py(obj: Bound<'_, PyAny>) -> Item {
        let native = obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>();
        match native.then(|| crate::sources::extract(&obj)) {
            Some(Ok(source)) => Item::Source(source),
            _ => Item::Object(obj.unbind()),
        }
    }

    pub(crate) fn into_py(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(match self {
            Item::Object(o) => o,
            Item::Source(Source::Bytes { data, .. }) => PyBytes::new(py, &data).into_any().unbind(),
            Item::Source(s) => PyString::new(py, &s.name()).into_any().unbind(),
            Item::Image(a) => a.into_pyarray(py).into_any().unbind(),
            Item::Frames(a) => a.into_pyarray(py).into_any().unbind(),
            Item::Audio(a) => a.into_pyarray(py).into_any().unbind(),
            Item::List(items) => {
                let objs = items.into_iter().map(|i| i.into_py(py)).collect::<PyResult<Vec<_>>>()?;
                PyList::new(py, objs)?.into_any().unbind()
            }
        })
    }

    /// The items of an `Item::List` (an async generator stage's outputs).
    fn elements_of_list(self) -> Result<Vec<Item>, String> {
        match self {
            Item::List(items) => Ok(items),
            _ => Err("expected the list of a generator's outputs".into()),
        }
    }

    fn source(self) -> Result<Source, String> {
        match self {
            Item::Source(s) => Ok(s),
            _ => Err("a native decode stage needs a str path/URL or bytes item".into()),
        }
    }
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
    /// The event loop of `async def` stages and async sources.
    aio: Arc<EventLoop>,
    /// Whether a stage or the source is async (runs then hold the loop).
    needs_loop: AtomicBool,
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

/// Stacks a group of same-shaped images (or frame arrays) into one batch.
fn collate(item: Item) -> Result<Item, String> {
    let Item::List(items) = item else {
        return Err("collate needs the groups made by aggregate()".into());
    };
    let views: Vec<_> = items
        .iter()
        .map(|i| match i {
            Item::Image(a) => Ok(a.view().insert_axis(Axis(0))),
            Item::Frames(a) => Ok(a.view()),
            _ => Err("collate takes decoded images or frames".to_string()),
        })
        .collect::<Result<_, _>>()?;
    ndarray::concatenate(Axis(0), &views)
        .map(Item::Frames)
        .map_err(|e| format!("cannot stack items of different shapes: {e}"))
}

impl PipelineBuilder {
    /// Adds a native stage: `decode` runs on the CPU pool on each item's
    /// source, never taking the GIL.
    fn native(
        slf: &Bound<'_, Self>,
        cfg: StageConfig,
        decode: impl Fn(Source) -> Result<Item, sio::Error> + Send + Sync + 'static,
    ) -> PyResult<Py<Self>> {
        Self::update(slf, move |b| {
            b.pipe_blocking(move |item: Item| decode(item.source()?).map_err(|e| e.to_string()), cfg)
        })
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
            needs_loop: AtomicBool::new(false),
        }
    }

    /// Items from a Python iterable or async iterable, iterated again for
    /// every epoch. Strings and bytes stay native (for the decode stages).
    fn add_source(slf: &Bound<'_, Self>, iterable: Py<PyAny>) -> PyResult<Py<Self>> {
        let py = slf.py();
        let is_async = aio_helper(py, "is_async_iterable")?.call1((&iterable,))?.is_truthy()?;
        if !is_async {
            iterable.bind(py).try_iter()?; // a TypeError now, not an empty run
        }
        if !slf.get().empty.swap(false, Ordering::SeqCst) {
            return Err(PyValueError::new_err(
                "add_source must be the builder's first call, and its only source",
            ));
        }
        let aio = is_async.then(|| slf.get().aio.clone());
        slf.get().needs_loop.fetch_or(is_async, Ordering::SeqCst);
        let iterable = Arc::new(iterable);
        Self::update(slf, move |_| {
            sp::PipelineBuilder::new().add_try_source_fn(move |_| PythonItems::new(iterable.clone(), aio.clone()))
        })
    }

    /// A Python-callable stage: `fn(item) -> item`, run on up to
    /// `concurrency` CPU threads, holding the GIL only while it runs; an
    /// `async def` function is awaited on the run's event loop (up to
    /// `concurrency` coroutines in flight); a generator function (sync or
    /// async) passes on every item it yields. An exception, a timeout or a
    /// cancellation drops the item and is reported in `failures()`; more
    /// than `max_failures` of them in this stage stop the run.
    #[pyo3(signature = (fn_, *, concurrency=1, name=None, ordered=false, timeout=None, max_failures=None))]
    #[allow(clippy::too_many_arguments)]
    fn pipe(
        slf: &Bound<'_, Self>,
        fn_: Py<PyAny>,
        concurrency: usize,
        name: Option<String>,
        ordered: bool,
        timeout: Option<f64>,
        max_failures: Option<u64>,
    ) -> PyResult<Py<Self>> {
        let py = slf.py();
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
        if let Some(k) = max_failures {
            cfg = cfg.with_budget(FailureBudget::count(k));
        }
        let fn_ = Arc::new(fn_);
        let aio = slf.get().aio.clone();
        match kind.as_str() {
            "async" | "asyncgen" => {
                slf.get().needs_loop.store(true, Ordering::SeqCst);
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
    #[pyo3(signature = (*, size=None, pix_fmt="rgb24", interpolation="bilinear", fit="stretch", apply_orientation=true, concurrency=1, ordered=false, name="decode_image"))]
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
    ) -> PyResult<Py<Self>> {
        let config: ImageConfig = image_config(size, pix_fmt, interpolation, fit, apply_orientation)?;
        let cfg = stage(name, concurrency, ordered, None);
        Self::native(slf, cfg, move |src| sio::load_image(src, &config).map(Item::Image))
    }

    /// A native stage decoding each item's video to (N, H, W, C) uint8.
    #[pyo3(signature = (*, size=None, pix_fmt="rgb24", num_threads=1, concurrency=1, ordered=false, name="decode_video"))]
    #[allow(clippy::too_many_arguments)]
    fn decode_video(
        slf: &Bound<'_, Self>,
        size: Option<(u32, u32)>,
        pix_fmt: &str,
        num_threads: usize,
        concurrency: usize,
        ordered: bool,
        name: &str,
    ) -> PyResult<Py<Self>> {
        let config = video_config(size, pix_fmt, "bilinear", None, None, None, num_threads, true)?;
        let cfg = stage(name, concurrency, ordered, None);
        Self::native(slf, cfg, move |src| {
            sio::load_video(src, &config).map(|v| Item::Frames(v.frames))
        })
    }

    /// A native stage decoding each item's audio to float32 (channels,
    /// samples), optionally resampled and remixed, without the GIL.
    #[pyo3(signature = (*, sample_rate=None, channels=None, backend="auto", concurrency=1, ordered=false, name="decode_audio"))]
    #[allow(clippy::too_many_arguments)]
    fn decode_audio(
        slf: &Bound<'_, Self>,
        sample_rate: Option<u32>,
        channels: Option<u32>,
        backend: &str,
        concurrency: usize,
        ordered: bool,
        name: &str,
    ) -> PyResult<Py<Self>> {
        let config = audio_config(sample_rate, channels, None, None, "channels_first", backend)?;
        let cfg = stage(name, concurrency, ordered, None);
        Self::native(slf, cfg, move |src| {
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

    /// Sets the output queue's capacity (the items buffered ahead of the
    /// consumer).
    #[pyo3(signature = (capacity=16))]
    fn add_sink(slf: &Bound<'_, Self>, capacity: usize) -> PyResult<Py<Self>> {
        Self::update(slf, move |b| b.add_sink(capacity))
    }

    /// Builds the pipeline. `num_threads` sizes the CPU pool (0: one per
    /// core); `max_failures` stops a run after that many dropped items
    /// (default: never; every drop is still reported).
    #[pyo3(signature = (*, num_threads=0, max_failures=None))]
    fn build(&self, py: Python<'_>, num_threads: usize, max_failures: Option<u64>) -> PyResult<Pipeline> {
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
        if let Some(n) = max_failures {
            config.budget = FailureBudget::count(n);
        }
        let pipeline = py
            .detach(|| builder.with_config(config).build())
            .map_err(pipeline_error)?;
        Ok(Pipeline {
            inner: Arc::new(pipeline),
            pid: std::process::id(),
            aio: self.needs_loop.load(Ordering::SeqCst).then(|| self.aio.clone()),
        })
    }
}

/// The elements of a group, for `disaggregate`.
fn elements(item: Item) -> Result<Vec<Item>, String> {
    match item {
        Item::List(items) => Ok(items),
        Item::Object(obj) => with_python(|py| {
            let iter = obj.bind(py).try_iter().map_err(|e| e.to_string())?;
            iter.map(|o| o.map(Item::from_py).map_err(|e| e.to_string())).collect()
        })
        .unwrap_or_else(|| Err("the interpreter is shutting down".into())),
        _ => Err("disaggregate needs a list (from aggregate) or a Python iterable".into()),
    }
}

/// Groups items into `Item::List`s of `n`.
struct ListAggregator {
    n: usize,
    drop_last: bool,
    group: Vec<Item>,
}

impl sp::Aggregator<Item> for ListAggregator {
    type Output = Item;

    fn push(&mut self, item: Item) -> Option<Item> {
        self.group.push(item);
        (self.group.len() >= self.n).then(|| Item::List(std::mem::take(&mut self.group)))
    }

    fn finish(&mut self) -> Option<Item> {
        (!self.group.is_empty() && !self.drop_last).then(|| Item::List(std::mem::take(&mut self.group)))
    }
}

/// Items pulled from a Python iterator. Each time the GIL is taken, items
/// are pulled for up to [`PULL_TIME`] (at most [`PULL_MAX`]), so a fast
/// iterator costs one GIL hand-off per batch and a slow one holds the GIL
/// no longer than one item past that.
struct PythonItems {
    iterable: Arc<Py<PyAny>>,
    /// The event loop, for an async iterable.
    aio: Option<Arc<EventLoop>>,
    iter: Option<Py<PyAny>>,
    pulled: std::collections::VecDeque<Item>,
    ended: bool,
    /// The exception the iterable raised, handed out after the items
    /// pulled before it: the run then ends with `PipelineFailure`.
    failed: Option<String>,
}

const PULL_TIME: std::time::Duration = std::time::Duration::from_micros(50);
const PULL_MAX: usize = 256;

impl PythonItems {
    fn new(iterable: Arc<Py<PyAny>>, aio: Option<Arc<EventLoop>>) -> Self {
        PythonItems {
            iterable,
            aio,
            iter: None,
            pulled: Default::default(),
            ended: false,
            failed: None,
        }
    }

    /// Pulls the next batch; sets `ended` at the end, and `failed` too when
    /// the iterable raised.
    fn pull(&mut self, py: Python<'_>) {
        if self.iter.is_none() {
            let iterable = self.iterable.bind(py);
            let iter = match self.aio {
                Some(_) => iterable.call_method0("__aiter__"),
                None => iterable.try_iter().map(Bound::into_any),
            };
            match iter {
                Ok(iter) => self.iter = Some(iter.unbind()),
                Err(e) => {
                    self.fail(py, e);
                    return;
                }
            }
        }
        let Some(iter) = self.iter.as_ref().map(|i| i.bind(py).clone()) else {
            return;
        };
        if let Some(aio) = &self.aio {
            match aio.pull(py, &iter, PULL_MAX, PULL_TIME.as_secs_f64()) {
                Ok((items, ended, error)) => {
                    self.pulled.extend(items);
                    self.ended = ended;
                    if let Some(e) = error {
                        self.fail(py, e);
                    }
                }
                Err(e) => self.fail(py, e),
            }
            return;
        }
        // At least one item per call: an empty batch would read as the end.
        let t0 = std::time::Instant::now();
        loop {
            match iter.call_method0("__next__") {
                Ok(obj) => self.pulled.push_back(Item::from_py(obj)),
                Err(e) if e.is_instance_of::<pyo3::exceptions::PyStopIteration>(py) => {
                    self.ended = true;
                    return;
                }
                Err(e) => {
                    self.fail(py, e);
                    return;
                }
            }
            if self.pulled.len() >= PULL_MAX || t0.elapsed() >= PULL_TIME {
                return;
            }
        }
    }
}

impl PythonItems {
    /// Ends the source with the exception `e` (type and message).
    fn fail(&mut self, py: Python<'_>, e: PyErr) {
        let kind = e.get_type(py).name().map_or("Exception".into(), |n| n.to_string());
        self.failed = Some(format!("{kind}: {}", e.value(py)));
        self.ended = true;
    }
}

impl Iterator for PythonItems {
    type Item = Result<Item, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pulled.is_empty() && !self.ended {
            // At interpreter exit no item is pulled: the source ends.
            self.ended |= with_python(|py| self.pull(py)).is_none();
        }
        match self.pulled.pop_front() {
            Some(item) => Some(Ok(item)),
            None => self.failed.take().map(Err),
        }
    }
}

/// A built pipeline. Iterate it (one epoch) or call `run(epoch)`.
#[pyclass(frozen, module = "spdl_rs.pipeline")]
struct Pipeline {
    inner: Arc<sp::Pipeline<Item>>,
    pid: u32,
    /// The event loop its runs hold, when a stage or the source is async.
    aio: Option<Arc<EventLoop>>,
}

#[pymethods]
impl Pipeline {
    /// Starts epoch `epoch` and returns its iterator.
    #[pyo3(signature = (epoch=0))]
    fn run(&self, py: Python<'_>, epoch: u64) -> PyResult<PipelineRun> {
        if self.pid != std::process::id() {
            return Err(PyRuntimeError::new_err(
                "this pipeline was built in another process (before a fork); build it again in this process",
            ));
        }
        let lease = self.aio.as_ref().map(|aio| aio.acquire(py)).transpose()?;
        let run = py.detach(|| self.inner.run_shared(epoch));
        Ok(PipelineRun {
            run: Mutex::new(Some(run)),
            lease: Mutex::new(lease),
            pid: std::process::id(),
        })
    }

    fn __iter__(&self, py: Python<'_>) -> PyResult<PipelineRun> {
        self.run(py, 0)
    }
}

/// One epoch's output; also a context manager that stops the run on exit.
#[pyclass(frozen, module = "spdl_rs.pipeline")]
struct PipelineRun {
    /// Declared before `lease`: the run stops before its event loop does.
    run: Mutex<Option<sp::Run<'static, Item>>>,
    /// The run's hold on the event loop; released when the run ends.
    lease: Mutex<Option<LoopLease>>,
    /// The process that started the run: its threads exist only there.
    pid: u32,
}

impl Drop for PipelineRun {
    /// In a forked child the run's threads do not exist: dropping it would
    /// wait for them forever, so it is leaked instead (the parent's copy
    /// is the one that runs).
    fn drop(&mut self) {
        if self.pid != std::process::id() {
            if let Some(run) = self.run.get_mut().ok().and_then(Option::take) {
                std::mem::forget(run);
            }
        }
    }
}

impl PipelineRun {
    /// Lets the event loop stop (if no other run holds it): the run ended.
    fn release_loop(&self, py: Python<'_>) {
        let lease = self.lease.lock().ok().and_then(|mut l| l.take());
        py.detach(move || drop(lease));
    }

    fn with_run<R>(&self, f: impl FnOnce(&sp::Run<'static, Item>) -> R) -> PyResult<R> {
        let guard = self
            .run
            .lock()
            .map_err(|_| PyRuntimeError::new_err("run lock poisoned"))?;
        let run = guard
            .as_ref()
            .ok_or_else(|| PyRuntimeError::new_err("the run was closed"))?;
        Ok(f(run))
    }
}

impl PipelineRun {
    /// Waits for the next item without the GIL, checking for Python
    /// signals every 50 ms, so Ctrl-C stops a wait on a slow stage.
    /// Refuses a run inherited across `fork()`: its threads are in the
    /// parent, and waiting on them here would hang.
    fn check_process(&self) -> PyResult<()> {
        if self.pid == std::process::id() {
            return Ok(());
        }
        Err(PyRuntimeError::new_err(
            "this run was started in another process (before a fork): its threads are not in this one; \
             start a new run here",
        ))
    }

    fn wait_for_next(&self, py: Python<'_>) -> PyResult<Option<Result<Item, sp::Error>>> {
        let slice = Duration::from_millis(50);
        loop {
            let next = py.detach(|| self.run.lock().ok().and_then(|mut r| r.as_mut()?.next_timeout(slice)));
            match next {
                Some(Err(sp::Error::Timeout(_))) => py.check_signals()?,
                next => return Ok(next),
            }
        }
    }
}

#[pymethods]
impl PipelineRun {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.check_process()?;
        // The GIL is released only when the next item is not ready yet.
        let ready = self.run.lock().ok().and_then(|mut r| r.as_mut()?.try_next());
        let next = match ready {
            Some(next) => next,
            None => self.wait_for_next(py)?,
        };
        match next {
            None => {
                self.release_loop(py);
                Ok(None)
            }
            Some(Err(e)) => Err(pipeline_error(e)),
            Some(Ok(item)) => item.into_py(py).map(Some),
        }
    }

    /// Per-stage stats (items, failures, time, queue waits) as text; the
    /// bottleneck stage is named.
    fn stats(&self) -> PyResult<String> {
        self.with_run(|r| r.stats().to_string())
    }

    /// Every dropped item so far as (stage, item position, reason).
    fn failures(&self) -> PyResult<Vec<(String, u64, String)>> {
        self.with_run(|r| r.failures().into_iter().map(|f| (f.stage, f.item, f.reason)).collect())
    }

    /// Stops the run (blocking work already running finishes, its result is
    /// dropped). Idempotent.
    fn close(&self, py: Python<'_>) {
        if self.check_process().is_err() {
            return; // dropped (leaked) with the object: see `Drop`
        }
        let run = self.run.lock().ok().and_then(|mut r| r.take());
        py.detach(move || drop(run));
        self.release_loop(py);
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __exit__(&self, py: Python<'_>, _ty: Py<PyAny>, _value: Py<PyAny>, _tb: Py<PyAny>) -> bool {
        self.close(py);
        false
    }
}

//! A built Python pipeline and its runs: iteration without the GIL,
//! failures, structured stats, profiling, and the event loops the runs
//! hold.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use spdl::pipeline as sp;

use super::feed::SourceError;
use super::item::Item;
use crate::aio::{EventLoop, LoopLease};
use crate::errors::pipeline_error;

/// A built pipeline. Iterate it (one epoch) or call `run(epoch)`.
#[pyclass(frozen, module = "spdl_rs.pipeline")]
pub(crate) struct Pipeline {
    /// Set until the object is dropped.
    pub(crate) inner: Option<Arc<sp::Pipeline<Item>>>,
    pub(crate) pid: u32,
    /// The event loops its runs hold: its own when a stage or the source is
    /// async, and those of merged pipelines and route branches.
    pub(crate) loops: Vec<Arc<EventLoop>>,
    /// The exception a Python source raised (see `SourceError`).
    pub(crate) source_error: SourceError,
}

impl Pipeline {
    /// The built pipeline.
    pub(crate) fn shared(&self) -> &Arc<sp::Pipeline<Item>> {
        self.inner.as_ref().expect("a pipeline is set until it is dropped")
    }

    pub(crate) fn check_process(&self) -> PyResult<()> {
        if self.pid == std::process::id() {
            return Ok(());
        }
        Err(PyRuntimeError::new_err(
            "this pipeline was built in another process (before a fork); build it again in this process",
        ))
    }

    /// Holds every event loop the pipeline needs, for one run.
    fn hold_loops(&self, py: Python<'_>) -> PyResult<Vec<LoopLease>> {
        self.loops.iter().map(|aio| aio.acquire(py)).collect()
    }

    /// A run started by `start` on this pipeline, holding its event loops.
    fn start(
        &self,
        py: Python<'_>,
        start: impl FnOnce(&Arc<sp::Pipeline<Item>>) -> sp::Run<'static, Item> + Send,
    ) -> PyResult<PipelineRun> {
        self.check_process()?;
        let leases = self.hold_loops(py)?;
        let shared = self.shared();
        let run = py.detach(|| start(shared));
        Ok(PipelineRun {
            run: Mutex::new(Some(run)),
            leases: Mutex::new(leases),
            pid: std::process::id(),
            source_error: self.source_error.clone(),
            warn_on_drops: Default::default(),
        })
    }
}

#[pymethods]
impl Pipeline {
    /// Starts epoch `epoch` and returns its iterator.
    #[pyo3(signature = (epoch=0))]
    fn run(&self, py: Python<'_>, epoch: u64) -> PyResult<PipelineRun> {
        self.start(py, |p| p.run_shared(epoch))
    }

    /// Continues the epoch a run's `state_dict()` described (maybe saved
    /// by another process): the items that run took, or dropped as
    /// failed, are skipped at the source; nothing is repeated or skipped
    /// when every stage is ordered (in completion order: every item,
    /// batches maybe formed differently). The source must give the same items in the same
    /// order for the epoch.
    fn resume(&self, py: Python<'_>, state: &Bound<'_, PyDict>) -> PyResult<PipelineRun> {
        let state = run_state(state)?;
        self.start(py, move |p| p.resume_shared(&state))
    }
    /// Runs each `pipe`/decode stage alone at each of `concurrencies` on the
    /// first `items` items of epoch 0 (the stages before it run as built)
    /// and reports its throughput: a list of dicts with `stage`,
    /// `concurrency`, `items`, `seconds` and `items_per_sec`.
    #[pyo3(signature = (concurrencies=vec![1, 2, 4, 8], items=256))]
    fn profile<'py>(
        &self,
        py: Python<'py>,
        concurrencies: Vec<usize>,
        items: u64,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.check_process()?;
        let leases = self.hold_loops(py)?;
        let report = py.detach(|| self.shared().profile(&concurrencies, items));
        py.detach(move || drop(leases));
        report
            .into_iter()
            .map(|p| {
                let d = PyDict::new(py);
                d.set_item("stage", p.stage)?;
                d.set_item("concurrency", p.concurrency)?;
                d.set_item("items", p.items)?;
                d.set_item("seconds", p.elapsed.as_secs_f64())?;
                d.set_item("items_per_sec", p.items_per_sec)?;
                Ok(d)
            })
            .collect()
    }

    /// Epoch 0's run. Its failures cannot be read (the run object is not
    /// the caller's), so when items were dropped a `RuntimeWarning` says
    /// how many and the first reason at the end of the epoch.
    fn __iter__(&self, py: Python<'_>) -> PyResult<PipelineRun> {
        let run = self.run(py, 0)?;
        run.warn_on_drops.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(run)
    }
}

/// One epoch's output; also a context manager that stops the run on exit.
#[pyclass(frozen, module = "spdl_rs.pipeline")]
pub(crate) struct PipelineRun {
    /// Declared before `leases`: the run stops before its event loops do.
    run: Mutex<Option<sp::Run<'static, Item>>>,
    /// The run's hold on its event loops; released when the run ends.
    leases: Mutex<Vec<LoopLease>>,
    /// The exception a Python source raised, chained to the run's error.
    source_error: SourceError,
    /// Warn at the end when items were dropped (a run the caller cannot
    /// ask for its failures: `for x in pipeline`).
    warn_on_drops: std::sync::atomic::AtomicBool,
    /// The process that started the run: its threads exist only there.
    pid: u32,
}

impl Drop for PipelineRun {
    /// Drops the run with the GIL released (see [`drop_without_gil`]). In a
    /// forked child the run's threads do not exist: dropping it would wait
    /// for them forever, so it is leaked instead (the parent's copy is the
    /// one that runs).
    fn drop(&mut self) {
        let run = self.run.get_mut().ok().and_then(Option::take);
        if self.pid != std::process::id() {
            std::mem::forget(run);
            return;
        }
        let leases = self.leases.get_mut().map(std::mem::take).unwrap_or_default();
        drop_without_gil((run, leases)); // the run stops before its loops
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        let inner = self.inner.take();
        if self.pid != std::process::id() {
            // Its threads are in the parent: see `PipelineRun`'s drop.
            std::mem::forget(inner);
            return;
        }
        drop_without_gil(inner);
    }
}

/// Drops `value` with the GIL released. Dropping the last handle of a
/// pipeline joins its threads, and a thread that ran Python code takes
/// the GIL as it exits (to delete its thread state): with the GIL held
/// here, that join would wait for its timeout.
fn drop_without_gil<T: Send>(value: T) {
    Python::attach(|py| py.detach(move || drop(value)));
}

impl PipelineRun {
    /// See `warn_on_drops`.
    fn warn_if_dropped(&self, py: Python<'_>) -> PyResult<()> {
        if !self.warn_on_drops.swap(false, std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        let failures = self.with_run(py, |r| r.failures())?;
        let Some(first) = failures.first() else {
            return Ok(());
        };
        let message = format!(
            "the pipeline dropped {} item(s) this epoch (first: {first}); iterate `pipeline.run(epoch)` \
             and read `run.failures()` to handle them",
            failures.len()
        );
        let category = py.get_type::<pyo3::exceptions::PyRuntimeWarning>();
        PyErr::warn(py, &category, &std::ffi::CString::new(message)?, 1)
    }

    /// Lets the event loop stop (if no other run holds it): the run ended.
    fn release_loop(&self, py: Python<'_>) {
        let leases = self
            .leases
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default();
        py.detach(move || drop(leases));
    }

    /// `f` on the run, with the lock taken while the GIL is released: the
    /// thread iterating may hold the lock while it waits for the pipeline,
    /// whose threads may need the GIL to go on (a log record, a route).
    fn with_run<R: Send>(&self, py: Python<'_>, f: impl FnOnce(&sp::Run<'static, Item>) -> R + Send) -> PyResult<R> {
        let result = py.detach(|| match self.run.lock() {
            Ok(guard) => guard.as_ref().map(f).ok_or("the run was closed"),
            Err(_) => Err("run lock poisoned"),
        });
        result.map_err(PyRuntimeError::new_err)
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
                self.warn_if_dropped(py)?;
                Ok(None)
            }
            Some(Err(e)) => {
                self.release_loop(py); // the run is over
                let from_source = matches!(e, sp::Error::Source { .. });
                let err = pipeline_error(e);
                if from_source {
                    let cause = self.source_error.lock().ok().and_then(|mut c| c.take());
                    err.set_cause(py, cause);
                }
                Err(err)
            }
            Some(Ok(item)) => item.into_py(py).map(Some),
        }
    }

    /// Per-stage stats: `stages` (a dict per stage: items, failures, task
    /// time percentiles, queue waits and occupancy), `bottleneck`, and the
    /// text table as `str(stats)`.
    fn stats(&self, py: Python<'_>) -> PyResult<PipelineStats> {
        self.with_run(py, |r| PipelineStats(r.stats()))
    }

    /// Where the epoch stands, for `Pipeline.resume` (in this process or
    /// a restarted one): a dict of plain ints and lists (`epoch`,
    /// `done_below`, `done`, `partial`), ready for `json`, `pickle` or
    /// `torch.save`. Items in flight are not counted as taken.
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let state = self.with_run(py, |r| r.state())?;
        let dict = PyDict::new(py);
        dict.set_item("version", 1)?;
        dict.set_item("epoch", state.epoch)?;
        dict.set_item("done_below", state.done_below)?;
        dict.set_item("done", state.done)?;
        let partial: Vec<(u32, u64, u64, Vec<u64>)> = state
            .partial
            .into_iter()
            .map(|p| (p.level, p.key, p.taken, p.sources))
            .collect();
        dict.set_item("partial", partial)?;
        Ok(dict)
    }

    /// Every dropped item so far as (stage, item position, reason).
    fn failures(&self, py: Python<'_>) -> PyResult<Vec<(String, u64, String)>> {
        self.with_run(py, |r| {
            r.failures().into_iter().map(|f| (f.stage, f.item, f.reason)).collect()
        })
    }

    /// Stops the run (blocking work already running finishes, its result is
    /// dropped). Idempotent.
    fn close(&self, py: Python<'_>) {
        if self.check_process().is_err() {
            return; // dropped (leaked) with the object: see `Drop`
        }
        py.detach(|| drop(self.run.lock().ok().and_then(|mut r| r.take())));
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

/// A snapshot of a run's per-stage stats.
#[pyclass(frozen, module = "spdl_rs.pipeline")]
pub(crate) struct PipelineStats(sp::PipelineStats);

#[pymethods]
impl PipelineStats {
    /// One dict per stage, source first: `name`, `items_in`, `items_out`,
    /// `failures`, `concurrency`, `occupancy` (0..1), task time `mean`,
    /// `p50`, `p90`, `p99`, `put_wait` and `get_wait` (seconds, totals),
    /// `queue_len`, `queue_capacity`.
    #[getter]
    fn stages<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let secs = Duration::as_secs_f64;
        self.0
            .stages
            .iter()
            .map(|s| {
                let d = PyDict::new(py);
                d.set_item("name", &s.name)?;
                d.set_item("items_in", s.items_in)?;
                d.set_item("items_out", s.items_out)?;
                d.set_item("failures", s.failures)?;
                d.set_item("concurrency", s.concurrency)?;
                d.set_item("occupancy", s.occupancy)?;
                d.set_item("mean", secs(&s.task_mean))?;
                d.set_item("p50", secs(&s.task_p50))?;
                d.set_item("p90", secs(&s.task_p90))?;
                d.set_item("p99", secs(&s.task_p99))?;
                d.set_item("put_wait", secs(&s.put_wait))?;
                d.set_item("get_wait", secs(&s.get_wait))?;
                d.set_item("queue_len", s.queue_len)?;
                d.set_item("queue_capacity", s.queue_capacity)?;
                Ok(d)
            })
            .collect()
    }

    /// The name of the likely bottleneck stage (None before any work).
    #[getter]
    fn bottleneck(&self) -> Option<String> {
        self.0.bottleneck().map(|s| s.name.clone())
    }

    fn __str__(&self) -> String {
        self.0.to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "<PipelineStats: {} stages, bottleneck {:?}>",
            self.0.stages.len(),
            self.bottleneck()
        )
    }
}

/// A `RunState` from a `state_dict()`.
fn run_state(dict: &Bound<'_, PyDict>) -> PyResult<sp::RunState> {
    let field = |name: &str| {
        dict.get_item(name)?
            .ok_or_else(|| PyValueError::new_err(format!("not a pipeline state: no {name:?}")))
    };
    if field("version")?.extract::<u32>()? != 1 {
        return Err(PyValueError::new_err("a pipeline state of another version"));
    }
    let mut state = sp::RunState::new(field("epoch")?.extract()?);
    state.done_below = field("done_below")?.extract()?;
    state.done = field("done")?.extract()?;
    // Tuples, or lists after a JSON round trip.
    for entry in field("partial")?.try_iter()? {
        let bad = || PyValueError::new_err("a pipeline state's partial entries are (level, key, taken, sources)");
        let entry = entry?.extract::<Vec<Bound<'_, PyAny>>>().map_err(|_| bad())?;
        let [level, key, taken, sources] = &entry[..] else {
            return Err(bad());
        };
        state.partial.push(sp::PartialItem::new(
            level.extract()?,
            key.extract()?,
            taken.extract()?,
            sources.extract()?,
        ));
    }
    if !state.done.windows(2).all(|w| w[0] < w[1]) {
        return Err(PyValueError::new_err(
            "a pipeline state's done positions must be ascending",
        ));
    }
    Ok(state)
}

//! `async def` stages and async sources: the asyncio event loop a
//! pipeline's runs own (`spdl_rs/_aio.py`'s `LoopThread`, one thread),
//! started when a run starts and stopped when the last run of the
//! pipeline ends.
//!
//! An async stage is a Rust async stage: its future queues the call for
//! the loop, wakes the loop through a socket (no GIL needed, so no runtime
//! thread ever waits for it) and waits on a oneshot channel that the
//! coroutine's done-callback fills. The stage's `concurrency` bounds the coroutines in
//! flight; an exception, a timeout (`asyncio.wait_for`) or a cancellation
//! drops the item and is reported like a sync stage's failure.

use std::io::Write;
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyList;
use tokio::sync::oneshot;

use crate::pipeline::Item;
use crate::pools::with_python;

/// The loop thread of a pipeline, shared by its runs.
#[derive(Default)]
pub(crate) struct EventLoop {
    state: Mutex<LoopState>,
    /// Calls of async stages not yet handed to the loop.
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct LoopState {
    /// Runs holding a [`LoopLease`].
    runs: usize,
    /// The Python `LoopThread`, while a run holds it.
    thread: Option<Py<PyAny>>,
    /// The process that started it: a forked child has no such thread.
    pid: u32,
}

/// A run's hold on the event loop; the last one dropped stops it.
pub(crate) struct LoopLease {
    aio: Arc<EventLoop>,
    /// The process it was taken in: a lease inherited across `fork()`
    /// does not count in the child.
    pid: u32,
}

impl EventLoop {
    /// Starts the loop if no run holds it, and holds it for one more run.
    /// The lock is never held across a Python call (a thread waiting for it
    /// with the GIL would block the new loop thread, which needs the GIL).
    pub(crate) fn acquire(self: &Arc<Self>, py: Python<'_>) -> PyResult<LoopLease> {
        let pid = std::process::id();
        let running = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.pid != pid {
                // Inherited across fork(): the thread is not in this process,
                // and calls queued there are not ours to run.
                std::mem::forget(state.thread.take());
                std::mem::forget(std::mem::take(
                    &mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()),
                ));
                state.runs = 0;
                state.pid = pid;
            }
            state.runs += 1;
            state.thread.is_some()
        };
        let lease = LoopLease { aio: self.clone(), pid };
        if !running {
            self.start(py)?;
        }
        Ok(lease)
    }

    /// Starts a loop thread, unless another run started one meanwhile.
    fn start(self: &Arc<Self>, py: Python<'_>) -> PyResult<()> {
        let (wake, wakes) = UnixStream::pair()
            .and_then(|(w, r)| w.set_nonblocking(true).and(r.set_nonblocking(true)).map(|()| (w, r)))
            .map_err(|e| PyRuntimeError::new_err(format!("cannot create the event loop's wake-up socket: {e}")))?;
        let take = TakeCalls(self.clone());
        let thread = py
            .import("spdl_rs._aio")?
            .getattr("LoopThread")?
            .call1((wakes.into_raw_fd(), take))?;
        let extra = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.thread.is_none() {
                state.thread = Some(thread.clone().unbind());
                self.pending.lock().unwrap_or_else(|e| e.into_inner()).wake = Some(wake);
                None
            } else {
                Some(thread)
            }
        };
        if let Some(extra) = extra {
            extra.call_method0("stop")?;
        }
        Ok(())
    }

    /// The running loop thread, if a run holds it.
    fn thread<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state
            .thread
            .as_ref()
            .map(|t| t.bind(py).clone())
            .ok_or_else(|| PyRuntimeError::new_err("the pipeline's event loop is not running (the run ended)"))
    }

    /// Pulls up to `max_items` items of the async iterator `aiter` for a
    /// source, waiting (GIL released by asyncio) at most `max_seconds`
    /// once one arrived: (items, ended, the exception that ended it).
    pub(crate) fn pull(
        &self,
        py: Python<'_>,
        aiter: &Bound<'_, PyAny>,
        max_items: usize,
        max_seconds: f64,
    ) -> PyResult<(Vec<Item>, bool, Option<PyErr>)> {
        let (items, ended, error): (Bound<'_, PyList>, bool, Option<Bound<'_, PyAny>>) = self
            .thread(py)?
            .call_method1("pull", (aiter, max_items, max_seconds))?
            .extract()?;
        let items = items.iter().map(Item::from_py).collect();
        Ok((items, ended, error.map(PyErr::from_value)))
    }
}

impl Drop for LoopLease {
    /// Stops the loop when this was the last run holding it (in a forked
    /// child the thread does not exist: it is left alone).
    fn drop(&mut self) {
        if self.pid != std::process::id() {
            return;
        }
        let thread = {
            let mut state = self.aio.state.lock().unwrap_or_else(|e| e.into_inner());
            state.runs = state.runs.saturating_sub(1);
            if state.runs > 0 || state.pid != self.pid {
                return;
            }
            self.aio.pending.lock().unwrap_or_else(|e| e.into_inner()).wake = None;
            state.thread.take()
        };
        if let Some(thread) = thread {
            with_python(|py| {
                if let Err(e) = thread.bind(py).call_method0("stop") {
                    e.write_unraisable(py, None);
                }
            });
        }
    }
}

/// The done-callback of one submitted coroutine: sends its result (or why
/// it failed) to the waiting stage.
#[pyclass(frozen)]
struct Done {
    tx: Mutex<Option<oneshot::Sender<Result<Item, String>>>>,
    /// The result is a list of outputs (an async generator's).
    many: bool,
}

#[pymethods]
impl Done {
    fn __call__(&self, future: &Bound<'_, PyAny>) {
        self.send(outcome(future, self.many));
    }
}

impl Done {
    fn send(&self, result: Result<Item, String>) {
        if let Some(tx) = self.tx.lock().ok().and_then(|mut t| t.take()) {
            let _ = tx.send(result); // the stage may be gone (run closed)
        }
    }
}

/// What a finished `concurrent.futures.Future` holds, as a stage result.
fn outcome(future: &Bound<'_, PyAny>, many: bool) -> Result<Item, String> {
    if future
        .call_method0("cancelled")
        .and_then(|c| c.is_truthy())
        .unwrap_or(false)
    {
        return Err("cancelled".into());
    }
    let out = future.call_method0("result").map_err(|e| e.to_string())?;
    if !many {
        return Ok(Item::from_py(out));
    }
    let items: PyResult<Vec<Item>> = out.try_iter().and_then(|it| it.map(|o| o.map(Item::from_py)).collect());
    items.map(Item::List).map_err(|e| e.to_string())
}

/// One call waiting to be started on the loop.
struct Call {
    f: Arc<Py<PyAny>>,
    item: Item,
    timeout: Option<f64>,
    done: Done,
}

/// Calls submitted since the loop last took them, whether the loop was
/// woken to take them, and the socket that wakes it.
#[derive(Default)]
struct Pending {
    calls: Vec<Call>,
    scheduled: bool,
    wake: Option<UnixStream>,
}

/// Called on the loop when its wake-up socket is readable: hands the
/// pending calls over as `(fn, item, timeout, done)` tuples, which
/// `_aio.py` starts as tasks.
#[pyclass(frozen)]
struct TakeCalls(Arc<EventLoop>);

#[pymethods]
impl TakeCalls {
    fn __call__(&self, py: Python<'_>) -> PyResult<Vec<Py<PyAny>>> {
        let calls = {
            let mut pending = self.0.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.scheduled = false;
            std::mem::take(&mut pending.calls)
        };
        // A call whose item cannot become a Python value fails alone.
        let mut ready = Vec::new();
        for call in calls {
            match call.item.into_py(py) {
                Ok(item) => ready.push(
                    (call.f.clone_ref(py), item, call.timeout, call.done)
                        .into_pyobject(py)?
                        .into_any()
                        .unbind(),
                ),
                Err(e) => call.done.send(Err(e.to_string())),
            }
        }
        Ok(ready)
    }
}

/// One call of an `async def` stage (or, with `many`, of an async
/// generator function, whose outputs come back as one `Item::List`),
/// awaited on the loop; the result comes back through the done-callback.
///
/// Calls are handed to the loop in batches without the GIL: the first
/// call of a batch writes a byte to the loop's wake-up socket (the loop
/// watches it with `add_reader`), and every call queued before the loop
/// takes them rides along. No pipeline thread waits for the GIL to
/// submit (measured, 32 concurrent 10 ms sleeps: one GIL hand-off per
/// item reached 84% of the ideal rate, one per batch 91%).
pub(crate) async fn call_async(
    lp: Arc<EventLoop>,
    f: Arc<Py<PyAny>>,
    item: Item,
    timeout: Option<f64>,
    many: bool,
) -> Result<Item, String> {
    let (tx, rx) = oneshot::channel();
    let done = Done {
        tx: Mutex::new(Some(tx)),
        many,
    };
    let woken = {
        let mut pending = lp.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.calls.push(Call { f, item, timeout, done });
        wake(&mut pending)
    };
    if !woken {
        let mut pending = lp.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.calls.clear(); // their callers get the error below
        return Err("the pipeline's event loop is not running (the run ended)".into());
    }
    rx.await
        .unwrap_or_else(|_| Err("the event loop stopped before the call ended".into()))
}

/// Wakes the loop to take the pending calls, unless it was woken already;
/// false when the loop is not running.
fn wake(pending: &mut Pending) -> bool {
    if pending.scheduled {
        return true;
    }
    let Some(socket) = pending.wake.as_mut() else {
        return false;
    };
    // A full socket (WouldBlock) already holds a wake-up.
    match socket.write(&[1]) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(_) => return false,
    }
    pending.scheduled = true;
    true
}

//! CPU pools created on first use, per process: a forked child (PyTorch
//! DataLoader workers, `multiprocessing` with fork) gets new pools instead
//! of the parent's, whose threads do not exist in the child. Also the
//! interpreter-shutdown flag that stops Rust threads from calling into
//! Python once `atexit` has run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

type Pools = (u32, HashMap<usize, Arc<rayon::ThreadPool>>);
static POOLS: LazyLock<Mutex<Pools>> = LazyLock::new(Mutex::default);
static SHUTDOWN: AtomicBool = AtomicBool::new(false);
/// Rust threads inside (or about to enter) Python.
static IN_PYTHON: AtomicUsize = AtomicUsize::new(0);
/// How long `shutdown` waits for callables already running.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The most threads a pool may have: more is a mistake (starting a
/// million threads never returned).
pub(crate) const MAX_THREADS: usize = 1024;
/// Pools of distinct sizes kept at once; a new size beyond this releases
/// one (its threads end when no call uses it any more).
const MAX_POOLS: usize = 4;

/// The pool of `threads` threads (0: one per core) of this process.
pub(crate) fn cpu_pool(threads: usize) -> PyResult<Arc<rayon::ThreadPool>> {
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        1..=MAX_THREADS => threads,
        _ => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "num_threads is {threads}, over the maximum of {MAX_THREADS}"
            )))
        }
    };
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if pools.0 != pid {
        // The parent's pools have no threads here; leak them (dropping
        // would signal threads that do not exist).
        std::mem::forget(std::mem::take(&mut pools.1));
        pools.0 = pid;
    }
    if let Some(pool) = pools.1.get(&threads) {
        return Ok(pool.clone());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("spdl-rs-cpu-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("cannot start CPU threads: {e}")))?;
    if pools.1.len() >= MAX_POOLS {
        let size = *pools.1.keys().next().expect("at least one pool");
        pools.1.remove(&size);
    }
    pools.1.insert(threads, pool.clone());
    Ok(pool)
}

/// Decrements [`IN_PYTHON`] when a call into Python ends.
struct InPython;

impl Drop for InPython {
    fn drop(&mut self) {
        IN_PYTHON.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `f` with the GIL from a Rust worker thread, unless the interpreter
/// is shutting down (then `None`): no Rust thread enters Python once
/// `atexit` has run, and `shutdown` waits for those already inside.
pub(crate) fn with_python<R>(f: impl FnOnce(Python<'_>) -> R) -> Option<R> {
    // Count first, then check: `shutdown` sets the flag, then waits for the
    // count, so every thread either sees the flag or is waited for.
    IN_PYTHON.fetch_add(1, Ordering::SeqCst);
    let _guard = InPython;
    if SHUTDOWN.load(Ordering::SeqCst) {
        return None;
    }
    keep_thread_state();
    Some(Python::attach(f))
}

/// The Python thread state a worker thread keeps between calls (see
/// [`keep_thread_state`]); deleted when the thread exits.
struct KeptThreadState {
    tstate: *mut pyo3::ffi::PyThreadState,
    gil_state: pyo3::ffi::PyGILState_STATE,
}

thread_local! {
    static THREAD_STATE: std::cell::RefCell<Option<KeptThreadState>> = const { std::cell::RefCell::new(None) };
}

/// Gives this worker thread a Python thread state that outlives each
/// call. Without it, every `attach` from a thread Python did not create
/// allocates a thread state and frees it on release (measured: about half
/// the cost of a no-op Python stage). Done once per thread; the state is
/// deleted when the thread exits (each pipeline starts threads of its
/// own: kept forever, the states grew memory by about 0.7 KB per
/// pipeline built).
fn keep_thread_state() {
    THREAD_STATE.with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.is_some() {
            return;
        }
        // SAFETY: reading this thread's registered state has no
        // preconditions (it may be called without the GIL).
        if !unsafe { pyo3::ffi::PyGILState_GetThisThreadState() }.is_null() {
            // A thread Python knows (the main thread, a `threading` thread,
            // or one attached right now): it has a state of its own, which
            // must not be replaced, saved or deleted here.
            return;
        }
        // SAFETY: called only from Rust worker threads that are not attached
        // to the interpreter (pyo3's own attach count is zero here: no
        // `Python` token exists on this thread), after checking that the
        // interpreter is not shutting down. `PyGILState_Ensure` creates this
        // thread's state and takes the GIL; `PyEval_SaveThread` releases the
        // GIL again while keeping the state (its counter stays at one), so
        // later `attach` calls reuse it.
        let (gil_state, tstate) = unsafe { (pyo3::ffi::PyGILState_Ensure(), pyo3::ffi::PyEval_SaveThread()) };
        *kept = Some(KeptThreadState { tstate, gil_state });
    });
}

impl Drop for KeptThreadState {
    /// At thread exit: takes the GIL with the kept state and releases the
    /// `PyGILState_Ensure` of [`keep_thread_state`], which deletes the
    /// state. Skipped once the interpreter is shutting down (the state is
    /// then left to it, as for any thread Python never joins).
    fn drop(&mut self) {
        IN_PYTHON.fetch_add(1, Ordering::SeqCst);
        let _guard = InPython;
        if SHUTDOWN.load(Ordering::SeqCst) {
            return;
        }
        // SAFETY: `tstate` is this thread's state, saved by
        // `PyEval_SaveThread` in `keep_thread_state` and not attached now
        // (thread-local destructors run after every `attach` on this thread
        // ended); the interpreter is not finalizing (checked above, and
        // `shutdown` waits for us through `IN_PYTHON`). Restoring takes the
        // GIL; releasing the matching `PyGILState_Ensure` (counter one)
        // deletes the state and releases the GIL.
        unsafe {
            pyo3::ffi::PyEval_RestoreThread(self.tstate);
            pyo3::ffi::PyGILState_Release(self.gil_state);
        }
    }
}

/// Called by `atexit` (registered in `spdl_rs/__init__.py`), before the
/// interpreter finalizes: stops Rust threads from entering Python and waits
/// (GIL released, at most 5 s) for Python callables already running, so
/// exiting in the middle of an iteration neither hangs nor crashes.
#[pyfunction]
pub(crate) fn shutdown(py: Python<'_>) {
    SHUTDOWN.store(true, Ordering::SeqCst);
    // Log records would take the GIL from Rust threads: stop them too.
    log::set_max_level(log::LevelFilter::Off);
    py.detach(|| {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while IN_PYTHON.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

//! Run state: a built [`Pipeline`] (its runtime, CPU pool and the recipe
//! for each epoch) and one epoch's [`Run`], a blocking iterator (or async
//! stream) over its output with live stats and the failure report. A
//! built pipeline serves many epochs: each [`Pipeline::run`] spawns fresh
//! stage tasks on the same threads, with a fresh context. The periodic
//! stats reporter lives here too.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::runtime::Runtime;

use crate::config::PipelineConfig;
use crate::epoch::{Ctx, CtxRef, Env, Rx};
use crate::error::{Error, Failure, Result};
use crate::progress::{Progress, RunState};
use crate::stages::merge::{DroppedItems, Merge, MergePolicy, MergedRun};
use crate::stats::PipelineStats;

/// Spawns the stages of one epoch and returns the sink's receiver.
type Start<T> = Arc<dyn Fn(&CtxRef, u64) -> Rx<T> + Send + Sync>;

/// A built pipeline: its threads, and the recipe for each epoch.
///
/// Dropping it cancels every epoch's pending work: async stages stop at
/// their next await, the runtime's threads are joined (waiting at most 5 s
/// for a source iterator blocked inside `next`; not waited for at all when
/// dropped inside an async context), and the CPU pool is shut down. A
/// blocking call already running on the CPU pool cannot be interrupted: it
/// completes on its thread, its result is dropped, and the thread then
/// exits. A panic in any stage is caught and reported as that
/// item's failure; it never poisons the pipeline.
pub struct Pipeline<T> {
    runtime: Option<Runtime>,
    pool: Arc<rayon::ThreadPool>,
    start: Start<T>,
    config: PipelineConfig,
}

impl<T: Send + 'static> Pipeline<T> {
    /// Starts the runtime and CPU pool (threads start now); each run
    /// spawns its stages with `start`.
    pub(crate) fn new(
        config: PipelineConfig,
        start: impl Fn(&CtxRef, u64) -> Rx<T> + Send + Sync + 'static,
    ) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.runtime_threads.max(1))
            .thread_name(format!("{}-rt", config.name))
            .enable_time()
            .build()
            .map_err(|e| Error::Build(e.to_string()))?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.cpu_threads.max(1))
            .thread_name({
                let name = config.name.clone();
                move |i| format!("{name}-cpu-{i}")
            })
            .build()
            .map_err(|e| Error::Build(e.to_string()))?;
        Ok(Pipeline {
            runtime: Some(runtime),
            pool: Arc::new(pool),
            start: Arc::new(start),
            config,
        })
    }

    /// Starts epoch `epoch` and returns its output. Dropping the [`Run`]
    /// before the end stops the epoch's stages (blocking work already on
    /// the CPU pool finishes, its result is dropped).
    pub fn run(&self, epoch: u64) -> Run<'_, T> {
        self.start_run(epoch, None, None, None)
    }

    /// Continues the epoch that [`Run::state`] described (saved by a run
    /// of this pipeline, maybe in another process): the source skips the
    /// items that run finished with, so none is repeated or skipped (see
    /// [`RunState`] for what completion order guarantees). The source must
    /// yield the same items in the same order for the epoch, as a
    /// [`DistributedSampler`](crate::DistributedSampler) or a sorted listing does.
    pub fn resume(&self, state: &RunState) -> Run<'_, T> {
        self.start_run(state.epoch, None, None, Some(state.clone()))
    }

    /// Starts epoch `epoch`; with `limit`, the source stops after that many
    /// items; with `profile` `(k, n)`, the `k`-th task stage runs alone at
    /// concurrency `n` (see `profile.rs`).
    pub(crate) fn start_run(
        &self,
        epoch: u64,
        limit: Option<u64>,
        profile: Option<(usize, usize)>,
        resume: Option<RunState>,
    ) -> Run<'_, T> {
        let runtime = self
            .runtime
            .as_ref()
            .expect("the runtime lives as long as the pipeline");
        let ctx = Arc::new(Ctx {
            handle: runtime.handle().clone(),
            pool: self.pool.clone(),
            counters: Mutex::new(Vec::new()),
            failures: Mutex::new(Vec::new()),
            abort: Mutex::new(None),
            budget: self.config.budget,
            source_items: AtomicU64::new(0),
            done: AtomicBool::new(false),
            max_chunk: self.config.max_chunk.max(1),
            limit,
            profile,
            task_stages: AtomicU64::new(0),
            profile_result: Mutex::new(None),
            progress: Progress::new(resume),
        });
        let rx = {
            let _guard = runtime.enter();
            (self.start)(&ctx, epoch)
        };
        if let Some(every) = self.config.report_interval {
            spawn_reporter(&ctx, every);
        }
        let depth = ctx.progress.depth();
        Run {
            rx: Some(rx),
            ready: Vec::new().into_iter(),
            ctx,
            epoch,
            depth,
            _pipeline: std::marker::PhantomData,
            _owner: None,
        }
    }

    /// [`Pipeline::run`] for a shared pipeline: the run keeps it alive, so
    /// it can be stored without a borrow (bindings hold runs this way).
    ///
    /// ```
    /// use std::sync::Arc;
    /// let pipeline = Arc::new(spdl_pipeline::PipelineBuilder::new().add_source(0..3).build().unwrap());
    /// let run = pipeline.run_shared(0);
    /// drop(pipeline);
    /// assert_eq!(run.map(Result::unwrap).collect::<Vec<_>>(), [0, 1, 2]);
    /// ```
    pub fn run_shared(self: &Arc<Self>, epoch: u64) -> Run<'static, T> {
        self.run(epoch).owned_by(self.clone())
    }

    /// [`Pipeline::resume`] for a shared pipeline, as [`Pipeline::run_shared`].
    pub fn resume_shared(self: &Arc<Self>, state: &RunState) -> Run<'static, T> {
        self.resume(state).owned_by(self.clone())
    }
}

fn spawn_reporter(ctx: &CtxRef, every: Duration) {
    let weak = Arc::downgrade(ctx);
    ctx.handle.spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(ctx) = weak.upgrade() else { return };
            if ctx.done.load(Ordering::Relaxed) {
                return;
            }
            tracing::info!(target: "spdl_pipeline", "\n{}", ctx.stats());
        }
    });
}

impl<T> Drop for Pipeline<T> {
    fn drop(&mut self) {
        let Some(rt) = self.runtime.take() else { return };
        if tokio::runtime::Handle::try_current().is_ok() {
            // Dropped inside an async context (the last owner was a stream
            // polled by the caller's runtime), where blocking is not
            // allowed: the threads are told to stop and exit on their own.
            rt.shutdown_background();
        } else {
            // A source blocked in a slow iterator must not hang the process.
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// One epoch's output: a blocking iterator of items (or the error that
/// stopped the pipeline), plus live stats and the failure report.
pub struct Run<'p, T> {
    rx: Option<Rx<T>>,
    /// The rest of the last chunk received.
    ready: std::vec::IntoIter<Env<T>>,
    pub(crate) ctx: CtxRef,
    epoch: u64,
    /// Aggregate/disaggregate levels the items went through.
    depth: u32,
    _pipeline: std::marker::PhantomData<&'p ()>,
    /// The pipeline itself, for runs that own it ([`Pipeline::run_shared`]).
    _owner: Option<Arc<Pipeline<T>>>,
}

impl<'p, T> Run<'p, T> {
    /// This run as one that keeps `owner` alive.
    fn owned_by(mut self, owner: Arc<Pipeline<T>>) -> Run<'static, T> {
        Run {
            rx: self.rx.take(),
            ready: std::mem::take(&mut self.ready),
            ctx: self.ctx.clone(),
            epoch: self.epoch,
            depth: self.depth,
            _pipeline: std::marker::PhantomData,
            _owner: Some(owner),
        }
    }

    /// Where the epoch stands: give it to [`Pipeline::resume`] (in this
    /// process or a restarted one) to continue after the items taken so
    /// far. Items in flight are not counted as taken: a resumed run makes
    /// them again.
    pub fn state(&self) -> RunState {
        self.ctx.progress.state(self.epoch)
    }

    /// The value of an item handed to the caller, recorded as taken.
    fn deliver(&self, env: Env<T>) -> T {
        self.ctx.progress.finished(self.depth, env.seq);
        env.value
    }

    /// Stats of every stage, now.
    pub fn stats(&self) -> PipelineStats {
        self.ctx.stats()
    }

    /// Every item dropped so far: stage, source position and reason.
    pub fn failures(&self) -> Vec<Failure> {
        self.ctx.failures.lock().expect("failures lock").clone()
    }

    fn finish(&mut self) -> Option<Result<T>> {
        self.rx = None;
        self.ctx.done.store(true, Ordering::Relaxed);
        self.ctx.abort.lock().expect("abort lock").take().map(Err)
    }

    /// The next item, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`Error::Timeout`] when nothing arrives in time (the run goes on);
    /// [`Error::FailureBudget`] when a budget stopped the pipeline.
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<T>> {
        if let Some(env) = self.ready.next() {
            return Some(Ok(self.deliver(env)));
        }
        let rx = self.rx.as_mut()?;
        // The timer is created inside `block_on`, where the runtime is current.
        let got = self
            .ctx
            .handle
            .block_on(async { tokio::time::timeout(timeout, rx.recv()).await });
        match got {
            Err(_) => Some(Err(Error::Timeout(timeout))),
            Ok(Some(chunk)) => self.take(chunk),
            Ok(None) => self.finish(),
        }
    }

    /// The next item if it is ready now, without waiting: `Some(next)` as
    /// [`Iterator::next`] would return it, `None` when it would block (so
    /// a caller can release a lock, such as Python's GIL, only then).
    ///
    /// ```
    /// let pipeline = spdl_pipeline::PipelineBuilder::new().add_source(0..3).build().unwrap();
    /// let mut run = pipeline.run(0);
    /// let first = run.next().unwrap().unwrap();
    /// let mut rest = vec![first];
    /// while rest.len() < 3 {
    ///     if let Some(item) = run.try_next() {
    ///         rest.push(item.unwrap().unwrap());
    ///     }
    /// }
    /// assert_eq!(rest, [0, 1, 2]);
    /// ```
    pub fn try_next(&mut self) -> Option<Option<Result<T>>> {
        if let Some(env) = self.ready.next() {
            return Some(Some(Ok(self.deliver(env))));
        }
        let Some(rx) = self.rx.as_mut() else {
            return Some(None); // the run has ended
        };
        match rx.try_recv()? {
            Some(chunk) => Some(self.take(chunk)),
            None => Some(self.finish()),
        }
    }

    /// The first item of a chunk just received (chunks are never empty).
    fn take(&mut self, chunk: Vec<Env<T>>) -> Option<Result<T>> {
        self.ready = chunk.into_iter();
        self.ready.next().map(|env| Ok(self.deliver(env)))
    }

    /// The rest of the epoch as an async `Stream`, for tokio users. The
    /// stream borrows the pipeline as the run did (or keeps it alive, for
    /// a run from [`Pipeline::run_shared`]).
    pub fn into_stream(mut self) -> impl Stream<Item = Result<T>> + use<'p, T>
    where
        T: Send + 'static,
    {
        let owner = (self._owner.take(), self._pipeline);
        let ready = futures::stream::iter(std::mem::take(&mut self.ready));
        let chunks = futures::stream::unfold(self.rx.take(), |rx| async move {
            let mut rx = rx?;
            let chunk = rx.recv().await?;
            Some((futures::stream::iter(chunk), Some(rx)))
        });
        let ctx = self.ctx.clone();
        let (taken, depth) = (self.ctx.clone(), self.depth);
        let items = ready.chain(chunks.flatten()).map(move |env| {
            taken.progress.finished(depth, env.seq);
            Ok(env.value)
        });
        let end = futures::stream::once(async move {
            let _owner = owner; // the pipeline lives until the stream ends
            ctx.done.store(true, Ordering::Relaxed);
            ctx.abort.lock().expect("abort lock").take().map(Err)
        })
        .filter_map(futures::future::ready);
        items.chain(end)
    }
}

impl<T> DroppedItems for Run<'_, T> {
    fn failures(&self) -> Vec<Failure> {
        Run::failures(self)
    }
}

impl<T> Iterator for Run<'_, T> {
    type Item = Result<T>;

    /// Blocks the calling thread (never call it from inside an async task).
    fn next(&mut self) -> Option<Result<T>> {
        if let Some(env) = self.ready.next() {
            return Some(Ok(self.deliver(env)));
        }
        let rx = self.rx.as_mut()?;
        match rx.blocking_recv() {
            Some(chunk) => self.take(chunk),
            None => self.finish(),
        }
    }
}

/// Epoch `epoch` of each of `pipelines`, interleaved by `policy`: the
/// items [`PipelineBuilder::add_merged_pipelines`](crate::PipelineBuilder::add_merged_pipelines)
/// feeds its first stage (each run's items, then an [`Error::Dropped`] per
/// item it dropped, or its [`Error::FailureBudget`]). For sources whose
/// item type is not a `Result` (bindings map the errors into their own
/// items).
///
/// ```
/// use std::sync::Arc;
/// use spdl_pipeline::{merge_runs, MergePolicy, PipelineBuilder};
/// let a = Arc::new(PipelineBuilder::new().add_source(vec![1, 2]).build().unwrap());
/// let b = Arc::new(PipelineBuilder::new().add_source(vec![10]).build().unwrap());
/// let out: Vec<i32> = merge_runs(&[a, b], &MergePolicy::RoundRobin, 0).map(Result::unwrap).collect();
/// assert_eq!(out, [1, 10, 2]);
/// ```
pub fn merge_runs<T: Send + 'static>(
    pipelines: &[std::sync::Arc<Pipeline<T>>],
    policy: &MergePolicy,
    epoch: u64,
) -> impl Iterator<Item = Result<T>> + Send + 'static {
    let runs = pipelines.iter().enumerate();
    let runs = runs.map(|(i, p)| MergedRun::new(i, p.run_shared(epoch))).collect();
    Merge::new(runs, policy.clone(), epoch)
}

//! The builder, the running pipeline and its blocking iterator.
//!
//! Each stage is a tokio task between two bounded queues, so a slow
//! consumer stalls the stages upstream with bounded memory. Items move
//! between stages in chunks of whatever is ready at once (see
//! `queue.rs`), so a fast stage costs a wake-up per chunk, not per item.
//! Async stages run on the pipeline's own runtime; blocking stages run on
//! its rayon CPU pool and are awaited, so no runtime thread ever blocks
//! (`stage.rs`). A built pipeline serves many epochs: each
//! [`Pipeline::run`] spawns fresh stage tasks on the same threads.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, Stream, StreamExt};
use tokio::runtime::Runtime;

use crate::aggregate::{Aggregator, CountAggregator};
use crate::config::{FailureBudget, PipelineConfig, StageConfig};
use crate::epoch::{panic_message, Ctx, CtxRef, Env, Input, Output, Rx, LINK_QUEUE};
use crate::merge::{Merge, MergePolicy, MergedRun};
use crate::queue::queue;
use crate::source::{spawn_source, SourceItems};
use crate::stage::{pass_through, spawn_task_stage, Work};
use crate::stats::PipelineStats;
use crate::{DistributedSampler, Error, Failure, Result};

/// Spawns the sequence of stages from a source receiver to an output one.
type Chain<S, T> = Arc<dyn Fn(&CtxRef, Rx<S>) -> Rx<T> + Send + Sync>;
/// Makes the source iterator of an epoch.
type SourceFn<S> = Arc<dyn Fn(u64) -> SourceItems<S> + Send + Sync>;
/// Builds a pipeline: a source, stages that each change the item type, and
/// a sink; checked at compile time.
///
/// ```
/// use spdl_pipeline::{PipelineBuilder, StageConfig};
///
/// let pipeline = PipelineBuilder::new()
///     .add_source(0..100u32)
///     .pipe(|x: u32| async move { Ok::<_, String>(x * 2) }, StageConfig::new("double").with_concurrency(4))
///     .pipe_blocking(|x: u32| if x % 10 == 0 { Err(format!("{x} is round")) } else { Ok(x) }, StageConfig::new("check"))
///     .aggregate(8)
///     .add_sink(4)
///     .build()
///     .unwrap();
/// let mut run = pipeline.run(0);
/// let total: usize = run.by_ref().map(|batch| batch.unwrap().len()).sum();
/// assert_eq!(total, 80); // 20 of 100 doubled values are multiples of 10
/// assert_eq!(run.failures().len(), 20);
/// ```
pub struct PipelineBuilder<S, T> {
    source: Option<SourceFn<S>>,
    chain: Chain<S, T>,
    config: PipelineConfig,
    sink: usize,
}

impl PipelineBuilder<(), ()> {
    /// An empty builder; start with [`PipelineBuilder::add_source`].
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> PipelineBuilder<(), ()> {
        PipelineBuilder::branch()
    }

    /// A source re-iterated for every epoch (any `IntoIterator` that can be
    /// cloned: a range, a `Vec` of paths, ...).
    pub fn add_source<I>(self, source: I) -> PipelineBuilder<I::Item, I::Item>
    where
        I: IntoIterator + Clone + Send + Sync + 'static,
        I::Item: Send + 'static,
        I::IntoIter: Send + 'static,
    {
        self.add_source_fn(move |_| source.clone().into_iter())
    }

    /// A source made per epoch by `f(epoch)` (for example a sampler's
    /// shuffled indices).
    pub fn add_source_fn<F, It>(self, f: F) -> PipelineBuilder<It::Item, It::Item>
    where
        F: Fn(u64) -> It + Send + Sync + 'static,
        It: Iterator + Send + 'static,
        It::Item: Send + 'static,
    {
        self.with_source(Arc::new(move |epoch| SourceItems::Iter(Box::new(f(epoch)))))
    }

    /// An async source made per epoch by `f(epoch)`: a `Stream` polled on
    /// the pipeline's runtime (for sources that are themselves async, such
    /// as object-store listings).
    ///
    /// ```
    /// use spdl_pipeline::PipelineBuilder;
    /// let pipeline = PipelineBuilder::new()
    ///     .add_stream_source_fn(|epoch| futures::stream::iter(vec![epoch, epoch + 1]))
    ///     .build()
    ///     .unwrap();
    /// let out: Vec<u64> = pipeline.run(7).map(Result::unwrap).collect();
    /// assert_eq!(out, [7, 8]);
    /// ```
    pub fn add_stream_source_fn<F, St>(self, f: F) -> PipelineBuilder<St::Item, St::Item>
    where
        F: Fn(u64) -> St + Send + Sync + 'static,
        St: Stream + Send + 'static,
        St::Item: Send + 'static,
    {
        self.with_source(Arc::new(move |epoch| SourceItems::Stream(f(epoch).boxed())))
    }

    /// A builder whose chain starts at `source`, keeping this one's settings.
    fn with_source<S: Send + 'static>(self, source: SourceFn<S>) -> PipelineBuilder<S, S> {
        PipelineBuilder {
            source: Some(source),
            chain: Arc::new(|_, rx| rx),
            config: self.config,
            sink: self.sink,
        }
    }

    /// A source of this rank's dataset indices, reshuffled every epoch.
    pub fn add_sampler(self, sampler: DistributedSampler) -> PipelineBuilder<usize, usize> {
        self.add_source_fn(move |epoch| sampler.indices(epoch).into_iter())
    }
}

impl<T: Send + 'static> PipelineBuilder<T, T> {
    /// A sub-chain without a source, for [`PipelineBuilder::route`].
    pub fn branch() -> PipelineBuilder<T, T> {
        PipelineBuilder {
            source: None,
            chain: Arc::new(|_, rx| rx),
            config: PipelineConfig::default(),
            sink: 1,
        }
    }
}

impl PipelineBuilder<(), ()> {
    /// A source that merges several sources (round-robin, or weighted with
    /// a seed mixed with the epoch); see [`Merge`].
    ///
    /// ```
    /// use spdl_pipeline::{MergePolicy, PipelineBuilder};
    /// let pipeline = PipelineBuilder::new()
    ///     .add_merged_sources(vec![vec!["a1", "a2"], vec!["b1"]], MergePolicy::RoundRobin)
    ///     .build()
    ///     .unwrap();
    /// let out: Vec<&str> = pipeline.run(0).map(Result::unwrap).collect();
    /// assert_eq!(out, ["a1", "b1", "a2"]);
    /// ```
    pub fn add_merged_sources<I>(self, sources: Vec<I>, policy: MergePolicy) -> PipelineBuilder<I::Item, I::Item>
    where
        I: IntoIterator + Clone + Send + Sync + 'static,
        I::Item: Send + 'static,
        I::IntoIter: Send + 'static,
    {
        self.add_source_fn(move |epoch| Merge::new(sources.clone(), policy.clone(), epoch))
    }

    /// A source that merges whole pipelines: epoch `e` of the new pipeline
    /// runs epoch `e` of each one and interleaves their outputs by
    /// `policy`. Each run's items arrive as it yields them, then an
    /// [`Error::Dropped`] for every item it dropped within its budgets; a
    /// run stopped over budget yields its [`Error::FailureBudget`] (which
    /// lists its failures) and ends. The next stage decides what an `Err`
    /// means: returning it counts and reports it there, as the example
    /// does, so nothing a merged pipeline dropped goes unreported.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use spdl_pipeline::{MergePolicy, PipelineBuilder, StageConfig};
    /// let evens = Arc::new(PipelineBuilder::new().add_source_fn(|e| (0..2).map(move |i| 10 * e + 2 * i)).build().unwrap());
    /// let odds = Arc::new(PipelineBuilder::new().add_source(vec![1u64]).build().unwrap());
    /// let merged = PipelineBuilder::new()
    ///     .add_merged_pipelines(vec![evens, odds], MergePolicy::RoundRobin)
    ///     .pipe_blocking(|r: spdl_pipeline::Result<u64>| r.map_err(|e| e.to_string()), StageConfig::new("merged").with_ordered(true))
    ///     .build()
    ///     .unwrap();
    /// let out: Vec<u64> = merged.run(1).map(Result::unwrap).collect();
    /// assert_eq!(out, [10, 1, 12]);
    /// ```
    pub fn add_merged_pipelines<T: Send + 'static>(
        self,
        pipelines: Vec<Arc<Pipeline<T>>>,
        policy: MergePolicy,
    ) -> PipelineBuilder<Result<T>, Result<T>> {
        self.add_source_fn(move |epoch| {
            let runs = pipelines.iter().enumerate();
            let runs = runs.map(|(i, p)| MergedRun::new(i, p.run_shared(epoch))).collect();
            Merge::new(runs, policy.clone(), epoch)
        })
    }
}

impl Default for PipelineBuilder<(), ()> {
    fn default() -> Self {
        PipelineBuilder::new()
    }
}

impl<S: Send + 'static, T: Send + 'static> PipelineBuilder<S, T> {
    /// Sets the pipeline-wide settings (threads, budget, reports).
    #[must_use]
    pub fn with_config(mut self, config: PipelineConfig) -> Self {
        self.config = config;
        self
    }

    /// Appends a stage that spawns its task(s) for each run.
    fn then<U: Send + 'static>(
        self,
        stage: impl Fn(&CtxRef, Rx<T>) -> Rx<U> + Send + Sync + 'static,
    ) -> PipelineBuilder<S, U> {
        let prev = self.chain;
        PipelineBuilder {
            source: self.source,
            chain: Arc::new(move |ctx, rx| stage(ctx, prev(ctx, rx))),
            config: self.config,
            sink: self.sink,
        }
    }

    fn task_stage<U: Send + 'static>(self, work: Work<T, U>, cfg: StageConfig) -> PipelineBuilder<S, U> {
        self.then(move |ctx, rx| spawn_task_stage(ctx, rx, work.clone(), cfg.clone()))
    }

    /// An async stage: `f` runs on the pipeline's runtime, up to
    /// `concurrency` items at once. An `Err`, a panic or a timeout drops the
    /// item and is reported.
    pub fn pipe<U, E, F, Fut>(self, f: F, cfg: StageConfig) -> PipelineBuilder<S, U>
    where
        U: Send + 'static,
        E: std::fmt::Display,
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<U, E>> + Send + 'static,
    {
        let f = Arc::new(f);
        let work = Work::Async(Arc::new(move |item| {
            let f = f.clone();
            async move { f(item).await.map_err(|e| e.to_string()) }.boxed()
        }));
        self.task_stage(work, cfg)
    }

    /// A blocking (CPU) stage: `f` runs on the pipeline's rayon pool, never
    /// on a runtime thread; up to `concurrency` calls at once. When calls
    /// are short (well under 50 us), one pool task runs several items one
    /// after another, so the hand-off to the pool is shared.
    pub fn pipe_blocking<U, E, F>(self, f: F, cfg: StageConfig) -> PipelineBuilder<S, U>
    where
        U: Send + 'static,
        E: std::fmt::Display,
        F: Fn(T) -> std::result::Result<U, E> + Send + Sync + 'static,
    {
        let work = Work::Blocking(Arc::new(move |item| f(item).map_err(|e| e.to_string())));
        self.task_stage(work, cfg)
    }

    /// Groups items into `Vec`s of `n` (the last may be shorter).
    pub fn aggregate(self, n: usize) -> PipelineBuilder<S, Vec<T>> {
        self.aggregate_with(n, false)
    }

    /// Groups items into `Vec`s of `n`; with `drop_last`, a shorter last
    /// group is dropped.
    pub fn aggregate_with(self, n: usize, drop_last: bool) -> PipelineBuilder<S, Vec<T>> {
        let n = n.max(1);
        self.aggregate_by("aggregate", move || CountAggregator {
            n,
            drop_last,
            group: Vec::with_capacity(n),
        })
    }

    /// Folds items with a custom [`Aggregator`] made fresh for each epoch.
    pub fn aggregate_by<A, F>(self, name: &str, make: F) -> PipelineBuilder<S, A::Output>
    where
        A: Aggregator<T>,
        F: Fn() -> A + Send + Sync + 'static,
    {
        let stage = name.to_string();
        self.then(move |ctx, rx| {
            let (tx, out) = queue(LINK_QUEUE);
            let c = ctx.register(&stage, LINK_QUEUE);
            let mut aggregator = make();
            let ctx = ctx.clone();
            let budget = FailureBudget::default();
            ctx.handle.clone().spawn(async move {
                let mut input = Input::new(rx, c.clone());
                let mut output = Output::new(&ctx, tx, c.clone());
                let mut first = None;
                // A panicking aggregator loses the items it held: report it
                // as a failure of this stage and go on (or stop, at end).
                let mut guarded = |seq: u64, step: &mut dyn FnMut(&mut A) -> Option<A::Output>| {
                    std::panic::catch_unwind(AssertUnwindSafe(|| step(&mut aggregator))).unwrap_or_else(|p| {
                        let failure = Failure {
                            stage: c.name.clone(),
                            item: seq,
                            reason: panic_message(p),
                        };
                        ctx.fail(&c, &budget, failure);
                        None
                    })
                };
                while let Some(chunk) = input.next_chunk().await {
                    for env in chunk {
                        let seq = *first.get_or_insert(env.seq);
                        let mut value = Some(env.value);
                        let out = guarded(env.seq, &mut |a: &mut A| a.push(value.take().expect("pushed once")));
                        if let Some(value) = out {
                            first = None;
                            if !output.push(Env { seq, value }).await {
                                return;
                            }
                        }
                    }
                    // A budget exceeded (here or elsewhere) stops the stage.
                    if !output.flush().await || ctx.aborted() {
                        return;
                    }
                }
                let seq = first.unwrap_or(0);
                if let Some(value) = guarded(seq, &mut |a: &mut A| a.finish()) {
                    output.push(Env { seq, value }).await;
                    output.flush().await;
                }
            });
            out
        })
    }

    /// Sends each item to branch `select(&item)` (taken modulo the number
    /// of branches) and merges the branches' outputs (completion order).
    /// Branches are built with [`PipelineBuilder::branch`].
    ///
    /// ```
    /// use spdl_pipeline::{PipelineBuilder, StageConfig};
    /// let double = PipelineBuilder::branch().pipe(|x: u32| async move { Ok::<_, String>(x * 2) }, StageConfig::new("double"));
    /// let negate = PipelineBuilder::branch().pipe(|x: u32| async move { Ok::<_, String>(x + 1000) }, StageConfig::new("shift"));
    /// let pipeline = PipelineBuilder::new()
    ///     .add_source(0..6u32)
    ///     .route(|x: &u32| (*x % 2) as usize, vec![double, negate])
    ///     .build()
    ///     .unwrap();
    /// let mut out: Vec<u32> = pipeline.run(0).map(Result::unwrap).collect();
    /// out.sort_unstable();
    /// assert_eq!(out, [0, 4, 8, 1001, 1003, 1005]);
    /// ```
    ///
    /// # Panics
    /// When `branches` is empty.
    pub fn route<U, F>(self, select: F, branches: Vec<PipelineBuilder<T, U>>) -> PipelineBuilder<S, U>
    where
        U: Send + 'static,
        F: Fn(&T) -> usize + Send + Sync + 'static,
    {
        assert!(!branches.is_empty(), "route needs at least one branch");
        let chains: Vec<Chain<T, U>> = branches.into_iter().map(|b| b.chain).collect();
        let select = Arc::new(select);
        self.then(move |ctx, rx| {
            let c = ctx.register("route", LINK_QUEUE);
            let (mut outputs, branch_outs): (Vec<_>, Vec<_>) = chains
                .iter()
                .map(|chain| {
                    let (tx, branch_rx) = queue(LINK_QUEUE);
                    (Output::new(ctx, tx, c.clone()), chain(ctx, branch_rx))
                })
                .unzip();
            let (merged_tx, merged) = queue(LINK_QUEUE);
            for mut branch_out in branch_outs {
                let merged_tx = merged_tx.clone();
                ctx.handle.spawn(async move {
                    while let Some(chunk) = branch_out.recv().await {
                        if !merged_tx.send(chunk).await {
                            return;
                        }
                    }
                });
            }
            let select = select.clone();
            let ctx = ctx.clone();
            ctx.handle.clone().spawn(async move {
                let mut input = Input::new(rx, c.clone());
                let branches = outputs.len().max(1);
                while let Some(chunk) = input.next_chunk().await {
                    for env in chunk {
                        let i = match std::panic::catch_unwind(AssertUnwindSafe(|| select(&env.value))) {
                            Ok(i) => i % branches,
                            Err(p) => {
                                let failure = Failure {
                                    stage: c.name.clone(),
                                    item: env.seq,
                                    reason: panic_message(p),
                                };
                                if ctx.fail(&c, &FailureBudget::default(), failure) {
                                    continue;
                                }
                                return;
                            }
                        };
                        if !outputs[i].push(env).await {
                            return;
                        }
                    }
                    for output in &mut outputs {
                        if !output.flush().await {
                            return;
                        }
                    }
                }
            });
            merged
        })
    }

    /// Buffers up to `capacity` finished items for the consumer.
    pub fn add_sink(mut self, capacity: usize) -> Self {
        self.sink = capacity.max(1);
        self
    }

    /// Creates the runtime and CPU pool (threads start now, not before).
    ///
    /// # Errors
    /// [`Error::Build`] without a source or when threads cannot start.
    pub fn build(self) -> Result<Pipeline<T>> {
        let source = self
            .source
            .ok_or_else(|| Error::Build("no source: call add_source first".into()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.config.runtime_threads.max(1))
            .thread_name(format!("{}-rt", self.config.name))
            .enable_time()
            .build()
            .map_err(|e| Error::Build(e.to_string()))?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.config.cpu_threads.max(1))
            .thread_name({
                let name = self.config.name.clone();
                move |i| format!("{name}-cpu-{i}")
            })
            .build()
            .map_err(|e| Error::Build(e.to_string()))?;
        let chain = self.chain;
        let sink = self.sink;
        let start: Start<T> = Arc::new(move |ctx: &CtxRef, epoch| {
            let (tx, rx) = queue(LINK_QUEUE);
            spawn_source(ctx, source(epoch), tx);
            let out = chain(ctx, rx);
            pass_through(ctx, out, "sink", sink)
        });
        Ok(Pipeline {
            runtime: Some(runtime),
            pool: Arc::new(pool),
            start,
            config: self.config,
        })
    }
}

impl<S: Send + 'static, T: IntoIterator + Send + 'static> PipelineBuilder<S, T>
where
    T::Item: Send + 'static,
    T::IntoIter: Send,
{
    /// Emits each element of every item (a `Vec` from `aggregate` or a
    /// fan-out stage, an `Option` from a filtering stage).
    pub fn disaggregate(self) -> PipelineBuilder<S, T::Item> {
        self.then(|ctx, rx| {
            let (tx, out) = queue(LINK_QUEUE);
            let c = ctx.register("disaggregate", LINK_QUEUE);
            let mut output = Output::new(ctx, tx, c.clone());
            ctx.handle.spawn(async move {
                let mut input = Input::new(rx, c);
                while let Some(chunk) = input.next_chunk().await {
                    for env in chunk {
                        for value in env.value {
                            if !output.push(Env { seq: env.seq, value }).await {
                                return;
                            }
                        }
                    }
                    if !output.flush().await {
                        return;
                    }
                }
            });
            out
        })
    }
}

type Start<T> = Arc<dyn Fn(&CtxRef, u64) -> Rx<T> + Send + Sync>;

/// One stage's throughput alone at one concurrency; see [`Pipeline::profile`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StageProfile {
    /// The stage's name.
    pub stage: String,
    /// The concurrency it ran at.
    pub concurrency: usize,
    /// Items it handled (outputs and failures).
    pub items: u64,
    /// Wall time from its first to its last item.
    pub elapsed: Duration,
    /// `items / elapsed`.
    pub items_per_sec: f64,
}

/// A built pipeline: its threads, and the recipe for each epoch.
///
/// Dropping it cancels every epoch's pending work: async stages stop at
/// their next await, the runtime's threads are joined (waiting at most 5 s
/// for a source iterator blocked inside `next`; not waited for at all when
/// dropped inside an async context), and the CPU pool is shut down. A blocking call already running on the CPU pool cannot be
/// interrupted: it completes on its thread, its result is dropped, and the
/// thread then exits. A panic in any stage is caught and reported as that
/// item's failure; it never poisons the pipeline.
pub struct Pipeline<T> {
    runtime: Option<Runtime>,
    pool: Arc<rayon::ThreadPool>,
    start: Start<T>,
    config: PipelineConfig,
}

impl<T: Send + 'static> Pipeline<T> {
    /// Starts epoch `epoch` and returns its output. Dropping the [`Run`]
    /// before the end stops the epoch's stages (blocking work already on
    /// the CPU pool finishes, its result is dropped).
    pub fn run(&self, epoch: u64) -> Run<'_, T> {
        self.start_run(epoch, None, None)
    }

    fn start_run(&self, epoch: u64, limit: Option<u64>, profile: Option<(usize, usize)>) -> Run<'_, T> {
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
        });
        let rx = {
            let _guard = runtime.enter();
            (self.start)(&ctx, epoch)
        };
        if let Some(every) = self.config.report_interval {
            spawn_reporter(&ctx, every);
        }
        Run {
            rx: Some(rx),
            ready: Vec::new().into_iter(),
            ctx,
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
        let mut run = self.run(epoch);
        Run {
            rx: run.rx.take(),
            ready: std::mem::take(&mut run.ready),
            ctx: run.ctx.clone(),
            _pipeline: std::marker::PhantomData,
            _owner: Some(self.clone()),
        }
    }
}

impl<T: Send + 'static> Pipeline<T> {
    /// Runs each `pipe` stage alone at each of `concurrencies` on the first
    /// `items` source items of epoch 0 (the stages before it run as
    /// configured and their output is buffered first), and reports items/s,
    /// so concurrencies can be picked from data.
    ///
    /// ```
    /// use spdl_pipeline::{PipelineBuilder, StageConfig};
    /// let pipeline = PipelineBuilder::new()
    ///     .add_source(0..64u32)
    ///     .pipe_blocking(|x: u32| Ok::<_, String>(x + 1), StageConfig::new("inc"))
    ///     .build()
    ///     .unwrap();
    /// let report = pipeline.profile(&[1, 4], 32);
    /// assert_eq!(report.len(), 2);
    /// assert!(report.iter().all(|p| p.stage == "inc" && p.items == 32));
    /// ```
    pub fn profile(&self, concurrencies: &[usize], items: u64) -> Vec<StageProfile> {
        let mut report = Vec::new();
        for stage in 0.. {
            let before = report.len();
            for &concurrency in concurrencies {
                let mut run = self.start_run(0, Some(items), Some((stage, concurrency.max(1))));
                run.by_ref().for_each(drop);
                let result = run.ctx.profile_result.lock().expect("profile lock").take();
                if let Some((name, n, elapsed)) = result {
                    report.push(StageProfile {
                        stage: name,
                        concurrency,
                        items: n,
                        elapsed,
                        items_per_sec: n as f64 / elapsed.as_secs_f64().max(1e-9),
                    });
                }
            }
            if report.len() == before {
                return report;
            }
        }
        report
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
    ctx: CtxRef,
    _pipeline: std::marker::PhantomData<&'p ()>,
    /// The pipeline itself, for runs that own it ([`Pipeline::run_shared`]).
    _owner: Option<Arc<Pipeline<T>>>,
}

impl<'p, T> Run<'p, T> {
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
            return Some(Ok(env.value));
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
            return Some(Some(Ok(env.value)));
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
        self.ready.next().map(|env| Ok(env.value))
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
        let items = ready.chain(chunks.flatten()).map(|env| Ok(env.value));
        let end = futures::stream::once(async move {
            let _owner = owner; // the pipeline lives until the stream ends
            ctx.done.store(true, Ordering::Relaxed);
            ctx.abort.lock().expect("abort lock").take().map(Err)
        })
        .filter_map(futures::future::ready);
        items.chain(end)
    }
}

impl<T> Iterator for Run<'_, T> {
    type Item = Result<T>;

    /// Blocks the calling thread (never call it from inside an async task).
    fn next(&mut self) -> Option<Result<T>> {
        if let Some(env) = self.ready.next() {
            return Some(Ok(env.value));
        }
        let rx = self.rx.as_mut()?;
        match rx.blocking_recv() {
            Some(chunk) => self.take(chunk),
            None => self.finish(),
        }
    }
}

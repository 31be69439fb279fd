//! The builder: composes a source, stages and a sink into a recipe that
//! [`PipelineBuilder::build`] turns into a [`Pipeline`]. It only composes:
//! each method appends the `spawn_*` function of one stage kind
//! (`stages/`), called with fresh state for every run. Types are checked
//! at compile time: each stage changes the item type.

use std::future::Future;
use std::sync::Arc;

use futures::{Stream, StreamExt};

use crate::config::{PipelineConfig, StageConfig};
use crate::epoch::{CtxRef, Rx};
use crate::error::{Error, Result};
use crate::run::merge_runs;
use crate::run::Pipeline;
use crate::sampler::DistributedSampler;
use crate::stages::aggregate::{spawn_aggregate, Aggregator, CountAggregator};
use crate::stages::flatten::spawn_flatten;
use crate::stages::merge::{Merge, MergePolicy};
use crate::stages::route::spawn_route;
use crate::stages::sink::spawn_sink;
use crate::stages::source::{spawn_source, SourceItems};
use crate::stages::task::{spawn_task_stage, Work};
use crate::stages::Chain;

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
        self.with_source(Arc::new(move |epoch| SourceItems::Iter(Box::new(f(epoch).map(Ok)))))
    }

    /// A fallible source made per epoch by `f(epoch)`: its `Err` item ends
    /// the epoch with [`Error::Source`](crate::Error::Source) after the
    /// items before it were delivered (a source that cannot be read is an
    /// error, never a short epoch), and is listed by `Run::failures`.
    ///
    /// ```
    /// use spdl_pipeline::{Error, PipelineBuilder};
    /// let pipeline = PipelineBuilder::new()
    ///     .add_try_source_fn(|_| vec![Ok(1), Ok(2), Err("disk gone"), Ok(3)].into_iter())
    ///     .build()
    ///     .unwrap();
    /// let out: Vec<_> = pipeline.run(0).collect();
    /// assert_eq!(out[..2].iter().map(|r| *r.as_ref().unwrap()).collect::<Vec<i32>>(), [1, 2]);
    /// assert!(matches!(out[2], Err(Error::Source { item: 2, .. })));
    /// assert_eq!(out.len(), 3);
    /// ```
    pub fn add_try_source_fn<F, It, T, E>(self, f: F) -> PipelineBuilder<T, T>
    where
        F: Fn(u64) -> It + Send + Sync + 'static,
        It: Iterator<Item = std::result::Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: std::fmt::Display,
    {
        let items = move |epoch| f(epoch).map(|r: std::result::Result<T, E>| r.map_err(|e| e.to_string()));
        self.with_source(Arc::new(move |epoch| SourceItems::Iter(Box::new(items(epoch)))))
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
        self.with_source(Arc::new(move |epoch| SourceItems::Stream(f(epoch).map(Ok).boxed())))
    }

    /// A builder whose chain starts at `source`, keeping this one's settings.
    fn with_source<S: Send + 'static>(self, source: SourceFn<S>) -> PipelineBuilder<S, S> {
        PipelineBuilder {
            source: Some(source),
            config: self.config,
            sink: self.sink,
            ..PipelineBuilder::branch()
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
        self.add_source_fn(move |epoch| merge_runs(&pipelines, &policy, epoch))
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
        self.task_stage(Work::future(f), cfg)
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
        self.task_stage(Work::blocking(f), cfg)
    }

    /// Groups items into `Vec`s of `n` (the last may be shorter).
    pub fn aggregate(self, n: usize) -> PipelineBuilder<S, Vec<T>> {
        self.aggregate_with(n, false)
    }

    /// Groups items into `Vec`s of `n`; with `drop_last`, a shorter last
    /// group is dropped.
    pub fn aggregate_with(self, n: usize, drop_last: bool) -> PipelineBuilder<S, Vec<T>> {
        self.aggregate_by("aggregate", move || CountAggregator::new(n, drop_last))
    }

    /// Folds items with a custom [`Aggregator`] made fresh for each epoch.
    pub fn aggregate_by<A, F>(self, name: &str, make: F) -> PipelineBuilder<S, A::Output>
    where
        A: Aggregator<T>,
        F: Fn() -> A + Send + Sync + 'static,
    {
        let name = name.to_string();
        self.then(move |ctx, rx| spawn_aggregate(ctx, rx, &name, make()))
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
        self.then(move |ctx, rx| spawn_route(ctx, rx, select.clone(), &chains))
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
        let (chain, sink) = (self.chain, self.sink);
        Pipeline::new(self.config, move |ctx, epoch| {
            let rx = spawn_source(ctx, source(epoch));
            spawn_sink(ctx, chain(ctx, rx), sink)
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
        self.then(spawn_flatten)
    }
}

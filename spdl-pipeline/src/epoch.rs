//! What one running epoch shares between its stages ([`Ctx`]: the
//! runtime, the CPU pool, counters, failures), and the two ends of every
//! stage: [`Input`] takes chunks from the queue before it, [`Output`]
//! gathers items into chunks for the queue after it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use crate::config::FailureBudget;
use crate::error::{Error, Failure};
use crate::progress::Progress;
use crate::queue::{Receiver, Sender};
use crate::stats::{PipelineStats, StageCounters};

/// Capacity (items) of the queues the pipeline adds itself (after the
/// source, aggregate, disaggregate, route).
pub(crate) const LINK_QUEUE: usize = 16;

/// An item with its position in the source.
pub(crate) struct Env<T> {
    pub seq: u64,
    pub value: T,
}

pub(crate) type Tx<T> = Sender<Env<T>>;
pub(crate) type Rx<T> = Receiver<Env<T>>;

/// What a running epoch shares between its stages.
pub(crate) struct Ctx {
    pub handle: Handle,
    pub pool: Arc<rayon::ThreadPool>,
    pub counters: Mutex<Vec<Arc<StageCounters>>>,
    pub failures: Mutex<Vec<Failure>>,
    pub abort: Mutex<Option<Error>>,
    pub budget: FailureBudget,
    pub source_items: AtomicU64,
    pub done: AtomicBool,
    /// The most items handed from one stage to the next at once.
    pub max_chunk: usize,
    /// Stop the source after this many items (profiling).
    pub limit: Option<u64>,
    /// Profile the task stage with this ordinal at this concurrency.
    pub profile: Option<(usize, usize)>,
    /// Task stages spawned so far (gives each its ordinal).
    pub task_stages: AtomicU64,
    /// The profiled stage's name, items handled and time.
    pub profile_result: Mutex<Option<(String, u64, Duration)>>,
    /// Which source items are finished (resumable runs).
    pub progress: Progress,
}

pub(crate) type CtxRef = Arc<Ctx>;

impl Ctx {
    pub(crate) fn register(&self, name: &str, capacity: usize) -> Arc<StageCounters> {
        let c = Arc::new(StageCounters::new(name, capacity));
        c.depth.store(self.progress.depth(), Ordering::Relaxed);
        self.counters.lock().expect("counters lock").push(c.clone());
        c
    }

    pub(crate) fn stats(&self) -> PipelineStats {
        let stages = self
            .counters
            .lock()
            .expect("counters lock")
            .iter()
            .map(|c| c.snapshot())
            .collect();
        PipelineStats { stages }
    }

    /// Records a failure; returns false when a budget is exceeded (the
    /// pipeline is then aborted with the list of failures).
    pub(crate) fn fail(&self, counters: &StageCounters, budget: &FailureBudget, failure: Failure) -> bool {
        tracing::warn!(target: "spdl_pipeline", "dropped {failure}");
        self.progress
            .finished(counters.depth.load(Ordering::Relaxed), failure.item);
        let stage_failures = counters.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let mut failures = self.failures.lock().expect("failures lock");
        failures.push(failure);
        // Items handled so far (items arrive in chunks, so the count of
        // arrivals runs ahead of the work).
        let seen = counters.items_out.load(Ordering::Relaxed) + stage_failures;
        let scope = if budget.exceeded(stage_failures, seen) {
            Some((counters.name.clone(), budget.to_string()))
        } else if self
            .budget
            .exceeded(failures.len() as u64, self.source_items.load(Ordering::Relaxed))
        {
            Some(("pipeline".to_string(), self.budget.to_string()))
        } else {
            None
        };
        let Some((scope, budget)) = scope else { return true };
        self.abort
            .lock()
            .expect("abort lock")
            .get_or_insert(Error::FailureBudget {
                scope,
                budget,
                failures: failures.clone(),
            });
        false
    }

    /// Records the panic `p` of stage `c` on the item at `item` as a
    /// failure; returns false as [`Ctx::fail`] does.
    pub(crate) fn fail_panic(
        &self,
        c: &StageCounters,
        budget: &FailureBudget,
        item: u64,
        p: Box<dyn std::any::Any + Send>,
    ) -> bool {
        let failure = Failure {
            stage: c.name.clone(),
            item,
            reason: panic_message(p),
        };
        self.fail(c, budget, failure)
    }

    /// Records that the source failed before its `item`-th item: the
    /// epoch ends with [`Error::Source`] after the items already produced.
    pub(crate) fn fail_source(&self, c: &StageCounters, item: u64, reason: String) {
        tracing::warn!(target: "spdl_pipeline", "the source failed at item {item}: {reason}");
        c.failures.fetch_add(1, Ordering::Relaxed);
        let failure = Failure {
            stage: c.name.clone(),
            item,
            reason: reason.clone(),
        };
        self.failures.lock().expect("failures lock").push(failure);
        self.abort
            .lock()
            .expect("abort lock")
            .get_or_insert(Error::Source { item, reason });
    }

    pub(crate) fn aborted(&self) -> bool {
        self.abort.lock().expect("abort lock").is_some()
    }
}

/// The input of a stage: chunks from the queue before it, recording the
/// wait and the arrivals.
pub(crate) struct Input<T> {
    rx: Rx<T>,
    c: Arc<StageCounters>,
}

impl<T> Input<T> {
    pub(crate) fn new(rx: Rx<T>, c: Arc<StageCounters>) -> Self {
        Input { rx, c }
    }

    pub(crate) async fn next_chunk(&mut self) -> Option<Vec<Env<T>>> {
        let t0 = Instant::now();
        let chunk = self.rx.recv().await?;
        StageCounters::add(&self.c.get_wait_ns, t0.elapsed());
        Some(self.arrived(chunk))
    }

    /// [`Input::next_chunk`] if it needs no waiting.
    pub(crate) fn ready_chunk(&mut self) -> Option<Option<Vec<Env<T>>>> {
        Some(self.rx.try_recv()?.map(|chunk| self.arrived(chunk)))
    }

    pub(crate) fn arrived(&self, chunk: Vec<Env<T>>) -> Vec<Env<T>> {
        self.c.items_in.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        chunk
    }
}

/// The output of a stage: items gathered into a chunk that is handed over
/// when full or when the stage flushes at the end of a round of work. Every
/// send returns false once the consumer is gone.
pub(crate) struct Output<T> {
    tx: Tx<T>,
    c: Arc<StageCounters>,
    chunk: Vec<Env<T>>,
    max_chunk: usize,
}

impl<T> Output<T> {
    pub(crate) fn new(ctx: &Ctx, tx: Tx<T>, c: Arc<StageCounters>) -> Self {
        Output {
            tx,
            c,
            chunk: Vec::new(),
            max_chunk: ctx.max_chunk,
        }
    }

    /// Whether the consumer is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.chunk.len() >= self.max_chunk
    }

    /// Adds an item without handing anything over. It counts as out of
    /// the stage from now on (failure rates compare failures with the
    /// items a stage has handled).
    pub(crate) fn add(&mut self, env: Env<T>) {
        self.c.items_out.fetch_add(1, Ordering::Relaxed);
        self.chunk.push(env);
    }

    /// Adds an item, handing the chunk over when it is full.
    pub(crate) async fn push(&mut self, env: Env<T>) -> bool {
        self.add(env);
        !self.is_full() || self.flush().await
    }

    /// Hands over the items gathered so far.
    pub(crate) async fn flush(&mut self) -> bool {
        let chunk = std::mem::take(&mut self.chunk);
        self.hand_over(chunk).await
    }

    /// Hands over `chunk`, items not added with [`Output::add`].
    pub(crate) async fn send(&mut self, chunk: Vec<Env<T>>) -> bool {
        self.c.items_out.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        self.hand_over(chunk).await
    }

    /// Puts `chunk` into the queue, recording the wait.
    async fn hand_over(&mut self, chunk: Vec<Env<T>>) -> bool {
        let t0 = Instant::now();
        let ok = self.tx.send(chunk).await;
        StageCounters::add(&self.c.put_wait_ns, t0.elapsed());
        self.c.queue_len.store(self.tx.len() as u64, Ordering::Relaxed);
        ok
    }
}

pub(crate) fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    let msg = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("panicked: {msg}")
}

//! `pipe` stages: the work of one item (an async call on the runtime or a
//! blocking call on the CPU pool), run up to `concurrency` at a time
//! between two queues, in input or completion order. Blocking calls run on
//! the pipeline's rayon pool and are awaited, so no runtime thread ever
//! blocks; when they are short, one pool task runs about [`UNIT_TIME`] of
//! them one after another, so the hand-off is shared. An `Err`, a panic or
//! a timeout drops the item and is reported. A blocking call's timeout
//! counts from the moment the call starts on a pool thread, not from when
//! it was queued: a call that timed out is reported at once but keeps its
//! thread, and its slot of the stage's concurrency ([`Stuck`]), until it
//! returns; the items queued behind it have not timed out.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

use crate::config::StageConfig;
use crate::epoch::{panic_message, Ctx, CtxRef, Env, Input, Output, Rx};
use crate::error::Failure;
use crate::queue::queue;
use crate::stats::StageCounters;

/// A blocking stage gives one CPU-pool task about this much work (from the
/// stage's mean task time so far), so short calls share one hand-off.
const UNIT_TIME: Duration = Duration::from_micros(50);

/// A stage's blocking calls that timed out but have not returned: each
/// still holds a pool thread, so it keeps its slot of the stage's
/// concurrency until it returns.
#[derive(Default)]
struct Stuck {
    count: AtomicUsize,
    returned: tokio::sync::Notify,
}

/// The states of one blocking task, for [`Stuck`].
const RUNNING: u8 = 0;
const RETURNED: u8 = 1;
const TIMED_OUT: u8 = 2;

/// Results of a unit of work, by source position.
type Done<U> = Vec<(u64, std::result::Result<U, String>)>;

/// What a `pipe` stage does with one item.
pub(crate) enum Work<T, U> {
    /// A future on the runtime.
    Async(Arc<dyn Fn(T) -> BoxFuture<'static, std::result::Result<U, String>> + Send + Sync>),
    /// A call on the CPU pool.
    Blocking(Arc<dyn Fn(T) -> std::result::Result<U, String> + Send + Sync>),
}

impl<T, U> Clone for Work<T, U> {
    fn clone(&self) -> Self {
        match self {
            Work::Async(f) => Work::Async(f.clone()),
            Work::Blocking(f) => Work::Blocking(f.clone()),
        }
    }
}

fn timed_out(t: Duration) -> String {
    format!("timed out after {t:?}")
}

/// The same failure for every item of a unit of work.
fn all_failed<U>(seqs: &[u64], reason: String) -> Done<U> {
    seqs.iter().map(|&seq| (seq, Err(reason.clone()))).collect()
}

impl<T: Send + 'static, U: Send + 'static> Work<T, U> {
    /// `f` as a future on the runtime (called when the future is first
    /// polled, so a panic inside `f` is caught); an `Err` is reported by
    /// its `Display`.
    pub(crate) fn future<E, F, Fut>(f: F) -> Self
    where
        E: std::fmt::Display,
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<U, E>> + Send + 'static,
    {
        let f = Arc::new(f);
        Work::Async(Arc::new(move |item| {
            let f = f.clone();
            async move { f(item).await.map_err(|e| e.to_string()) }.boxed()
        }))
    }

    /// `f` as a call on the CPU pool; an `Err` is reported by its `Display`.
    pub(crate) fn blocking<E, F>(f: F) -> Self
    where
        E: std::fmt::Display,
        F: Fn(T) -> std::result::Result<U, E> + Send + Sync + 'static,
    {
        Work::Blocking(Arc::new(move |item| f(item).map_err(|e| e.to_string())))
    }

    /// How many of `waiting` items one task takes when `free` slots are
    /// open: one future per item; for the CPU pool, about [`UNIT_TIME`] of
    /// work (one item until a mean is known, or with a timeout), spread
    /// over the free slots.
    fn unit_size(&self, ctx: &Ctx, c: &StageCounters, timeout: Option<Duration>, waiting: usize, free: usize) -> usize {
        let Work::Blocking(_) = self else { return 1 };
        let done = c.items_out.load(Ordering::Relaxed) + c.failures.load(Ordering::Relaxed);
        let mean_ns = c.task_ns.load(Ordering::Relaxed).checked_div(done);
        let per_task = match (timeout, mean_ns) {
            (None, Some(mean)) => (UNIT_TIME.as_nanos() as u64 / mean.max(1)).clamp(1, ctx.max_chunk as u64) as usize,
            _ => 1,
        };
        per_task.min(waiting.div_ceil(free.max(1))).max(1)
    }

    /// Starts one task over `items` (run one after another); its future
    /// gives each item's result. Panics and timeouts become `Err`.
    fn start(
        &self,
        ctx: &Ctx,
        c: &Arc<StageCounters>,
        items: Vec<Env<T>>,
        timeout: Option<Duration>,
        stuck: &Arc<Stuck>,
    ) -> BoxFuture<'static, Done<U>> {
        match self {
            Work::Async(f) => start_async(ctx, f.clone(), c.clone(), items, timeout),
            Work::Blocking(f) => start_blocking(ctx, f.clone(), c.clone(), items, timeout, stuck.clone()),
        }
    }
}

/// [`Work::start`] for a future on the runtime.
fn start_async<T: Send + 'static, U: Send + 'static>(
    ctx: &Ctx,
    f: Arc<dyn Fn(T) -> BoxFuture<'static, std::result::Result<U, String>> + Send + Sync>,
    c: Arc<StageCounters>,
    items: Vec<Env<T>>,
    timeout: Option<Duration>,
) -> BoxFuture<'static, Done<U>> {
    // Positions to report if a spawned task is cancelled.
    let seqs: Vec<u64> = match timeout {
        Some(_) => items.iter().map(|env| env.seq).collect(),
        None => Vec::new(),
    };
    let run = async move {
        let mut done = Vec::with_capacity(items.len());
        for env in items {
            let t0 = Instant::now();
            let work = AssertUnwindSafe(f(env.value)).catch_unwind();
            let result = match timeout {
                Some(t) => tokio::time::timeout(t, work)
                    .await
                    .unwrap_or_else(|_| Ok(Err(timed_out(t)))),
                None => work.await,
            };
            c.record_task(t0.elapsed());
            done.push((env.seq, result.unwrap_or_else(|p| Err(panic_message(p)))));
        }
        done
    };
    if timeout.is_none() {
        return run.boxed();
    }
    // With a timeout the work runs as a task of its own, so its clock and
    // its progress do not depend on this stage being polled (it is not
    // while it waits to put its output).
    let task = ctx.handle.spawn(run);
    async move {
        task.await
            .unwrap_or_else(|e| all_failed(&seqs, format!("the task was cancelled: {e}")))
    }
    .boxed()
}

/// [`Work::start`] for a call on the CPU pool.
fn start_blocking<T: Send + 'static, U: Send + 'static>(
    ctx: &Ctx,
    f: Arc<dyn Fn(T) -> std::result::Result<U, String> + Send + Sync>,
    c: Arc<StageCounters>,
    items: Vec<Env<T>>,
    timeout: Option<Duration>,
    stuck: Arc<Stuck>,
) -> BoxFuture<'static, Done<U>> {
    let seqs: Vec<u64> = items.iter().map(|env| env.seq).collect();
    let (tx, mut rx) = tokio::sync::oneshot::channel::<Done<U>>();
    let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
    let state = Arc::new(AtomicU8::new(RUNNING));
    let task_state = state.clone();
    let task_stuck = stuck.clone();
    ctx.pool.spawn(move || {
        let _ = started_tx.send(());
        let done = items.into_iter().map(|env| {
            let t0 = Instant::now();
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(env.value)));
            c.record_task(t0.elapsed());
            (env.seq, result.unwrap_or_else(|p| Err(panic_message(p))))
        });
        let _ = tx.send(done.collect());
        let swap = task_state.compare_exchange(RUNNING, RETURNED, Ordering::SeqCst, Ordering::SeqCst);
        if swap.is_err() {
            // Timed out earlier: its slot is free again.
            task_stuck.count.fetch_sub(1, Ordering::SeqCst);
            task_stuck.returned.notify_one();
        }
    });
    async move {
        let result = match timeout {
            // The clock starts when the call does: an item still waiting
            // for a pool thread (one busy with an earlier call that timed
            // out, say) has not timed out.
            Some(t) => match started.await {
                Ok(()) => match tokio::time::timeout(t, &mut rx).await {
                    Ok(result) => result,
                    Err(_) => {
                        // Counted first, so the call's return never
                        // uncounts what was not counted yet.
                        stuck.count.fetch_add(1, Ordering::SeqCst);
                        let swap = state.compare_exchange(RUNNING, TIMED_OUT, Ordering::SeqCst, Ordering::SeqCst);
                        if swap.is_ok() {
                            Ok(all_failed(&seqs, timed_out(t)))
                        } else {
                            stuck.count.fetch_sub(1, Ordering::SeqCst);
                            rx.await // it returned just now
                        }
                    }
                },
                Err(e) => Err(e),
            },
            None => rx.await,
        };
        result.unwrap_or_else(|_| all_failed(&seqs, "the CPU pool dropped the task".into()))
    }
    .boxed()
}

/// The tasks a stage has running, finishing in input or completion order.
enum Running<U> {
    Ordered(futures::stream::FuturesOrdered<BoxFuture<'static, Done<U>>>),
    Unordered(futures::stream::FuturesUnordered<BoxFuture<'static, Done<U>>>),
}

impl<U> Running<U> {
    fn new(ordered: bool) -> Self {
        if ordered {
            Running::Ordered(Default::default())
        } else {
            Running::Unordered(Default::default())
        }
    }

    fn len(&self) -> usize {
        match self {
            Running::Ordered(r) => r.len(),
            Running::Unordered(r) => r.len(),
        }
    }

    fn push(&mut self, task: BoxFuture<'static, Done<U>>) {
        match self {
            Running::Ordered(r) => r.push_back(task),
            Running::Unordered(r) => r.push(task),
        }
    }

    /// The next task to finish (`None` when none is running).
    async fn next(&mut self) -> Option<Done<U>> {
        match self {
            Running::Ordered(r) => r.next().await,
            Running::Unordered(r) => r.next().await,
        }
    }

    /// The results of every task that has finished by now, without waiting.
    fn finished(&mut self) -> Done<U> {
        let mut all = Vec::new();
        while let Some(Some(done)) = self.next().now_or_never() {
            all.extend(done);
        }
        all
    }
}

/// Spawns a `pipe` stage doing `work` on the items of `rx`. When the run
/// profiles this stage (by its ordinal among the task stages), it first
/// takes all its input, so it runs alone, at the profiled concurrency, and
/// records its items and time in the run's context.
pub(crate) fn spawn_task_stage<T: Send + 'static, U: Send + 'static>(
    ctx: &CtxRef,
    rx: Rx<T>,
    work: Work<T, U>,
    cfg: StageConfig,
) -> Rx<U> {
    let (tx, out) = queue(cfg.queue_capacity());
    let c = ctx.register(&cfg.name, cfg.queue_capacity());
    let ordinal = ctx.task_stages.fetch_add(1, Ordering::Relaxed) as usize;
    let profiled = ctx.profile.filter(|(k, _)| *k == ordinal).map(|(_, n)| n);
    let concurrency = profiled.unwrap_or(cfg.concurrency);
    c.concurrency.store(concurrency as u64, Ordering::Relaxed);
    let mut input = Input::new(rx, c.clone());
    let mut output = Output::new(ctx, tx, c.clone());
    let stage = TaskStage {
        ctx: ctx.clone(),
        c,
        work,
        concurrency,
        cfg,
        stuck: Arc::default(),
    };
    ctx.handle.spawn(async move {
        let mut waiting = VecDeque::new();
        if profiled.is_some() {
            while let Some(chunk) = input.next_chunk().await {
                waiting.extend(chunk);
            }
        }
        let started = Instant::now();
        let Some(handled) = stage.run(input, waiting, profiled.is_none(), &mut output).await else {
            return;
        };
        if profiled.is_some() {
            let result = (stage.cfg.name.clone(), handled, started.elapsed());
            *stage.ctx.profile_result.lock().expect("profile lock") = Some(result);
        }
        // Closed only now: the run's consumer sees the end after the
        // profile result is recorded.
        drop(output);
    });
    out
}

/// One run's `pipe` stage.
struct TaskStage<T, U> {
    ctx: CtxRef,
    c: Arc<StageCounters>,
    work: Work<T, U>,
    cfg: StageConfig,
    concurrency: usize,
    stuck: Arc<Stuck>,
}

impl<T: Send + 'static, U: Send + 'static> TaskStage<T, U> {
    /// Works through `waiting` and (while `open`) the rest of `input`;
    /// the number of items handled, or `None` when the pipeline must stop.
    async fn run(
        &self,
        mut input: Input<T>,
        mut waiting: VecDeque<Env<T>>,
        mut open: bool,
        output: &mut Output<U>,
    ) -> Option<u64> {
        let mut handled = 0u64;
        let mut running = Running::new(self.cfg.ordered);
        loop {
            let mut done = self.start_work(&mut waiting, &mut running).await;
            // Go on without waiting while results or input are ready; the
            // gathered results go out only when the stage would wait (or a
            // chunk is full), after new work has started.
            done.extend(running.finished());
            if !done.is_empty() {
                handled += done.len() as u64;
                if !self.forward(done, output).await {
                    return None;
                }
                continue;
            }
            let wants_input = open && waiting.is_empty() && self.busy(&running) < self.concurrency;
            if wants_input {
                if let Some(chunk) = input.ready_chunk() {
                    match chunk {
                        Some(chunk) => waiting.extend(chunk),
                        None => open = false,
                    }
                    continue;
                }
            }
            if !output.flush().await {
                return None;
            }
            tokio::select! {
                Some(done) = running.next(), if running.len() > 0 => {
                    handled += done.len() as u64;
                    if !self.forward(done, output).await {
                        return None;
                    }
                }
                chunk = input.next_chunk(), if wants_input => match chunk {
                    Some(chunk) => waiting.extend(chunk),
                    None => open = false,
                },
                // A slot held by a timed-out call came free, and work (or
                // more input) waits for it.
                () = self.stuck.returned.notified(), if self.busy(&running) > running.len() && (open || !waiting.is_empty()) => {}
                else => return Some(handled),
            }
        }
    }

    /// Slots taken: running tasks, and timed-out calls not yet returned.
    fn busy(&self, running: &Running<U>) -> usize {
        running.len() + self.stuck.count.load(Ordering::SeqCst)
    }

    /// Starts work on `waiting` items while slots are free; the results of
    /// work that finished on its first poll.
    async fn start_work(&self, waiting: &mut VecDeque<Env<T>>, running: &mut Running<U>) -> Done<U> {
        let (ctx, c, timeout) = (&self.ctx, &self.c, self.cfg.timeout);
        let mut done = Vec::new();
        while self.busy(running) < self.concurrency && !waiting.is_empty() {
            let n = self
                .work
                .unit_size(ctx, c, timeout, waiting.len(), self.concurrency - self.busy(running));
            let mut task = self
                .work
                .start(ctx, c, waiting.drain(..n).collect(), timeout, &self.stuck);
            // Work that finishes on its first poll (a cheap async call)
            // skips the set of running tasks, unless it must wait for the
            // tasks ahead of it in input order.
            if !(self.cfg.ordered && running.len() > 0) {
                if let Poll::Ready(results) = futures::poll!(&mut task) {
                    done.extend(results);
                    continue;
                }
            }
            running.push(task);
        }
        done
    }

    /// Puts results into the output and reports failures; false when the
    /// pipeline must stop (consumer gone or budget exceeded).
    async fn forward(&self, done: Done<U>, output: &mut Output<U>) -> bool {
        for (seq, result) in done {
            let keep_going = match result {
                Ok(value) => output.push(Env { seq, value }).await,
                Err(reason) => {
                    let failure = Failure {
                        stage: self.cfg.name.clone(),
                        item: seq,
                        reason,
                    };
                    self.ctx.fail(&self.c, &self.cfg.budget, failure)
                }
            };
            if !keep_going {
                return false;
            }
        }
        true
    }
}

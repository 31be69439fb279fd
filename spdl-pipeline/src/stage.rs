//! `pipe` stages: the work of one item (an async call on the runtime or a
//! blocking call on the CPU pool), run up to `concurrency` at a time
//! between two queues; and the pass-through stage that buffers the sink.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

use crate::config::StageConfig;
use crate::epoch::{panic_message, Ctx, CtxRef, Env, Input, Output, Rx};
use crate::queue::queue;
use crate::stats::StageCounters;
use crate::Failure;

/// A blocking stage gives one CPU-pool task about this much work (from the
/// stage's mean task time so far), so short calls share one hand-off.
const UNIT_TIME: Duration = Duration::from_micros(50);

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

fn record_task_time(c: &StageCounters, elapsed: Duration) {
    StageCounters::add(&c.task_ns, elapsed);
    c.task_time.record(elapsed);
}

impl<T: Send + 'static, U: Send + 'static> Work<T, U> {
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
    ) -> BoxFuture<'static, Done<U>> {
        let timed_out = move |t: Duration| format!("timed out after {t:?}");
        match self {
            Work::Async(f) => {
                let (f, c) = (f.clone(), c.clone());
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
                        record_task_time(&c, t0.elapsed());
                        done.push((env.seq, result.unwrap_or_else(|p| Err(panic_message(p)))));
                    }
                    done
                };
                if timeout.is_none() {
                    return run.boxed();
                }
                // With a timeout the work runs as a task of its own, so its
                // clock and its progress do not depend on this stage being
                // polled (it is not while it waits to put its output).
                let task = ctx.handle.spawn(run);
                async move {
                    task.await.unwrap_or_else(|e| {
                        let reason = format!("the task was cancelled: {e}");
                        seqs.iter().map(|&seq| (seq, Err(reason.clone()))).collect()
                    })
                }
                .boxed()
            }
            Work::Blocking(f) => {
                let (f, c) = (f.clone(), c.clone());
                let seqs: Vec<u64> = items.iter().map(|env| env.seq).collect();
                let (tx, rx) = tokio::sync::oneshot::channel::<Done<U>>();
                ctx.pool.spawn(move || {
                    let done = items.into_iter().map(|env| {
                        let t0 = Instant::now();
                        let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(env.value)));
                        record_task_time(&c, t0.elapsed());
                        (env.seq, result.unwrap_or_else(|p| Err(panic_message(p))))
                    });
                    let _ = tx.send(done.collect());
                });
                async move {
                    let failed = |reason: String| seqs.iter().map(|&seq| (seq, Err(reason.clone()))).collect();
                    let result = match timeout {
                        Some(t) => tokio::time::timeout(t, rx)
                            .await
                            .unwrap_or_else(|_| Ok(failed(timed_out(t)))),
                        None => rx.await,
                    };
                    result.unwrap_or_else(|_| failed("the CPU pool dropped the task".into()))
                }
                .boxed()
            }
        }
    }
}

/// A stage that only buffers (the sink).
pub(crate) fn pass_through<T: Send + 'static>(ctx: &CtxRef, rx: Rx<T>, name: &str, capacity: usize) -> Rx<T> {
    let (tx, out) = queue(capacity);
    let c = ctx.register(name, capacity);
    let mut output = Output::new(ctx, tx, c.clone());
    ctx.handle.spawn(async move {
        let mut input = Input::new(rx, c);
        while let Some(chunk) = input.next_chunk().await {
            if !output.send(chunk).await {
                return;
            }
        }
    });
    out
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
    let ctx = ctx.clone();
    ctx.handle.clone().spawn(async move {
        let mut input = Input::new(rx, c.clone());
        let mut output = Output::new(&ctx, tx, c.clone());
        let mut waiting = VecDeque::new();
        let mut open = true;
        if profiled.is_some() {
            // A profiled stage first takes all its input, so it runs alone.
            while let Some(chunk) = input.next_chunk().await {
                waiting.extend(chunk);
            }
            open = false;
        }
        let started = Instant::now();
        let mut handled = 0u64;
        let mut running = Running::new(cfg.ordered);
        loop {
            let mut done = Vec::new();
            while running.len() < concurrency && !waiting.is_empty() {
                let n = work.unit_size(&ctx, &c, cfg.timeout, waiting.len(), concurrency - running.len());
                let mut task = work.start(&ctx, &c, waiting.drain(..n).collect(), cfg.timeout);
                // Work that finishes on its first poll (a cheap async call)
                // skips the set of running tasks, unless it must wait for
                // the tasks ahead of it in input order.
                if !(cfg.ordered && running.len() > 0) {
                    if let Poll::Ready(results) = futures::poll!(&mut task) {
                        done.extend(results);
                        continue;
                    }
                }
                running.push(task);
            }
            // Go on without waiting while results or input are ready; the
            // gathered results go out only when the stage would wait (or a
            // chunk is full), after new work has started.
            done.extend(running.finished());
            if !done.is_empty() {
                handled += done.len() as u64;
                if !forward(&ctx, &c, &cfg, done, &mut output).await {
                    return;
                }
                continue;
            }
            let wants_input = open && waiting.is_empty() && running.len() < concurrency;
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
                return;
            }
            tokio::select! {
                Some(done) = running.next(), if running.len() > 0 => {
                    handled += done.len() as u64;
                    if !forward(&ctx, &c, &cfg, done, &mut output).await {
                        return;
                    }
                }
                chunk = input.next_chunk(), if wants_input => match chunk {
                    Some(chunk) => waiting.extend(chunk),
                    None => open = false,
                },
                else => break,
            }
        }
        if profiled.is_some() {
            *ctx.profile_result.lock().expect("profile lock") = Some((cfg.name.clone(), handled, started.elapsed()));
        }
    });
    out
}

/// Puts a stage's results into its output and reports its failures; false
/// when the pipeline must stop (consumer gone or budget exceeded).
async fn forward<U>(ctx: &Ctx, c: &StageCounters, cfg: &StageConfig, done: Done<U>, output: &mut Output<U>) -> bool {
    for (seq, result) in done {
        let keep_going = match result {
            Ok(value) => output.push(Env { seq, value }).await,
            Err(reason) => {
                let failure = Failure {
                    stage: cfg.name.clone(),
                    item: seq,
                    reason,
                };
                ctx.fail(c, &cfg.budget, failure)
            }
        };
        if !keep_going {
            return false;
        }
    }
    true
}

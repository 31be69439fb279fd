//! The source stage: feeds an epoch's source into the first queue. A
//! blocking iterator runs on a thread of its own (it may block), gathered
//! into chunks with a timed flush ([`SOURCE_FLUSH`]); a stream runs as a
//! task on the runtime, in chunks of what is ready. A source that fails
//! (an `Err` item of a fallible source) or panics ends the epoch with an
//! error after the items it produced: never a short epoch that looks
//! complete. The source stops early at the run's profiling limit or when
//! the run is dropped.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};

use crate::config::FailureBudget;
use crate::epoch::{Ctx, CtxRef, Env, Output, Rx, LINK_QUEUE};
use crate::queue::queue;
use crate::stats::StageCounters;

/// A source iterator's items are handed over at most this long after they
/// were produced, even when the chunk is not full (tokio's timer ticks
/// every millisecond).
const SOURCE_FLUSH: Duration = Duration::from_millis(1);

/// One item of a source, or why the source cannot go on.
pub(crate) type SourceItem<S> = Result<S, String>;

/// The items of one epoch: a blocking iterator or an async stream.
pub(crate) enum SourceItems<S> {
    Iter(Box<dyn Iterator<Item = SourceItem<S>> + Send>),
    Stream(futures::stream::BoxStream<'static, SourceItem<S>>),
}

/// Spawns the feed of the epoch's source into the first queue: an iterator
/// on a blocking thread (it may block), a stream as a task on the runtime.
pub(crate) fn spawn_source<S: Send + 'static>(ctx: &CtxRef, source: SourceItems<S>) -> Rx<S> {
    let (tx, rx) = queue(LINK_QUEUE);
    let c = ctx.register("source", LINK_QUEUE);
    let output = Output::new(ctx, tx, c.clone());
    let ctx = ctx.clone();
    match source {
        SourceItems::Iter(items) => {
            ctx.handle
                .clone()
                .spawn_blocking(move || feed_iter(&ctx, &c, items, output));
        }
        SourceItems::Stream(items) => {
            ctx.handle
                .clone()
                .spawn(async move { feed_stream(&ctx, &c, items, output).await });
        }
    }
    rx
}

/// A blocking iterator's items on their way to the first queue. The
/// source thread hands a chunk over when it is full; a timer task hands
/// over what is pending [`SOURCE_FLUSH`] after a chunk's first item came
/// in, so a source that stalls inside `next()` never holds back the items
/// it has already produced. Taking the pending items and sending them
/// happen under one lock, so chunks keep their order. At the source's end
/// the output is dropped at once (`None`): the next stage sees the end
/// without waiting for a pending timer task to let go of it.
struct SourceChunks<S> {
    /// Items not yet handed over, and whether a timed flush is scheduled.
    pending: Mutex<(Vec<Env<S>>, bool)>,
    output: tokio::sync::Mutex<Option<Output<S>>>,
}

impl<S> SourceChunks<S> {
    /// Adds an item: (the chunk is full, a timed flush must be scheduled).
    fn add(&self, env: Env<S>, max_chunk: usize) -> (bool, bool) {
        let mut pending = self.pending.lock().expect("source lock");
        pending.0.push(env);
        let schedule = !std::mem::replace(&mut pending.1, true);
        (pending.0.len() >= max_chunk, schedule)
    }

    /// Whether the consumer is gone (the run was dropped).
    fn is_closed(&self) -> bool {
        self.output
            .try_lock()
            .is_ok_and(|o| o.as_ref().is_none_or(Output::is_closed))
    }

    /// Hands over the pending items; `timed` marks the scheduled flush.
    async fn flush(&self, timed: bool) -> bool {
        let mut output = self.output.lock().await;
        let chunk = {
            let mut pending = self.pending.lock().expect("source lock");
            pending.1 &= !timed;
            std::mem::take(&mut pending.0)
        };
        match output.as_mut() {
            Some(output) => output.send(chunk).await,
            None => false,
        }
    }

    /// Hands over the last items and ends the output.
    async fn finish(&self) {
        self.flush(false).await;
        self.output.lock().await.take();
    }
}

/// Feeds a blocking iterator into the first queue in chunks.
fn feed_iter<S: Send + 'static>(
    ctx: &Ctx,
    c: &StageCounters,
    mut items: Box<dyn Iterator<Item = SourceItem<S>> + Send>,
    output: Output<S>,
) {
    let chunks = Arc::new(SourceChunks {
        pending: Mutex::new((Vec::new(), false)),
        output: tokio::sync::Mutex::new(Some(output)),
    });
    let mut new_chunk = true;
    for seq in 0.. {
        // A dropped run stops the source before its next (maybe slow) item;
        // checked once per chunk, and a slow source sends one-item chunks.
        if new_chunk && chunks.is_closed() {
            return;
        }
        let next = std::panic::catch_unwind(AssertUnwindSafe(|| items.next()));
        if resumed_past(ctx, seq, &next) {
            continue;
        }
        let Some(value) = source_item(ctx, c, seq, next) else {
            break;
        };
        let (full, schedule) = chunks.add(Env { seq, value }, ctx.max_chunk);
        new_chunk = full || schedule;
        if schedule {
            let chunks = chunks.clone();
            ctx.handle.spawn(async move {
                tokio::time::sleep(SOURCE_FLUSH).await;
                chunks.flush(true).await
            });
        }
        if full && (!futures::executor::block_on(chunks.flush(false)) || ctx.aborted()) {
            return;
        }
    }
    futures::executor::block_on(chunks.finish());
}

/// Gathers a stream's items into chunks of what is ready at once.
async fn feed_stream<S>(
    ctx: &Ctx,
    c: &StageCounters,
    mut items: futures::stream::BoxStream<'static, SourceItem<S>>,
    mut output: Output<S>,
) {
    let mut seq = 0;
    loop {
        // Wait for one item, then take what else is ready without waiting.
        let mut next = Some(AssertUnwindSafe(items.next()).catch_unwind().await);
        while let Some(polled) = next.take() {
            if resumed_past(ctx, seq, &polled) {
                seq += 1;
                next = AssertUnwindSafe(items.next()).catch_unwind().now_or_never();
                continue;
            }
            let Some(value) = source_item(ctx, c, seq, polled) else {
                output.flush().await;
                return;
            };
            output.add(Env { seq, value });
            seq += 1;
            if !output.is_full() {
                next = AssertUnwindSafe(items.next()).catch_unwind().now_or_never();
            }
        }
        if !output.flush().await || ctx.aborted() {
            return;
        }
    }
}

/// Whether the source's `seq`-th item is one a resumed run finished
/// with: it is pulled (the source moves on) but not fed.
fn resumed_past<S>(ctx: &Ctx, seq: u64, next: &std::thread::Result<Option<SourceItem<S>>>) -> bool {
    matches!(next, Ok(Some(Ok(_)))) && ctx.progress.resume.as_ref().is_some_and(|s| s.is_done(seq))
}

/// The source's `seq`-th item, or `None` at its end, at the profiling
/// limit, or after a failure or a panic (a fatal failure of the epoch).
fn source_item<S>(
    ctx: &Ctx,
    c: &StageCounters,
    seq: u64,
    next: std::thread::Result<Option<SourceItem<S>>>,
) -> Option<S> {
    if ctx.limit.is_some_and(|l| seq >= l) {
        return None;
    }
    match next {
        Ok(Some(Ok(value))) => {
            ctx.source_items.fetch_add(1, Ordering::Relaxed);
            c.items_in.fetch_add(1, Ordering::Relaxed);
            Some(value)
        }
        Ok(None) => None,
        Ok(Some(Err(reason))) => {
            ctx.fail_source(c, seq, reason);
            None
        }
        Err(p) => {
            ctx.fail_panic(c, &FailureBudget::count(0), seq, p);
            None
        }
    }
}

//! `aggregate`: a stateful fold from items to groups (batches) by an
//! [`Aggregator`] made fresh for every epoch. A group carries the source
//! position of its first item; a panicking aggregator loses the items it
//! held, which is reported as a failure of the stage (the stage goes on,
//! or stops at the end of the epoch).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use crate::config::FailureBudget;
use crate::epoch::{CtxRef, Env, Input, Output, Rx, LINK_QUEUE};
use crate::progress::LevelKind;
use crate::queue::queue;
use crate::stats::StageCounters;

/// Folds items into outputs; a fresh one is made for every epoch.
///
/// ```
/// use spdl_pipeline::Aggregator;
/// /// Groups consecutive items until their total reaches a budget.
/// struct ByTotal { budget: u32, group: Vec<u32> }
/// impl Aggregator<u32> for ByTotal {
///     type Output = Vec<u32>;
///     fn push(&mut self, item: u32) -> Option<Vec<u32>> {
///         self.group.push(item);
///         (self.group.iter().sum::<u32>() >= self.budget).then(|| std::mem::take(&mut self.group))
///     }
///     fn finish(&mut self) -> Option<Vec<u32>> {
///         (!self.group.is_empty()).then(|| std::mem::take(&mut self.group))
///     }
/// }
/// ```
pub trait Aggregator<T>: Send + 'static {
    /// What the aggregator emits.
    type Output: Send + 'static;
    /// Takes one item; returns a finished group, if any.
    fn push(&mut self, item: T) -> Option<Self::Output>;
    /// At the end of the epoch: the last, partial group, if any.
    fn finish(&mut self) -> Option<Self::Output>;
}

/// Groups of `n` items; the last partial group is kept unless `drop_last`.
pub(crate) struct CountAggregator<T> {
    n: usize,
    drop_last: bool,
    group: Vec<T>,
}

impl<T> CountAggregator<T> {
    /// Groups of `n` items (at least 1).
    pub(crate) fn new(n: usize, drop_last: bool) -> Self {
        let n = n.max(1);
        CountAggregator {
            n,
            drop_last,
            group: Vec::with_capacity(n),
        }
    }
}

impl<T: Send + 'static> Aggregator<T> for CountAggregator<T> {
    type Output = Vec<T>;

    fn push(&mut self, item: T) -> Option<Vec<T>> {
        self.group.push(item);
        (self.group.len() >= self.n).then(|| std::mem::replace(&mut self.group, Vec::with_capacity(self.n)))
    }

    fn finish(&mut self) -> Option<Vec<T>> {
        (!self.group.is_empty() && !self.drop_last).then(|| std::mem::take(&mut self.group))
    }
}

/// Spawns the stage that folds the items of `rx` with `aggregator`.
pub(crate) fn spawn_aggregate<T, A>(ctx: &CtxRef, rx: Rx<T>, name: &str, aggregator: A) -> Rx<A::Output>
where
    T: Send + 'static,
    A: Aggregator<T>,
{
    let (tx, out) = queue(LINK_QUEUE);
    let c = ctx.register(name, LINK_QUEUE);
    let level = ctx.progress.add_level(LevelKind::Aggregate);
    let input = Input::new(rx, c.clone());
    let output = Output::new(ctx, tx, c.clone());
    let guarded = Guarded {
        ctx: ctx.clone(),
        c,
        aggregator,
    };
    ctx.handle.spawn(fold(guarded, level, input, output));
    out
}

/// An aggregator whose panics become failures of its stage.
struct Guarded<A> {
    ctx: CtxRef,
    c: Arc<StageCounters>,
    aggregator: A,
}

impl<A> Guarded<A> {
    /// `step` on the aggregator for the item at `seq`; `None` after a panic.
    fn call<O>(&mut self, seq: u64, step: impl FnOnce(&mut A) -> Option<O>) -> Option<O> {
        let aggregator = &mut self.aggregator;
        std::panic::catch_unwind(AssertUnwindSafe(|| step(aggregator))).unwrap_or_else(|p| {
            self.ctx.fail_panic(&self.c, &FailureBudget::default(), seq, p);
            None
        })
    }
}

/// Folds the items of `input` into groups, each keyed by its first
/// member's key; the members of each group are recorded at `level`
/// before it is handed on (resumable runs).
async fn fold<T, A: Aggregator<T>>(
    mut guarded: Guarded<A>,
    level: u32,
    mut input: Input<T>,
    mut output: Output<A::Output>,
) {
    let mut members = Vec::new();
    while let Some(chunk) = input.next_chunk().await {
        for env in chunk {
            members.push(env.seq);
            let seq = members[0];
            if let Some(value) = guarded.call(env.seq, |a| a.push(env.value)) {
                guarded.ctx.progress.grouped(level, seq, std::mem::take(&mut members));
                if !output.push(Env { seq, value }).await {
                    return;
                }
            }
        }
        // A budget exceeded (here or elsewhere) stops the stage.
        if !output.flush().await || guarded.ctx.aborted() {
            return;
        }
    }
    let seq = members.first().copied().unwrap_or(0);
    if let Some(value) = guarded.call(seq, |a| a.finish()) {
        guarded.ctx.progress.grouped(level, seq, members);
        output.push(Env { seq, value }).await;
        output.flush().await;
    }
}

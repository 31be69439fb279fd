//! `route`: sends each item to the branch `select(&item)` picks (taken
//! modulo the number of branches) and merges the branches' outputs in
//! completion order. A panicking `select` drops the item as a failure of
//! the stage.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use crate::config::FailureBudget;
use crate::epoch::{CtxRef, Input, Output, Rx, LINK_QUEUE};
use crate::queue::queue;
use crate::stages::Chain;
use crate::stats::StageCounters;

/// Spawns the router of `rx`, the `branches` and the task that merges
/// their outputs.
pub(crate) fn spawn_route<T, U, F>(ctx: &CtxRef, rx: Rx<T>, select: Arc<F>, branches: &[Chain<T, U>]) -> Rx<U>
where
    T: Send + 'static,
    U: Send + 'static,
    F: Fn(&T) -> usize + Send + Sync + 'static,
{
    let c = ctx.register("route", LINK_QUEUE);
    let (outputs, branch_outs): (Vec<_>, Vec<_>) = branches
        .iter()
        .map(|chain| {
            let (tx, branch_rx) = queue(LINK_QUEUE);
            (Output::new(ctx, tx, c.clone()), chain(ctx, branch_rx))
        })
        .unzip();
    let merged = spawn_join(ctx, branch_outs);
    let input = Input::new(rx, c.clone());
    ctx.handle.spawn(route(ctx.clone(), c, input, outputs, select));
    merged
}

/// Forwards the chunks of every branch into one queue.
fn spawn_join<U: Send + 'static>(ctx: &CtxRef, branch_outs: Vec<Rx<U>>) -> Rx<U> {
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
    merged
}

async fn route<T, F: Fn(&T) -> usize>(
    ctx: CtxRef,
    c: Arc<StageCounters>,
    mut input: Input<T>,
    mut outputs: Vec<Output<T>>,
    select: Arc<F>,
) {
    let branches = outputs.len().max(1);
    while let Some(chunk) = input.next_chunk().await {
        for env in chunk {
            let i = match std::panic::catch_unwind(AssertUnwindSafe(|| select(&env.value))) {
                Ok(i) => i % branches,
                Err(p) => {
                    if ctx.fail_panic(&c, &FailureBudget::default(), env.seq, p) {
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
}

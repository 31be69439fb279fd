//! The sink: a stage that only buffers up to its capacity of finished items
//! for the consumer of the run.

use crate::epoch::{CtxRef, Input, Output, Rx};
use crate::queue::queue;

/// Spawns the sink, holding up to `capacity` items of `rx` for the consumer.
pub(crate) fn spawn_sink<T: Send + 'static>(ctx: &CtxRef, rx: Rx<T>, capacity: usize) -> Rx<T> {
    let (tx, out) = queue(capacity);
    let c = ctx.register("sink", capacity);
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

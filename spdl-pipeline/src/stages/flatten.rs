//! `disaggregate`: emits each element of every item (a `Vec` from
//! `aggregate` or a fan-out stage, an `Option` from a filtering stage);
//! every element keeps its item's source position.

use crate::epoch::{CtxRef, Env, Input, Output, Rx, LINK_QUEUE};
use crate::queue::queue;

/// Spawns the stage that flattens the items of `rx`.
pub(crate) fn spawn_flatten<T>(ctx: &CtxRef, rx: Rx<T>) -> Rx<T::Item>
where
    T: IntoIterator + Send + 'static,
    T::Item: Send + 'static,
    T::IntoIter: Send,
{
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
}

//! `disaggregate`: emits each element of every item (a `Vec` from
//! `aggregate` or a fan-out stage, an `Option` from a filtering stage);
//! every element keeps its item's source position. The number of pieces of
//! each item is recorded before they are handed on, and a resumed run
//! skips the pieces of an item its earlier run delivered (see `progress`).

use crate::epoch::{CtxRef, Env, Input, Output, Rx, LINK_QUEUE};
use crate::progress::LevelKind;
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
    let level = ctx.progress.add_level(LevelKind::Disaggregate);
    let mut output = Output::new(ctx, tx, c.clone());
    let ctx = ctx.clone();
    ctx.clone().handle.spawn(async move {
        let mut input = Input::new(rx, c);
        while let Some(chunk) = input.next_chunk().await {
            for env in chunk {
                let pieces: Vec<T::Item> = env.value.into_iter().collect();
                let done = match ctx.progress.resume.as_ref() {
                    Some(s) if !s.partial.is_empty() => {
                        let sources = ctx.progress.sources(level, env.seq);
                        s.pieces_done(level, env.seq, &sources).min(pieces.len() as u64)
                    }
                    _ => 0,
                };
                ctx.progress.split(level, env.seq, pieces.len() as u64, done);
                for value in pieces.into_iter().skip(done as usize) {
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

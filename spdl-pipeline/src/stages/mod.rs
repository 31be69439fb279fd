//! The stage kinds. Each is spawned once per run as tokio task(s) (or, for
//! an iterator source, a blocking thread) between two bounded queues, so a
//! slow consumer stalls the stages upstream with bounded memory; items move
//! between stages in chunks of whatever is ready at once (see `queue.rs`),
//! so a fast stage costs a wake-up per chunk, not per item. Each module's
//! `spawn_*` function takes the run's context and the stage's input
//! receiver and returns its output receiver.

pub(crate) mod aggregate;
pub(crate) mod flatten;
pub(crate) mod merge;
pub(crate) mod route;
pub(crate) mod sink;
pub(crate) mod source;
pub(crate) mod task;

use std::sync::Arc;

use crate::epoch::{CtxRef, Rx};

/// Spawns a sequence of stages for one run, from its input receiver to its
/// output one.
pub(crate) type Chain<S, T> = Arc<dyn Fn(&CtxRef, Rx<S>) -> Rx<T> + Send + Sync>;

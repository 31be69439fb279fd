//! `spdl-pipeline`: a concurrent stage scheduler (source -> stages -> sink)
//! with bounded queues, failure budgets and per-stage statistics.
//!
//! The scheduler itself is not built yet; this crate reserves its place in
//! the workspace so that `spdl::pipeline` resolves.
#![forbid(unsafe_code)]

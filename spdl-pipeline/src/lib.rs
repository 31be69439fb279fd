//! `spdl-pipeline`: a concurrent stage scheduler for data loading.
//!
//! A [`PipelineBuilder`] chains a source, `pipe` stages (async on the
//! pipeline's tokio runtime, or blocking on its CPU pool) with their own
//! concurrency and ordering, `aggregate`/`disaggregate`, and a sink. Bounded
//! queues between stages give backpressure; failed items are dropped,
//! counted and reported, within failure budgets; [`Run::stats`] shows where
//! time goes while it runs.
//!
//! ```
//! use spdl_pipeline::{PipelineBuilder, StageConfig};
//!
//! let pipeline = PipelineBuilder::new()
//!     .add_source(vec!["a", "bb", "ccc"])
//!     .pipe_blocking(|s: &str| Ok::<_, String>(s.len()), StageConfig::new("len").with_ordered(true))
//!     .add_sink(2)
//!     .build()
//!     .unwrap();
//! for epoch in 0..2 {
//!     let lens: Vec<usize> = pipeline.run(epoch).map(Result::unwrap).collect();
//!     assert_eq!(lens, [1, 2, 3]);
//! }
//! ```
#![forbid(unsafe_code)]

mod builder;
mod config;
mod epoch;
mod error;
mod profile;
mod progress;
mod queue;
mod run;
mod sampler;
mod stages;
mod stats;

pub use builder::PipelineBuilder;
pub use config::{FailureBudget, PipelineConfig, StageConfig};
pub use error::{Error, Failure, Result};
pub use profile::StageProfile;
pub use progress::{PartialItem, RunState};
pub use run::{merge_runs, Pipeline, Run};
pub use sampler::{rank_from_env, DistributedSampler, Remainder};
pub use stages::aggregate::Aggregator;
pub use stages::merge::{Merge, MergePolicy};
pub use stats::{PipelineStats, StageStats};

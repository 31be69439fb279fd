//! The pipeline's error type.

use std::time::Duration;

/// One item a stage dropped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The stage's name.
    pub stage: String,
    /// The item's position in the source (0-based, per epoch).
    pub item: u64,
    /// The error message, the panic message, or "timed out after ...".
    pub reason: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stage {:?}, item {}: {}", self.stage, self.item, self.reason)
    }
}

/// Everything that can stop a pipeline.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A stage (or the whole pipeline) went over its failure budget.
    #[error("{scope} went over its failure budget ({budget}) after {} failures; first: {}", failures.len(), failures.first().map_or(String::new(), |f| f.to_string()))]
    FailureBudget {
        /// The stage name, or "pipeline".
        scope: String,
        /// The budget, as configured.
        budget: String,
        /// Every failure so far, in the order they happened.
        failures: Vec<Failure>,
    },
    /// An item that a merged pipeline dropped (see
    /// `PipelineBuilder::add_merged_pipelines`), passed on so it is counted
    /// where the merge is consumed.
    #[error("merged pipeline {pipeline} dropped {failure}")]
    Dropped {
        /// The merged pipeline's position in the list given to the merge.
        pipeline: usize,
        /// What it dropped and why.
        failure: Failure,
    },
    /// The source failed (a fallible source gave an error); the items it
    /// produced before were delivered.
    #[error("the source failed after {item} items: {reason}")]
    Source {
        /// How many items the source produced before it failed.
        item: u64,
        /// Why it failed.
        reason: String,
    },
    /// No item arrived within the caller's timeout.
    #[error("no item within {0:?}")]
    Timeout(Duration),
    /// The pipeline could not be built or started.
    #[error("cannot start the pipeline: {0}")]
    Build(String),
}

/// `Result` with the pipeline's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! Stage and pipeline settings.

use std::time::Duration;

/// How many failures a stage (or the whole pipeline) may drop before the
/// pipeline stops. The default is unlimited: failures are still counted and
/// reported.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct FailureBudget {
    /// Stop after more than this many failures.
    pub max_count: Option<u64>,
    /// Stop when failures / items seen exceeds this rate (checked once at
    /// least `min_items` items were seen).
    pub max_rate: Option<f64>,
    /// Items to see before the rate is checked (default 0).
    pub min_items: u64,
}

impl FailureBudget {
    /// At most `n` failures.
    pub fn count(n: u64) -> Self {
        FailureBudget {
            max_count: Some(n),
            ..Default::default()
        }
    }

    /// At most `rate` (0..=1) of the items, checked after `min_items` items.
    pub fn rate(rate: f64, min_items: u64) -> Self {
        FailureBudget {
            max_rate: Some(rate),
            min_items,
            ..Default::default()
        }
    }

    pub(crate) fn exceeded(&self, failures: u64, seen: u64) -> bool {
        self.max_count.is_some_and(|m| failures > m)
            || self
                .max_rate
                .is_some_and(|r| seen >= self.min_items.max(1) && failures as f64 / seen as f64 > r)
    }
}

impl std::fmt::Display for FailureBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.max_count, self.max_rate) {
            (Some(c), Some(r)) => write!(f, "at most {c} failures and a rate of {r}"),
            (Some(c), None) => write!(f, "at most {c} failures"),
            (None, Some(r)) => write!(f, "a failure rate of at most {r} after {} items", self.min_items),
            (None, None) => write!(f, "unlimited"),
        }
    }
}

/// Settings of one `pipe` stage.
///
/// ```
/// use spdl_pipeline::{FailureBudget, StageConfig};
/// let decode = StageConfig::new("decode").with_concurrency(8).with_ordered(true).with_budget(FailureBudget::count(10));
/// assert_eq!(decode.concurrency, 8);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StageConfig {
    /// Name in stats and failure reports.
    pub name: String,
    /// Calls running at once (default 1). A blocking stage whose calls are
    /// short runs several items one after another in one CPU-pool task.
    pub concurrency: usize,
    /// Emit in input order instead of completion order (default false).
    pub ordered: bool,
    /// Fail an item that takes longer than this. A blocking item's work is
    /// not interrupted; its result is dropped when it arrives.
    pub timeout: Option<Duration>,
    /// The stage's failure budget (default unlimited).
    pub budget: FailureBudget,
    /// Capacity of the stage's output queue in items (default
    /// `max(2 * concurrency, 16)`; see [`PipelineConfig::max_chunk`]).
    pub queue: Option<usize>,
}

impl StageConfig {
    /// A stage named `name` with default settings.
    pub fn new(name: impl Into<String>) -> Self {
        StageConfig {
            name: name.into(),
            concurrency: 1,
            ordered: false,
            timeout: None,
            budget: FailureBudget::default(),
            queue: None,
        }
    }
    /// Sets [`StageConfig::concurrency`] (at least 1).
    #[must_use]
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }
    /// Sets [`StageConfig::ordered`].
    #[must_use]
    pub fn with_ordered(mut self, ordered: bool) -> Self {
        self.ordered = ordered;
        self
    }
    /// Sets [`StageConfig::timeout`].
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
    /// Sets [`StageConfig::budget`].
    #[must_use]
    pub fn with_budget(mut self, budget: FailureBudget) -> Self {
        self.budget = budget;
        self
    }
    /// Sets [`StageConfig::queue`].
    #[must_use]
    pub fn with_queue(mut self, capacity: usize) -> Self {
        self.queue = Some(capacity.max(1));
        self
    }

    pub(crate) fn queue_capacity(&self) -> usize {
        self.queue.unwrap_or((2 * self.concurrency).max(16)).max(1)
    }
}

/// Settings of the whole pipeline.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PipelineConfig {
    /// Prefix of the pipeline's thread names: `{name}-rt` for the runtime
    /// (and its blocking source threads), `{name}-cpu-{i}` for the CPU pool
    /// (default "spdl").
    pub name: String,
    /// Threads of the tokio runtime that runs async stages (default 2).
    pub runtime_threads: usize,
    /// Threads of the CPU pool that runs blocking stages (default: one per core).
    pub cpu_threads: usize,
    /// Failure budget over all stages (default unlimited).
    pub budget: FailureBudget,
    /// Log a stats table through `tracing` at this interval (default off).
    pub report_interval: Option<Duration>,
    /// The most items one stage hands to the next at once (default 256).
    /// A stage hands over everything it has ready in one go, so a fast
    /// stage pays one wake-up per chunk instead of one per item; items that
    /// finish one at a time (decodes) still travel alone. A queue of
    /// capacity `n` takes a chunk while it holds fewer than `n` items, so
    /// it holds at most `n - 1 + max_chunk`: set 1 for strictly per-item
    /// queues when a fast source yields large items.
    pub max_chunk: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            name: "spdl".into(),
            runtime_threads: 2,
            cpu_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            budget: FailureBudget::default(),
            report_interval: None,
            max_chunk: 256,
        }
    }
}

impl PipelineConfig {
    /// Sets [`PipelineConfig::name`].
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
    /// Sets [`PipelineConfig::runtime_threads`] (at least 1).
    #[must_use]
    pub fn with_runtime_threads(mut self, n: usize) -> Self {
        self.runtime_threads = n.max(1);
        self
    }
    /// Sets [`PipelineConfig::cpu_threads`] (at least 1).
    #[must_use]
    pub fn with_cpu_threads(mut self, n: usize) -> Self {
        self.cpu_threads = n.max(1);
        self
    }
    /// Sets [`PipelineConfig::budget`].
    #[must_use]
    pub fn with_budget(mut self, budget: FailureBudget) -> Self {
        self.budget = budget;
        self
    }
    /// Sets [`PipelineConfig::report_interval`].
    #[must_use]
    pub fn with_report_interval(mut self, every: Option<Duration>) -> Self {
        self.report_interval = every;
        self
    }
    /// Sets [`PipelineConfig::max_chunk`] (at least 1).
    #[must_use]
    pub fn with_max_chunk(mut self, n: usize) -> Self {
        self.max_chunk = n.max(1);
        self
    }
}

//! Profiling: [`Pipeline::profile`] runs each `pipe` stage alone at several
//! concurrencies on the first items of epoch 0 and reports its throughput
//! ([`StageProfile`]), so concurrencies can be picked from data. The run's
//! source stops at the item limit, and the profiled task stage buffers all
//! its input before it starts (`stages/task.rs`).

use std::time::Duration;

use crate::run::Pipeline;

/// One stage's throughput alone at one concurrency; see [`Pipeline::profile`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StageProfile {
    /// The stage's name.
    pub stage: String,
    /// The concurrency it ran at.
    pub concurrency: usize,
    /// Items it handled (outputs and failures).
    pub items: u64,
    /// Wall time from its first to its last item.
    pub elapsed: Duration,
    /// `items / elapsed`.
    pub items_per_sec: f64,
}

impl<T: Send + 'static> Pipeline<T> {
    /// Runs each `pipe` stage alone at each of `concurrencies` on the first
    /// `items` source items of epoch 0 (the stages before it run as
    /// configured and their output is buffered first), and reports items/s,
    /// so concurrencies can be picked from data.
    ///
    /// ```
    /// use spdl_pipeline::{PipelineBuilder, StageConfig};
    /// let pipeline = PipelineBuilder::new()
    ///     .add_source(0..64u32)
    ///     .pipe_blocking(|x: u32| Ok::<_, String>(x + 1), StageConfig::new("inc"))
    ///     .build()
    ///     .unwrap();
    /// let report = pipeline.profile(&[1, 4], 32);
    /// assert_eq!(report.len(), 2);
    /// assert!(report.iter().all(|p| p.stage == "inc" && p.items == 32));
    /// ```
    pub fn profile(&self, concurrencies: &[usize], items: u64) -> Vec<StageProfile> {
        let mut report = Vec::new();
        for stage in 0.. {
            let before = report.len();
            for &concurrency in concurrencies {
                let mut run = self.start_run(0, Some(items), Some((stage, concurrency.max(1))), None);
                run.by_ref().for_each(drop);
                let result = run.ctx.profile_result.lock().expect("profile lock").take();
                if let Some((name, n, elapsed)) = result {
                    report.push(StageProfile {
                        stage: name,
                        concurrency,
                        items: n,
                        elapsed,
                        items_per_sec: n as f64 / elapsed.as_secs_f64().max(1e-9),
                    });
                }
            }
            if report.len() == before {
                return report;
            }
        }
        report
    }
}

//! Per-stage statistics, readable while the pipeline runs: items in and
//! out, failures, task-time percentiles, and for each stage's output queue
//! its occupancy and the time spent waiting to put into it and to get from
//! its input, so the bottleneck is visible.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A log-linear histogram of durations (8 sub-buckets per power of two of
/// nanoseconds): constant memory, percentiles within 12.5%.
#[derive(Debug)]
pub(crate) struct Histogram {
    buckets: Mutex<Vec<u64>>,
}

const SUB: u32 = 8;

impl Histogram {
    fn new() -> Self {
        Histogram {
            buckets: Mutex::new(vec![0; (64 * SUB) as usize]),
        }
    }

    fn index(ns: u64) -> usize {
        if ns < u64::from(SUB) {
            return ns as usize;
        }
        let log = 63 - ns.leading_zeros();
        let sub = (ns >> (log - 3)) & u64::from(SUB - 1);
        (log * SUB) as usize + sub as usize
    }

    fn lower_bound(index: usize) -> u64 {
        let (log, sub) = (index as u32 / SUB, index as u64 % u64::from(SUB));
        if log < 3 {
            // Indices 8..24 are never used (values below 8 map to 0..8).
            return (index as u64).min(u64::from(SUB));
        }
        (1u64 << log) + (sub << (log - 3))
    }

    pub(crate) fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.buckets.lock().expect("histogram lock")[Self::index(ns)] += 1;
    }

    /// The `q` quantile (0..=1), or zero when empty.
    pub(crate) fn quantile(&self, q: f64) -> Duration {
        let b = self.buckets.lock().expect("histogram lock");
        let total: u64 = b.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((total as f64 * q).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, n) in b.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_nanos(Self::lower_bound(i));
            }
        }
        Duration::ZERO
    }
}

/// Live counters of one stage.
#[derive(Debug)]
pub(crate) struct StageCounters {
    pub name: String,
    /// Aggregate/disaggregate levels before this stage (see `progress`).
    pub depth: std::sync::atomic::AtomicU32,
    pub items_in: AtomicU64,
    pub items_out: AtomicU64,
    pub failures: AtomicU64,
    pub task_ns: AtomicU64,
    pub task_time: Histogram,
    pub put_wait_ns: AtomicU64,
    pub get_wait_ns: AtomicU64,
    pub queue_capacity: usize,
    pub queue_len: AtomicU64,
    /// Calls that may run at once (1 for stages without a concurrency).
    pub concurrency: AtomicU64,
    /// When the counters were made (the run's start).
    started: Instant,
    /// Nanoseconds after `started` at which the first task began and the
    /// last task ended (0: none yet).
    first_task_ns: AtomicU64,
    last_task_ns: AtomicU64,
}

impl StageCounters {
    pub(crate) fn new(name: &str, queue_capacity: usize) -> Self {
        StageCounters {
            name: name.into(),
            depth: std::sync::atomic::AtomicU32::new(0),
            items_in: AtomicU64::new(0),
            items_out: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            task_ns: AtomicU64::new(0),
            task_time: Histogram::new(),
            put_wait_ns: AtomicU64::new(0),
            get_wait_ns: AtomicU64::new(0),
            queue_capacity,
            queue_len: AtomicU64::new(0),
            concurrency: AtomicU64::new(1),
            started: Instant::now(),
            first_task_ns: AtomicU64::new(0),
            last_task_ns: AtomicU64::new(0),
        }
    }

    /// Records one task of `elapsed` that just ended.
    pub(crate) fn record_task(&self, elapsed: Duration) {
        Self::add(&self.task_ns, elapsed);
        self.task_time.record(elapsed);
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let end = nanos(self.started.elapsed()).max(1);
        let _ = self.first_task_ns.compare_exchange(
            0,
            end.saturating_sub(nanos(elapsed)).max(1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        self.last_task_ns.fetch_max(end, Ordering::Relaxed);
    }

    /// Busy time over the time from the first task's start to the last
    /// task's end, times the concurrency (0..=1; 0 before any task).
    fn occupancy(&self) -> f64 {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let span = load(&self.last_task_ns).saturating_sub(load(&self.first_task_ns));
        let slots = span as f64 * load(&self.concurrency).max(1) as f64;
        if span == 0 {
            return 0.0;
        }
        (load(&self.task_ns) as f64 / slots).min(1.0)
    }

    pub(crate) fn add(counter: &AtomicU64, d: Duration) {
        counter.fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> StageStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let done = load(&self.items_out) + load(&self.failures);
        StageStats {
            name: self.name.clone(),
            items_in: load(&self.items_in),
            items_out: load(&self.items_out),
            failures: load(&self.failures),
            task_mean: Duration::from_nanos(load(&self.task_ns).checked_div(done).unwrap_or(0)),
            task_p50: self.task_time.quantile(0.5),
            task_p90: self.task_time.quantile(0.9),
            task_p99: self.task_time.quantile(0.99),
            put_wait: Duration::from_nanos(load(&self.put_wait_ns)),
            get_wait: Duration::from_nanos(load(&self.get_wait_ns)),
            queue_len: load(&self.queue_len) as usize,
            queue_capacity: self.queue_capacity,
            concurrency: load(&self.concurrency) as usize,
            occupancy: self.occupancy(),
        }
    }
}

/// A snapshot of one stage.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StageStats {
    /// The stage's name.
    pub name: String,
    /// Items the stage received.
    pub items_in: u64,
    /// Items the stage emitted (after fan-out or aggregation).
    pub items_out: u64,
    /// Items the stage dropped as failed.
    pub failures: u64,
    /// Mean time of one task.
    pub task_mean: Duration,
    /// Median task time.
    pub task_p50: Duration,
    /// 90th percentile task time.
    pub task_p90: Duration,
    /// 99th percentile task time.
    pub task_p99: Duration,
    /// Total time spent waiting for room in the output queue (downstream is
    /// slower: backpressure).
    pub put_wait: Duration,
    /// Total time spent waiting for input (upstream is slower).
    pub get_wait: Duration,
    /// Items in the output queue at the snapshot.
    pub queue_len: usize,
    /// Capacity of the output queue.
    pub queue_capacity: usize,
    /// Calls that may run at once.
    pub concurrency: usize,
    /// How busy the stage's slots were: task time over (time from the
    /// first task's start to the last one's end x concurrency), 0..=1. A
    /// stage near 1 is saturated: more concurrency (or a faster stage)
    /// would raise throughput.
    pub occupancy: f64,
}

/// A snapshot of every stage, source first.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PipelineStats {
    /// Per stage, in pipeline order.
    pub stages: Vec<StageStats>,
}

impl PipelineStats {
    /// The stage that waited least for input relative to its work: the
    /// likely bottleneck (stages that only pass items are skipped).
    pub fn bottleneck(&self) -> Option<&StageStats> {
        self.stages
            .iter()
            .filter(|s| s.items_in > 0 && s.task_mean > Duration::ZERO)
            .max_by(|a, b| {
                let busy = |s: &StageStats| s.task_mean.as_secs_f64() * s.items_in as f64 - s.get_wait.as_secs_f64();
                busy(a).total_cmp(&busy(b))
            })
    }
}

impl std::fmt::Display for PipelineStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<16} {:>8} {:>8} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>7} {:>5}",
            "stage", "in", "out", "fail", "mean", "p50", "p90", "p99", "put-wait", "get-wait", "queue", "busy"
        )?;
        for s in &self.stages {
            writeln!(
                f,
                "{:<16} {:>8} {:>8} {:>6} {:>10.3?} {:>10.3?} {:>10.3?} {:>10.3?} {:>10.3?} {:>10.3?} {:>3}/{:<3} {:>4.0}%",
                s.name,
                s.items_in,
                s.items_out,
                s.failures,
                s.task_mean,
                s.task_p50,
                s.task_p90,
                s.task_p99,
                s.put_wait,
                s.get_wait,
                s.queue_len,
                s.queue_capacity,
                s.occupancy * 100.0
            )?;
        }
        if let Some(b) = self.bottleneck() {
            writeln!(f, "bottleneck: {}", b.name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_an_eighth() {
        let h = Histogram::new();
        for us in 1..=1000 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.quantile(0.5).as_secs_f64() * 1e6;
        let p99 = h.quantile(0.99).as_secs_f64() * 1e6;
        assert!((500.0 * 0.875..=500.0).contains(&p50), "{p50}");
        assert!((990.0 * 0.875..=990.0).contains(&p99), "{p99}");
        assert_eq!(Histogram::new().quantile(0.5), Duration::ZERO);
    }

    #[test]
    fn bucket_bounds_are_monotonic() {
        let mut last = 0;
        for i in 0..(64 * SUB as usize) {
            let b = Histogram::lower_bound(i);
            assert!(b >= last, "{i}");
            last = b;
            let used = i < SUB as usize || i >= 3 * SUB as usize;
            if used && b < u64::MAX / 2 {
                assert_eq!(Histogram::index(b), i, "{i}");
            }
        }
    }
}

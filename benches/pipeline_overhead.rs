//! Pipeline overhead, for `benches/compare_pipeline.py`, which runs SPDL's
//! Python pipeline on the same shapes in the same run.
//!
//! ```text
//! cargo bench --bench pipeline_overhead -- --kind async|blocking|sleep|regroup|startup --items N --repeat R
//! ```
//! Kinds: `async`/`blocking`: 3 no-op stages of that kind; `sleep`: one
//! async stage sleeping 10 ms per item at concurrency 32; `regroup`:
//! `aggregate(32)` then `disaggregate()`; `startup`: an empty pipeline's
//! build-to-first-item and drop times (`times_s` holds pairs);
//! `sleep-tokio`: the same sleeps through `buffer_unordered(32)` on a plain
//! 2-thread tokio runtime, no pipeline (the ceiling tokio's 1 ms timer
//! allows); `sleep-precise`: the `sleep` pipeline with a 10 ms wait that
//! ends on time (one deadline thread, [`DeadlineTimer`]) instead of tokio's
//! timer; `sleep-precise-tokio`: those waits on plain tokio, no pipeline.
//! `--runtime-threads N` sets the tokio worker threads (default 2).
//! Prints one JSON line: `{"impl":"spdl-rs","kind":..,"items":N,"times_s":[..],"peak_rss_kb":..}`.

use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::channel::oneshot;

use anyhow::{bail, Result};
use spdl::pipeline::{Pipeline, PipelineBuilder, PipelineConfig, StageConfig};

mod common;

async fn noop(x: u64) -> Result<u64, String> {
    Ok(x)
}

async fn sleep_10ms(x: u64) -> Result<u64, String> {
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(x)
}

/// Waits that end on time, for `sleep-precise`: tokio's timer ends a
/// 10 ms sleep on its next 1 ms tick (about 11.3 ms here). One thread keeps
/// the deadlines in a heap and sleeps on a condvar until the earliest, so
/// a wait costs no thread of its own.
struct DeadlineTimer {
    due: Mutex<BinaryHeap<Due>>,
    changed: Condvar,
}

/// A deadline and who to tell (ordered by deadline, then arrival).
struct Due(Instant, u64, oneshot::Sender<()>);

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.0, self.1) == (other.0, other.1)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    /// Reversed, so the heap's top is the earliest deadline.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.0, other.1).cmp(&(self.0, self.1))
    }
}

impl DeadlineTimer {
    /// The process-wide timer; its thread starts on first use.
    fn get() -> &'static DeadlineTimer {
        static TIMER: OnceLock<&'static DeadlineTimer> = OnceLock::new();
        TIMER.get_or_init(|| {
            let timer: &'static DeadlineTimer = Box::leak(Box::new(DeadlineTimer {
                due: Mutex::new(BinaryHeap::new()),
                changed: Condvar::new(),
            }));
            std::thread::spawn(move || timer.serve());
            timer
        })
    }

    fn serve(&self) {
        let mut due = self.due.lock().unwrap();
        loop {
            let now = Instant::now();
            match due.peek().map(|d| d.0) {
                Some(at) if at <= now => {
                    let Due(_, _, tx) = due.pop().unwrap();
                    let _ = tx.send(());
                }
                Some(at) => due = self.changed.wait_timeout(due, at - now).unwrap().0,
                None => due = self.changed.wait(due).unwrap(),
            }
        }
    }

    async fn sleep(&self, d: Duration) {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let (tx, rx) = oneshot::channel();
        let at = Instant::now() + d;
        self.due.lock().unwrap().push(Due(at, SEQ.fetch_add(1, Relaxed), tx));
        self.changed.notify_one();
        let _ = rx.await;
    }
}

async fn precise_sleep_10ms(x: u64) -> Result<u64, String> {
    DeadlineTimer::get().sleep(Duration::from_millis(10)).await;
    Ok(x)
}

/// Seconds for `items` 10 ms sleeps (`sleep`) at concurrency 32 on plain
/// tokio.
fn tokio_sleeps<F: std::future::Future<Output = Result<u64, String>>>(items: u64, sleep: fn(u64) -> F) -> Result<f64> {
    use futures::StreamExt;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()?;
    let t0 = Instant::now();
    let n = rt.block_on(futures::stream::iter(0..items).map(sleep).buffer_unordered(32).count());
    anyhow::ensure!(n as u64 == items, "{n} of {items} sleeps finished");
    Ok(t0.elapsed().as_secs_f64())
}

fn build(kind: &str, items: u64, config: PipelineConfig) -> Result<Pipeline<u64>> {
    let source = PipelineBuilder::new().add_source(0..items).with_config(config);
    let pipeline = match kind {
        "async" => source
            .pipe(noop, StageConfig::new("a"))
            .pipe(noop, StageConfig::new("b"))
            .pipe(noop, StageConfig::new("c"))
            .add_sink(3)
            .build()?,
        "blocking" => source
            .pipe_blocking(Ok::<u64, String>, StageConfig::new("a"))
            .pipe_blocking(Ok::<u64, String>, StageConfig::new("b"))
            .pipe_blocking(Ok::<u64, String>, StageConfig::new("c"))
            .add_sink(3)
            .build()?,
        "sleep" => source
            .pipe(sleep_10ms, StageConfig::new("sleep").with_concurrency(32))
            .add_sink(3)
            .build()?,
        "sleep-precise" => source
            .pipe(precise_sleep_10ms, StageConfig::new("sleep").with_concurrency(32))
            .add_sink(3)
            .build()?,
        "regroup" => source.aggregate(32).disaggregate().add_sink(3).build()?,
        other => bail!("unknown kind {other}"),
    };
    Ok(pipeline)
}

/// Build-to-first-item and drop times of a one-item pipeline.
fn startup() -> Result<(f64, f64)> {
    let t0 = Instant::now();
    let pipeline = PipelineBuilder::new()
        .add_source(0..1u64)
        .pipe(noop, StageConfig::new("a"))
        .build()?;
    let mut run = pipeline.run(0);
    run.next().transpose()?;
    let first = t0.elapsed().as_secs_f64();
    drop(run);
    let t1 = Instant::now();
    drop(pipeline);
    Ok((first, t1.elapsed().as_secs_f64()))
}

fn main() -> Result<()> {
    let f = common::flags(&["items", "kind", "repeat", "runtime-threads"])?;
    let mut config = PipelineConfig::default();
    if let Some(n) = f.get("runtime-threads") {
        config.runtime_threads = n.parse()?;
    }
    let items: u64 = f.get("items").map_or(Ok(100_000), |v| v.parse())?;
    let kind = f.get("kind").cloned().unwrap_or_else(|| "async".into());
    let repeat: usize = f.get("repeat").map_or(Ok(5), |v| v.parse())?;
    let mut times = Vec::new();
    if kind == "startup" {
        for _ in 0..repeat {
            let (first, shutdown) = startup()?;
            times.extend([first, shutdown]);
        }
    } else if kind == "sleep-tokio" || kind == "sleep-precise-tokio" {
        for _ in 0..repeat {
            times.push(match kind.as_str() {
                "sleep-tokio" => tokio_sleeps(items, sleep_10ms)?,
                _ => tokio_sleeps(items, precise_sleep_10ms)?,
            });
        }
    } else {
        let pipeline = build(&kind, items, config)?;
        for epoch in 0..=repeat as u64 {
            let t0 = Instant::now();
            let n = pipeline.run(epoch).count() as u64;
            anyhow::ensure!(n == items, "{n} of {items} items came out");
            if epoch > 0 {
                times.push(t0.elapsed().as_secs_f64()); // epoch 0 warms up
            }
        }
    }
    let rss = common::peak_rss_kb();
    println!(
        "{{\"impl\":\"spdl-rs\",\"kind\":\"{kind}\",\"items\":{items},\"times_s\":{times:?},\"peak_rss_kb\":{rss}}}"
    );
    Ok(())
}

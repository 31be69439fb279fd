//! Pipeline overhead: items/s through three no-op stages (async, async,
//! blocking on the CPU pool), for `benches/compare_pipeline.py`, which runs
//! SPDL's Python pipeline on the same shape in the same run.
//!
//! ```text
//! cargo bench --bench pipeline_overhead -- --items N --kind async|blocking --repeat R
//! ```
//! Prints one JSON line: `{"impl":"spdl-rs","kind":..,"items":N,"times_s":[..],"peak_rss_kb":..}`.

use std::time::Instant;

use anyhow::{bail, Result};
use spdl::pipeline::{PipelineBuilder, StageConfig};

mod common;

fn main() -> Result<()> {
    let f = common::flags(&["items", "kind", "repeat"])?;
    let items: u64 = f.get("items").map_or(Ok(100_000), |v| v.parse())?;
    let kind = f.get("kind").cloned().unwrap_or_else(|| "async".into());
    let repeat: usize = f.get("repeat").map_or(Ok(5), |v| v.parse())?;
    let noop = |x: u64| async move { Ok::<_, String>(x) };
    let builder = PipelineBuilder::new()
        .add_source(0..items)
        .pipe(noop, StageConfig::new("a"))
        .pipe(noop, StageConfig::new("b"));
    let pipeline = match kind.as_str() {
        "async" => builder.pipe(noop, StageConfig::new("c")).add_sink(3).build()?,
        "blocking" => builder
            .pipe_blocking(Ok::<u64, String>, StageConfig::new("c"))
            .add_sink(3)
            .build()?,
        other => bail!("unknown kind {other}"),
    };
    let mut times = Vec::new();
    for epoch in 0..=repeat as u64 {
        let t0 = Instant::now();
        let n = pipeline.run(epoch).count() as u64;
        anyhow::ensure!(n == items, "{n} of {items} items came out");
        if epoch > 0 {
            times.push(t0.elapsed().as_secs_f64()); // epoch 0 warms up
        }
    }
    let rss = common::peak_rss_kb();
    println!(
        "{{\"impl\":\"spdl-rs\",\"kind\":\"{kind}\",\"items\":{items},\"times_s\":{times:?},\"peak_rss_kb\":{rss}}}"
    );
    Ok(())
}

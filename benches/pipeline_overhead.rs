//! Pipeline overhead: items/s through three no-op stages (async, async,
//! blocking on the CPU pool), for `benches/compare_pipeline.py`, which runs
//! SPDL's Python pipeline on the same shape in the same run.
//!
//! ```text
//! cargo bench --bench pipeline_overhead -- --items N --kind async|blocking --repeat R
//! ```
//! Prints one JSON line: `{"impl":"spdl-rs","kind":..,"items":N,"times_s":[..]}`.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use spdl::pipeline::{PipelineBuilder, StageConfig};

fn main() -> Result<()> {
    let (mut items, mut kind, mut repeat) = (100_000u64, "async".to_string(), 5usize);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--items" => items = value()?.parse()?,
            "--kind" => kind = value()?,
            "--repeat" => repeat = value()?.parse()?,
            "--bench" => {}
            other => bail!("unknown argument {other}"),
        }
    }
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
    println!("{{\"impl\":\"spdl-rs\",\"kind\":\"{kind}\",\"items\":{items},\"times_s\":{times:?}}}");
    Ok(())
}

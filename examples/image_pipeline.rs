//! A real data-loading pipeline over the bundled image fixtures:
//! list files -> read bytes (async) -> decode + resize (CPU pool) ->
//! aggregate -> collate into (N, 224, 224, 3) batches, then per-stage stats
//! and the list of files that failed (the fixtures include broken ones).
//!
//! ```text
//! cargo run --release --example image_pipeline [DIR]
//! ```

use std::path::PathBuf;

use anyhow::Result;
use ndarray::{Array3, Array4, Axis};
use spdl::io::{load_image, Fit, ImageConfig, Source};
use spdl::pipeline::{PipelineBuilder, StageConfig};

fn main() -> Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("fixtures/images"), PathBuf::from);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| !matches!(p.extension().and_then(|e| e.to_str()), Some("json" | "md" | "py")))
        .collect();
    files.sort();
    let config = ImageConfig::default().with_size(224, 224).with_fit(Fit::Cover);

    let pipeline = PipelineBuilder::new()
        .add_source(files)
        .pipe(
            |path: PathBuf| async move {
                let bytes = tokio::fs::read(&path)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                Ok::<_, String>((path, bytes))
            },
            StageConfig::new("read").with_concurrency(8),
        )
        .pipe_blocking(
            move |(path, bytes): (PathBuf, Vec<u8>)| {
                load_image(Source::from_bytes(bytes, path.display().to_string()), &config)
            },
            StageConfig::new("decode").with_concurrency(2),
        )
        .aggregate(8)
        .pipe_blocking(collate, StageConfig::new("collate"))
        .add_sink(2)
        .build()?;

    let mut run = pipeline.run(0);
    for batch in run.by_ref() {
        let batch = batch?;
        let mean = batch.iter().map(|&v| f64::from(v)).sum::<f64>() / batch.len().max(1) as f64;
        println!("batch {:?}, mean pixel {mean:.1}", batch.shape());
    }
    println!("\n{}", run.stats());
    for failure in run.failures() {
        println!("failed: {failure}");
    }
    Ok(())
}

/// Stacks images of one size into an (N, H, W, C) batch.
fn collate(images: Vec<Array3<u8>>) -> Result<Array4<u8>, String> {
    let views: Vec<_> = images.iter().map(|a| a.view()).collect();
    ndarray::stack(Axis(0), &views).map_err(|e| e.to_string())
}

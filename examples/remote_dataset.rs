//! Images from object storage: list a prefix, fetch concurrently on the
//! async runtime (no thread waits on the network), decode on the CPU pool.
//! Credentials and endpoint come from the environment:
//!
//! ```text
//! AWS_ENDPOINT_URL=http://127.0.0.1:9000 AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
//!   cargo run --release --example remote_dataset s3://bucket/train/
//! ```

use anyhow::{Context, Result};
use spdl::io::{list_dataset, load_image, ImageConfig, Source, Store};
use spdl::pipeline::{PipelineBuilder, StageConfig};

fn main() -> Result<()> {
    let prefix = std::env::args()
        .nth(1)
        .context("usage: remote_dataset s3://bucket/prefix/")?;
    let store = Store::for_url(&prefix)?;
    let urls: Vec<String> = list_dataset(&prefix, &["jpg", "jpeg", "png"])?
        .into_iter()
        .map(|item| item.source.name())
        .collect();
    println!("{prefix}: {} images", urls.len());
    let fetcher = store.clone();
    let config = ImageConfig::default().with_size(224, 224);
    let pipeline = PipelineBuilder::new()
        .add_source(urls)
        .pipe(
            move |url: String| {
                let store = fetcher.clone();
                async move { store.get(&url).await.map(|data| Source::from_bytes(data, url)) }
            },
            StageConfig::new("fetch").with_concurrency(32),
        )
        .pipe_blocking(
            move |src| load_image(src, &config),
            StageConfig::new("decode").with_concurrency(4),
        )
        .build()?;
    let mut run = pipeline.run(0);
    let decoded = run.by_ref().filter(|r| r.is_ok()).count();
    println!("{decoded} decoded, {} bytes fetched", store.stats().bytes);
    println!("{}", run.stats());
    for failure in run.failures() {
        println!("failed: {failure}");
    }
    Ok(())
}

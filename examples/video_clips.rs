//! A video clip dataset: from every video, 2 random clips of 8 frames
//! (reproducible from the seed; each video opened and indexed once, only
//! the GOPs holding the clips decoded), resized to 112x112, on the CPU
//! pool, as (clips, frames, H, W, C) arrays.
//!
//! ```text
//! cargo run --release --example video_clips [DIR_OR_URL_PREFIX]
//! ```

use anyhow::Result;
use spdl::io::video::{ClipSampling, VideoReader};
use spdl::io::{list_dataset, VideoConfig};
use spdl::pipeline::{PipelineBuilder, StageConfig};

fn main() -> Result<()> {
    let root = std::env::args().nth(1).unwrap_or_else(|| "fixtures".into());
    let videos: Vec<_> = list_dataset(&root, &["mp4", "mkv", "webm", "mov"])?
        .into_iter()
        .map(|item| item.source)
        .collect();
    let config = VideoConfig::default().with_size(112, 112);
    let sampling = ClipSampling::default()
        .with_clips(2)
        .with_frames_per_clip(8)
        .with_random(0);
    let pipeline = PipelineBuilder::new()
        .add_source(videos)
        .pipe_blocking(
            move |src: spdl::io::Source| {
                let mut reader = VideoReader::open(src.clone(), &config)?;
                reader.get_clips(&sampling).map(|clips| (src.name(), clips))
            },
            StageConfig::new("clips").with_concurrency(4),
        )
        .build()?;
    let mut run = pipeline.run(0);
    for clip in &mut run {
        let (name, clips) = clip?;
        println!(
            "{name}: {:?} starting at frames {:?}",
            clips.frames.shape(),
            clips.starts
        );
    }
    println!("{}", run.stats());
    for failure in run.failures() {
        println!("failed: {failure}");
    }
    Ok(())
}

//! A video clip dataset: 8 frames sampled evenly from every clip (only the
//! GOPs holding them are decoded), resized to 112x112, on the CPU pool.
//!
//! ```text
//! cargo run --release --example video_clips [DIR_OR_URL_PREFIX]
//! ```

use anyhow::Result;
use spdl::io::{list_dataset, probe, sample_frames, VideoConfig};
use spdl::pipeline::{PipelineBuilder, StageConfig};

const FRAMES: usize = 8;

fn main() -> Result<()> {
    let root = std::env::args().nth(1).unwrap_or_else(|| "fixtures".into());
    let clips: Vec<_> = list_dataset(&root, &["mp4", "mkv", "webm"])?
        .into_iter()
        .map(|item| item.source)
        .collect();
    let config = VideoConfig::default().with_size(112, 112);
    let pipeline = PipelineBuilder::new()
        .add_source(clips)
        .pipe_blocking(
            move |src: spdl::io::Source| {
                // Evenly spaced indices over the frames the header declares
                // (sample_frames reports an index past the real end).
                let info = probe(src.clone())?;
                let total = info
                    .streams
                    .iter()
                    .find_map(|s| s.header_frames)
                    .unwrap_or(FRAMES as u64) as usize;
                let indices: Vec<usize> = (0..FRAMES).map(|k| k * total.max(1) / FRAMES).collect();
                sample_frames(src.clone(), &indices, &config).map(|v| (src.name(), v))
            },
            StageConfig::new("sample").with_concurrency(4),
        )
        .build()?;
    let mut run = pipeline.run(0);
    for clip in &mut run {
        let (name, video) = clip?;
        println!("{name}: {:?} at pts {:?}", video.frames.shape(), video.pts);
    }
    println!("{}", run.stats());
    for failure in run.failures() {
        println!("failed: {failure}");
    }
    Ok(())
}

//! An ImageNet-style folder (`root/<class>/<image>`) to labelled batches:
//! class folders -> (source, label) -> decode + resize on the CPU pool ->
//! batches of (N, 224, 224, 3) images with their labels. Works the same on
//! a local folder and a URL prefix (`s3://bucket/train/`).
//!
//! ```text
//! cargo run --release --example imagenet_folder [ROOT]
//! ```

use anyhow::Result;
use ndarray::{Array3, Axis};
use spdl::io::{class_folders, load_image, Fit, ImageConfig};
use spdl::pipeline::{PipelineBuilder, StageConfig};

/// Without an argument: a small class-folder tree made from the image
/// fixtures in a temporary directory.
fn demo_root() -> Result<String> {
    let root = std::env::temp_dir().join("spdl-imagenet-demo");
    for (class, files) in [
        (
            "n01440764",
            ["jpeg_baseline_420.jpg", "png_rgb8.png", "jpeg_progressive.jpg"],
        ),
        ("n01443537", ["jpeg_baseline_444.jpg", "jpeg_gray.jpg", "truncated.jpg"]),
    ] {
        std::fs::create_dir_all(root.join(class))?;
        for f in files {
            std::fs::copy(format!("fixtures/images/{f}"), root.join(class).join(f))?;
        }
    }
    Ok(root.display().to_string())
}

fn main() -> Result<()> {
    let root = match std::env::args().nth(1) {
        Some(root) => root,
        None => demo_root()?,
    };
    let data = class_folders(&root, &["jpg", "jpeg", "png"])?;
    println!(
        "{}: {} images in {} classes",
        root,
        data.items.len(),
        data.classes.len()
    );
    let items: Vec<_> = data
        .items
        .into_iter()
        .map(|(item, label)| (item.source, label))
        .collect();
    let config = ImageConfig::default().with_size(224, 224).with_fit(Fit::Cover);
    let pipeline = PipelineBuilder::new()
        .add_source(items)
        .pipe_blocking(
            move |(src, label)| load_image(src, &config).map(|img: Array3<u8>| (img, label)),
            StageConfig::new("decode").with_concurrency(4),
        )
        .aggregate(8)
        .build()?;
    let mut run = pipeline.run(0);
    for batch in &mut run {
        let batch = batch?;
        let views: Vec<_> = batch.iter().map(|(img, _)| img.view().insert_axis(Axis(0))).collect();
        let images = ndarray::concatenate(Axis(0), &views)?;
        let labels: Vec<usize> = batch.iter().map(|(_, l)| *l).collect();
        println!("batch {:?} labels {labels:?}", images.shape());
    }
    println!("{}", run.stats());
    for failure in run.failures() {
        println!("failed: {failure}");
    }
    Ok(())
}

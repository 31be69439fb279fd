//! Image decode throughput of spdl-rs for the side-by-side harness
//! (`benches/compare_image.py`), which runs Pillow, OpenCV, simplejpeg,
//! PyTurboJPEG and SPDL on the same files in the same run.
//!
//! ```text
//! cargo bench --bench image_decode -- --list FILES.txt --workload native|resize224|png --threads N --repeat R
//! ```
//! Prints one JSON line: `{"impl":"spdl-rs","workload":..,"threads":..,"images":..,"times_s":[..],"peak_rss_kb":..}`.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use spdl::io::{load_image, load_image_batch, BatchConfig, ImageConfig};

mod common;

struct Args {
    list: String,
    workload: String,
    threads: usize,
    repeat: usize,
}

fn parse_args() -> Result<Args> {
    let f = common::flags(&["list", "workload", "threads", "repeat"])?;
    let get = |k: &str, default: &str| f.get(k).cloned().unwrap_or_else(|| default.to_string());
    let args = Args {
        list: get("list", ""),
        workload: get("workload", "native"),
        threads: get("threads", "1").parse()?,
        repeat: get("repeat", "5").parse()?,
    };
    if args.list.is_empty() {
        bail!("usage: image_decode --list FILES.txt [--workload native|resize224|png] [--threads N] [--repeat R]");
    }
    Ok(args)
}

/// Decodes every file once; returns the number of images decoded.
fn run_once(files: &[String], workload: &str) -> Result<usize> {
    match workload {
        "native" | "png" => {
            let config = ImageConfig::default();
            let images: Vec<_> = files.par_iter().map(|f| load_image(f.as_str(), &config)).collect();
            for image in &images {
                image.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            Ok(images.len())
        }
        "resize224" => {
            let config = BatchConfig::new(ImageConfig::default().with_size(224, 224));
            let mut n = 0;
            for chunk in files.chunks(32) {
                n += load_image_batch(chunk.iter().map(String::as_str), &config)?
                    .images
                    .shape()[0];
            }
            Ok(n)
        }
        other => bail!("unknown workload {other}"),
    }
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let files: Vec<String> = std::fs::read_to_string(&args.list)
        .with_context(|| format!("{}: cannot read", args.list))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(args.threads).build()?;
    pool.install(|| {
        let mut images = run_once(&files, &args.workload)?; // warm-up
        let mut times = Vec::with_capacity(args.repeat);
        for _ in 0..args.repeat {
            let t0 = Instant::now();
            images = run_once(&files, &args.workload)?;
            times.push(t0.elapsed().as_secs_f64());
        }
        println!(
            "{{\"impl\":\"spdl-rs\",\"workload\":\"{}\",\"threads\":{},\"images\":{},\"times_s\":{:?},\"peak_rss_kb\":{}}}",
            args.workload,
            args.threads,
            images,
            times,
            common::peak_rss_kb()
        );
        Ok(())
    })
}

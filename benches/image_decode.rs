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

/// One pass over `files`; returns the arrays, so that the caller frees them
/// outside the timed region (as the Python harness does). With one thread,
/// single images are decoded in a plain loop on the calling thread, as the
/// Python peers' 1-thread runs are; otherwise on `pool`.
fn run_once(files: &[String], workload: &str, pool: &rayon::ThreadPool) -> Result<Vec<ndarray::ArrayD<u8>>> {
    match workload {
        "native" | "png" => {
            let config = ImageConfig::default();
            let decode = |f: &String| load_image(f.as_str(), &config);
            let images: Vec<_> = match pool.current_num_threads() {
                1 => files.iter().map(decode).collect(),
                _ => pool.install(|| files.par_iter().map(decode).collect()),
            };
            let images = images.into_iter().map(|image| image.map(|a| a.into_dyn()));
            images.collect::<Result<_, _>>().map_err(|e| anyhow::anyhow!("{e}"))
        }
        "resize224" => {
            let config = BatchConfig::new(ImageConfig::default().with_size(224, 224));
            let batch = |chunk: &[String]| load_image_batch(chunk.iter().map(String::as_str), &config);
            let batches = files
                .chunks(32)
                .map(|chunk| Ok(pool.install(|| batch(chunk))?.images.into_dyn()));
            batches.collect()
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
    let mut arrays = run_once(&files, &args.workload, &pool)?; // warm-up
    let mut times = Vec::with_capacity(args.repeat);
    for _ in 0..args.repeat {
        drop(arrays);
        let t0 = Instant::now();
        arrays = run_once(&files, &args.workload, &pool)?;
        times.push(t0.elapsed().as_secs_f64());
    }
    let images: usize = arrays
        .iter()
        .map(|a| if a.ndim() == 4 { a.shape()[0] } else { 1 })
        .sum();
    println!(
        "{{\"impl\":\"spdl-rs\",\"workload\":\"{}\",\"threads\":{},\"images\":{},\"times_s\":{:?},\"peak_rss_kb\":{}}}",
        args.workload,
        args.threads,
        images,
        times,
        common::peak_rss_kb()
    );
    Ok(())
}

//! Video decode throughput of spdl-rs, one workload per call, for the
//! side-by-side comparison harness (`benches/compare_video.py`), which runs
//! the `ffmpeg` CLI, SPDL and PyAV on the same files in the same run.
//!
//! ```text
//! cargo bench --bench video_decode -- --file F --workload native|resize224|sample8 --threads N --repeat R
//! ```
//! Prints one JSON line: `{"impl":"spdl-rs","workload":..,"threads":..,"frames":..,"times_s":[..]}`.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use spdl::io::{load_video, probe, sample_frames, Interpolation, VideoConfig};

mod common;

struct Args {
    file: String,
    workload: String,
    threads: usize,
    repeat: usize,
}

fn parse_args() -> Result<Args> {
    let f = common::flags(&["file", "workload", "threads", "repeat"])?;
    let get = |k: &str, default: &str| f.get(k).cloned().unwrap_or_else(|| default.to_string());
    let args = Args {
        file: get("file", ""),
        workload: get("workload", "native"),
        threads: get("threads", "1").parse()?,
        repeat: get("repeat", "5").parse()?,
    };
    if args.file.is_empty() {
        bail!("usage: video_decode --file F [--workload native|resize224|sample8] [--threads N] [--repeat R]");
    }
    Ok(args)
}

/// Runs the workload once and returns the number of frames decoded.
fn run_once(args: &Args) -> Result<usize> {
    let config = VideoConfig::default().with_threads(args.threads);
    let frames = match args.workload.as_str() {
        "native" => load_video(args.file.as_str(), &config)?.len(),
        // Bicubic, as the harness asks of every contender (SPDL's filter).
        "resize224" => {
            let config = config.with_size(224, 224).with_interpolation(Interpolation::Bicubic);
            load_video(args.file.as_str(), &config)?.len()
        }
        "sample8" => {
            let total = probe(args.file.as_str())?
                .streams
                .iter()
                .find_map(|s| s.header_frames)
                .context("no frame count in the header")? as usize;
            let indices: Vec<usize> = (0..8).map(|k| k * total / 8).collect();
            sample_frames(args.file.as_str(), &indices, &config)?.len()
        }
        other => bail!("unknown workload {other}"),
    };
    Ok(frames)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let mut frames = run_once(&args)?; // warm-up: page cache, lazy init
    let mut times = Vec::with_capacity(args.repeat);
    for _ in 0..args.repeat {
        let t0 = Instant::now();
        frames = run_once(&args)?;
        times.push(t0.elapsed().as_secs_f64());
    }
    println!(
        "{{\"impl\":\"spdl-rs\",\"workload\":\"{}\",\"threads\":{},\"frames\":{},\"times_s\":{:?},\"peak_rss_kb\":{}}}",
        args.workload,
        args.threads,
        frames,
        times,
        common::peak_rss_kb()
    );
    Ok(())
}

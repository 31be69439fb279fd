//! A mutation fuzzer on stable Rust: seeded mutations of every bundled
//! fixture (and of any extra folder given, such as Pillow's test images)
//! run through every `load_*` entry point, `probe` and `VideoReader`'s
//! multi-frame calls, in this one process.
//! A mutant must give `Ok` or `Err`, within a time limit: a panic that
//! escapes, an abort (run it under `prlimit --as` to turn allocations
//! sized by forged headers into aborts) or a hang fails the run.
//!
//! ```text
//! cargo run --release --example fuzz_mutants -- --seed 1 --count 20000 [--timeout-s 60] [DIR...]
//! bash scripts/fuzz.sh --seed 1 --count 20000      # under a 2 GB address-space cap
//! ```
//!
//! Mutant `i` of seed `s` is always the same bytes, so a failure names the
//! pair and `--only i` replays it (`--save DIR` writes it out, to keep as a
//! regression fixture). The file being decoded is written to
//! `target/fuzz-current.txt` before each decode, so that even an abort
//! leaves its name behind.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use spdl::io::video::{ClipSampling, SeekMode, VideoReader};
use spdl::io::{self as sio, Limits, Source};

/// Limits small enough that a mutant cannot make a single decode big.
fn limits() -> Limits {
    Limits::default()
        .with_max_pixels(4096 * 4096)
        .with_max_frames(2_000)
        .with_max_output_bytes(512 << 20)
}

/// xorshift64*, so a mutant is reproducible from (seed, index).
struct Rng(u64);

impl Rng {
    fn new(seed: u64, index: u64) -> Rng {
        Rng((seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of `data`: a cut, flipped bits, a header field smashed with
/// an extreme value, a duplicated or a deleted chunk.
fn mutate(data: &[u8], rng: &mut Rng) -> (Vec<u8>, &'static str) {
    let mut d = data.to_vec();
    let len = d.len().max(1);
    match rng.below(5) {
        0 => {
            d.truncate(rng.below(len));
            (d, "truncate")
        }
        1 => {
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(len);
                if let Some(b) = d.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
            }
            (d, "flip")
        }
        2 => {
            // Headers live near the start: smash a field there.
            let at = rng.below(len.min(4096));
            let value: [u8; 4] = match rng.below(4) {
                0 => [0xFF; 4],
                1 => [0x7F, 0xFF, 0xFF, 0xFF],
                2 => [0xFF, 0xFF, 0xFF, 0x7F],
                _ => [0; 4],
            };
            for (k, v) in value.into_iter().enumerate() {
                if let Some(b) = d.get_mut(at + k) {
                    *b = v;
                }
            }
            (d, "smash")
        }
        3 => {
            let (from, n) = (rng.below(len), 1 + rng.below(4096));
            let chunk = d[from.min(d.len())..(from + n).min(d.len())].to_vec();
            let at = rng.below(len).min(d.len());
            d.splice(at..at, chunk);
            (d, "duplicate")
        }
        _ => {
            let (from, n) = (rng.below(len).min(d.len()), 1 + rng.below(4096));
            d.drain(from..(from + n).min(d.len()));
            (d, "delete")
        }
    }
}

/// Every entry point on one mutant; errors are fine, panics are not.
fn decode_all(data: &[u8], name: &str) {
    let src = || Source::from_bytes(data.to_vec(), name);
    let video = sio::VideoConfig::default().with_limits(limits());
    let image = sio::ImageConfig::default().with_limits(limits());
    let audio = sio::AudioConfig::default().with_limits(limits());
    let _ = sio::probe(src());
    let _ = sio::probe_kind(src());
    let _ = sio::load_image(src(), &image);
    let _ = sio::load_image(src(), &image.with_size(64, 48));
    let _ = sio::load_video(src(), &video);
    let _ = sio::sample_frames(src(), &[0, 3, 1], &video);
    read_many(src(), &video);
    read_many(src(), &video.clone().with_threads(2));
    read_many(src(), &video.with_seek_mode(SeekMode::Approximate));
    let _ = sio::load_audio(src(), &audio);
    let _ = sio::load_audio(src(), &audio.with_sample_rate(16_000).with_channels(1));
}

/// The reader's multi-frame paths: frames out of order from both ends
/// (with 1 thread, H.264 reference B-frames nobody uses go to the decoder
/// as stand-ins; with 2, split by GOP over helper decoders), then clips.
fn read_many(src: Source, config: &sio::VideoConfig) {
    let Ok(mut reader) = VideoReader::open(src, config) else {
        return;
    };
    let last = reader.len().saturating_sub(1);
    let _ = reader.get_frames_at(&[last, 0, last / 2, 1]);
    let _ = reader.get_clips(
        &ClipSampling::default()
            .with_clips(2)
            .with_frames_per_clip(3)
            .with_random(7),
    );
}

struct Args {
    seed: u64,
    count: u64,
    only: Option<u64>,
    save: Option<PathBuf>,
    timeout: Duration,
    dirs: Vec<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        seed: 1,
        count: 1000,
        only: None,
        save: None,
        // One mutant runs every entry point (about ten decodes); Pillow's
        // 2717x3701 JPEG 2000 test image takes 1-3 s per decode in FFmpeg,
        // 18 s per mutant: 20 s was too close for a slow but finite one.
        timeout: Duration::from_secs(60),
        dirs: vec![PathBuf::from("fixtures")],
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--seed" => args.seed = value()?.parse()?,
            "--count" => args.count = value()?.parse()?,
            "--only" => args.only = Some(value()?.parse()?),
            "--save" => args.save = Some(PathBuf::from(value()?)),
            "--timeout-s" => args.timeout = Duration::from_secs(value()?.parse()?),
            flag if flag.starts_with("--") => bail!("unknown flag {flag}"),
            dir => args.dirs.push(PathBuf::from(dir)),
        }
    }
    Ok(args)
}

/// Every file under `dir` that is media (not docs, scripts or manifests).
fn corpus(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))? {
        let path = entry?.path();
        let skip = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("md" | "json" | "py" | "sh" | "txt")
        );
        if path.is_dir() {
            corpus(&path, out)?;
        } else if path.is_file() && !skip {
            out.push(path);
        }
    }
    Ok(())
}

/// A watchdog that ends the process if one mutant runs past `timeout`;
/// `started` holds when the current one started (ms after `t0`, plus 1;
/// 0 while none runs).
fn watchdog(t0: Instant, started: Arc<AtomicU64>, timeout: Duration) {
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(200));
        let since = started.load(Ordering::Relaxed);
        let running = (t0.elapsed().as_millis() as u64 + 1).saturating_sub(since);
        if since > 0 && running > timeout.as_millis() as u64 {
            let current = std::fs::read_to_string("target/fuzz-current.txt").unwrap_or_default();
            eprintln!("HANG: over {timeout:?} on {current}");
            std::process::exit(3);
        }
    });
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let mut files = Vec::new();
    for dir in &args.dirs {
        corpus(dir, &mut files)?;
    }
    files.sort();
    let inputs: Vec<(PathBuf, Vec<u8>)> = files
        .into_iter()
        .filter_map(|p| std::fs::read(&p).ok().map(|d| (p, d)))
        .collect();
    if inputs.is_empty() {
        bail!("no input files");
    }
    let started = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    watchdog(t0, started.clone(), args.timeout);
    let range = args.only.map_or(0..args.count, |i| i..i + 1);
    let mut failures = 0;
    for index in range.clone() {
        let mut rng = Rng::new(args.seed, index);
        let (path, data) = &inputs[rng.below(inputs.len())];
        let (mutant, how) = mutate(data, &mut rng);
        let name = format!("seed {} mutant {index} ({how} of {})", args.seed, path.display());
        if let Some(dir) = &args.save {
            std::fs::create_dir_all(dir)?;
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("bin");
            std::fs::write(dir.join(format!("mutant-{}-{index}.{ext}", args.seed)), &mutant)?;
        }
        std::fs::write("target/fuzz-current.txt", &name)?;
        started.store(t0.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
        let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("mutant");
        if std::panic::catch_unwind(|| decode_all(&mutant, file_name)).is_err() {
            eprintln!("PANIC: {name}");
            failures += 1;
        }
    }
    started.store(0, Ordering::Relaxed);
    println!(
        "fuzz_mutants: seed {}, {} mutants of {} files in {:.1}s, {failures} panics",
        args.seed,
        range.end - range.start,
        inputs.len(),
        t0.elapsed().as_secs_f64()
    );
    if failures > 0 {
        bail!("{failures} mutants panicked (replay one with --only INDEX --save DIR)");
    }
    Ok(())
}

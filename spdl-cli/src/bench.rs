//! `spdl bench`: the main job. Runs the whole loading pipeline (list ->
//! fetch -> decode -> resize -> collate) over a local folder, a URL prefix
//! or tar shards, shows progress while it runs, and ends with per-stage
//! stats (which stage is the bottleneck) and every item that failed.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bytes::Bytes;
use spdl::io::{self as sio, Source};
use spdl::pipeline::{DistributedSampler, FailureBudget, PipelineBuilder, PipelineConfig, StageConfig};

/// What to decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Images, resized to --size and collated into batches.
    Image,
    /// Videos: every frame, resized to --size.
    Video,
    /// Audio: every sample, as float32.
    Audio,
}

const IMAGE_EXT: &[&str] = &["jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"];
const VIDEO_EXT: &[&str] = &["mp4", "mkv", "webm", "mov", "avi", "ts", "mpg"];
const AUDIO_EXT: &[&str] = &["wav", "flac", "mp3", "m4a", "aac", "ogg", "oga", "opus"];

impl Kind {
    /// The kind of a file name, by extension.
    fn of(name: &str) -> Option<Kind> {
        Kind::of_extension(name.rsplit_once('.')?.1)
    }

    /// The kind of a file extension (`"JPG"`, `"flac"`).
    fn of_extension(ext: &str) -> Option<Kind> {
        let ext = ext.to_ascii_lowercase();
        [
            (Kind::Image, IMAGE_EXT),
            (Kind::Video, VIDEO_EXT),
            (Kind::Audio, AUDIO_EXT),
        ]
        .into_iter()
        .find(|(_, exts)| exts.contains(&ext.as_str()))
        .map(|(k, _)| k)
    }
}

/// The bench's options.
pub struct BenchArgs {
    pub src: String,
    pub kind: Option<Kind>,
    pub batch: usize,
    pub size: (u32, u32),
    pub threads: usize,
    pub fetch_concurrency: usize,
    pub limit: Option<usize>,
    pub rank: usize,
    pub world_size: usize,
    pub json: bool,
    /// The limits every decode runs with (`--trusted-input` among them).
    pub limits: sio::Limits,
}

/// One unit of work: where it came from and how to read it.
#[derive(Clone)]
struct Work {
    name: String,
    kind: Kind,
    /// A source to fetch, or bytes already read from a shard, or the error
    /// that made the shard unreadable (reported by the decode stage).
    input: Input,
}

#[derive(Clone)]
enum Input {
    /// A file or object and its listed size.
    Source(Source, u64),
    Bytes(Bytes),
    Broken(String),
}

/// What a decoded item contributes to the totals.
struct Decoded {
    kind: Kind,
    image: Option<ndarray::Array3<u8>>,
    units: u64,
}

/// What to run over: media files, and tar shards streamed sample by sample.
struct Listing {
    files: Vec<Work>,
    shards: Vec<sio::DatasetItem>,
    /// The kind of media taken from the shards' samples.
    shard_kind: Kind,
}

impl Listing {
    /// Media files under the source and its tar shards (or the source
    /// itself when it is a shard); this rank's part of each.
    fn new(args: &BenchArgs) -> Result<Listing> {
        let listed = if is_shard(&args.src) {
            vec![sio::DatasetItem::from(Source::from(args.src.as_str()))]
        } else {
            sio::dataset::list_dataset_with(&args.src, &[], args.limits.trusted_input)?
        };
        let (shards, others): (Vec<_>, Vec<_>) = listed
            .into_iter()
            .partition(|i| i.unreadable.is_none() && i.relative.ends_with(".tar"));
        let files: Vec<Work> = others
            .into_iter()
            .filter_map(|item| {
                let name = item.source.name();
                // What the listing could not read is reported, not skipped;
                // so are compressed shards, which are not read.
                if let Some(reason) = item.unreadable {
                    return Some(broken(&name, args.kind.unwrap_or(Kind::Image), reason));
                }
                if is_shard(&item.relative) {
                    let reason = "compressed tar shards are not read; decompress them to .tar".to_string();
                    return Some(broken(&name, args.kind.unwrap_or(Kind::Image), reason));
                }
                // Audio-only containers (.webm, .mkv, .mp4 ...) count as
                // audio when audio is asked for.
                let kind = match (args.kind, Kind::of(&item.relative)?) {
                    (Some(Kind::Audio), Kind::Video) => Kind::Audio,
                    (_, kind) => kind,
                };
                (args.kind.is_none_or(|k| k == kind)).then(|| Work {
                    name,
                    kind,
                    input: Input::Source(item.source, item.size),
                })
            })
            .take(args.limit.unwrap_or(usize::MAX))
            .collect();
        Ok(Listing {
            files: args.rank_part(files),
            shards: args.rank_part(shards),
            shard_kind: args.kind.unwrap_or(Kind::Image),
        })
    }

    fn describe(&self) -> String {
        match (self.files.len(), self.shards.len()) {
            (f, 0) => format!("{f} files"),
            (0, s) => format!("{s} shards"),
            (f, s) => format!("{f} files and {s} shards"),
        }
    }

    fn is_empty(&self) -> bool {
        self.files.is_empty() && self.shards.is_empty()
    }

    /// The items of one epoch, produced lazily (a shard is read only when
    /// the pipeline pulls its samples): the files, then the shards'
    /// samples; each item's name is recorded in `names` at its source
    /// position, for the failure report.
    fn items(&self, names: Arc<Mutex<Vec<String>>>, limit: Option<usize>) -> Box<dyn Iterator<Item = Work> + Send> {
        let record = move |w: Work| {
            names.lock().expect("names lock").push(w.name.clone());
            w
        };
        let kind = self.shard_kind;
        let samples = self
            .shards
            .clone()
            .into_iter()
            .flat_map(move |shard| shard_samples(shard, kind));
        let all = self.files.clone().into_iter().chain(samples);
        Box::new(all.take(limit.unwrap_or(usize::MAX)).map(record))
    }
}

/// A tar shard by its name (`.tar`, or a compressed one, which is not read).
fn is_shard(name: &str) -> bool {
    [".tar", ".tar.gz", ".tgz"].iter().any(|ext| name.ends_with(ext))
}

impl BenchArgs {
    /// This rank's share of `items` (the pipeline's `DistributedSampler`,
    /// in listing order, remainder padded so every rank gets as many).
    fn rank_part<T: Clone>(&self, items: Vec<T>) -> Vec<T> {
        if self.world_size <= 1 || items.is_empty() {
            return items;
        }
        let sampler = DistributedSampler::new(items.len(), self.rank, self.world_size).with_shuffle(false);
        sampler.indices(0).into_iter().map(|i| items[i].clone()).collect()
    }
}

/// The samples of one shard as work items (the first field of the wanted
/// kind in each), read as the iterator is pulled.
fn shard_samples(shard: sio::DatasetItem, kind: Kind) -> Box<dyn Iterator<Item = Work> + Send> {
    let name = shard.source.name();
    let samples = match sio::ShardReader::open(&shard.source, 1 << 30) {
        Ok(samples) => samples,
        Err(e) => return Box::new(std::iter::once(broken(&name, kind, e.to_string()))),
    };
    Box::new(samples.filter_map(move |sample| match sample {
        Ok(s) => {
            let (ext, data) = s.fields.iter().find(|(e, _)| Kind::of_extension(e) == Some(kind))?;
            Some(Work {
                name: format!("{name}:{}.{ext}", s.key),
                kind,
                input: Input::Bytes(data.clone()),
            })
        }
        Err(e) => Some(broken(&name, kind, e.to_string())),
    }))
}

fn broken(name: &str, kind: Kind, reason: String) -> Work {
    Work {
        name: name.into(),
        kind,
        input: Input::Broken(reason),
    }
}

/// Fetches a remote object (async, on the store's I/O runtime); local
/// files and shard members pass through.
async fn fetch(work: Work) -> Result<Work, String> {
    let Input::Source(Source::Remote { url, store }, _) = &work.input else {
        return Ok(work);
    };
    let store = match store {
        Some(s) => s.clone(),
        None => sio::Store::for_url(url).map_err(|e| e.to_string())?,
    };
    let data = store.get(url).await.map_err(|e| e.to_string())?;
    Ok(Work {
        input: Input::Bytes(data),
        ..work
    })
}

/// Decodes one item, counting its encoded bytes in `read`.
fn decode(work: Work, size: (u32, u32), limits: sio::Limits, read: &AtomicU64) -> Result<Decoded, String> {
    let source = match work.input {
        Input::Source(s, size) => {
            read.fetch_add(size, Ordering::Relaxed);
            s
        }
        Input::Bytes(data) => {
            read.fetch_add(data.len() as u64, Ordering::Relaxed);
            Source::from_bytes(data, work.name.clone())
        }
        Input::Broken(reason) => return Err(reason),
    };
    let (w, h) = size;
    let e = |e: sio::Error| e.to_string();
    Ok(match work.kind {
        Kind::Image => {
            let image =
                sio::load_image(source, &sio::ImageConfig::default().with_size(w, h).with_limits(limits)).map_err(e)?;
            Decoded {
                kind: Kind::Image,
                image: Some(image),
                units: 1,
            }
        }
        Kind::Video => match sio::load_video(
            source.clone(),
            &sio::VideoConfig::default().with_size(w, h).with_limits(limits),
        ) {
            Ok(video) => Decoded {
                kind: Kind::Video,
                image: None,
                units: video.len() as u64,
            },
            // A video container holding only audio (and maybe cover art).
            Err(sio::Error::Stream { .. }) if has_audio(&source, limits) => decode_audio(source, limits).map_err(e)?,
            Err(err) => return Err(e(err)),
        },
        Kind::Audio => decode_audio(source, limits).map_err(e)?,
    })
}

fn has_audio(source: &Source, limits: sio::Limits) -> bool {
    matches!(
        sio::probe_kind_with_limits(source.clone(), limits),
        Ok(sio::MediaKind::Audio(_))
    )
}

fn decode_audio(source: Source, limits: sio::Limits) -> sio::Result<Decoded> {
    let audio = sio::load_audio(source, &sio::AudioConfig::default().with_limits(limits))?;
    Ok(Decoded {
        kind: Kind::Audio,
        image: None,
        units: audio.samples.len() as u64,
    })
}

/// Stacks the images of a group into one batch; returns the totals.
fn collate(group: Vec<Decoded>) -> Result<[u64; 4], String> {
    let mut totals = [0u64; 4]; // items, images, frames, samples
    let images: Vec<_> = group
        .iter()
        .filter_map(|d| d.image.as_ref().map(|i| i.view()))
        .collect();
    if !images.is_empty() {
        let views: Vec<_> = images.iter().map(|v| v.view().insert_axis(ndarray::Axis(0))).collect();
        let batch = ndarray::concatenate(ndarray::Axis(0), &views).map_err(|e| e.to_string())?;
        std::hint::black_box(&batch);
    }
    for d in &group {
        totals[0] += 1;
        totals[match d.kind {
            Kind::Image => 1,
            Kind::Video => 2,
            Kind::Audio => 3,
        }] += d.units;
    }
    Ok(totals)
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if args.rank >= args.world_size {
        bail!("--rank {} must be below --world-size {}", args.rank, args.world_size);
    }
    let listed = Instant::now();
    let listing = Arc::new(Listing::new(args)?);
    let list_secs = listed.elapsed().as_secs_f64();
    let listing_text = listing.describe();
    if listing.is_empty() {
        bail!("{}: no media files found", args.src);
    }
    let names = Arc::new(Mutex::new(Vec::new()));
    let fetched = Arc::new(AtomicU64::new(0));
    let (read, size, limits) = (fetched.clone(), args.size, args.limits);
    let (source_names, limit) = (names.clone(), args.limit);
    let pipeline = PipelineBuilder::new()
        .add_source_fn(move |_| listing.items(source_names.clone(), limit))
        .pipe(
            fetch,
            StageConfig::new("fetch").with_concurrency(args.fetch_concurrency),
        )
        .pipe_blocking(
            move |w| decode(w, size, limits, &read),
            StageConfig::new("decode").with_concurrency(args.threads),
        )
        .aggregate(args.batch)
        .pipe_blocking(collate, StageConfig::new("collate"))
        .with_config(
            PipelineConfig::default()
                .with_cpu_threads(args.threads)
                .with_budget(FailureBudget::default()),
        )
        .build()?;
    let started = Instant::now();
    let mut run = pipeline.run(0);
    let progress = Progress::start(fetched.clone(), !args.json && std::io::stderr().is_terminal());
    let mut totals = [0u64; 4];
    for batch in &mut run {
        let t = batch?;
        totals.iter_mut().zip(t).for_each(|(a, b)| *a += b);
        progress.done.fetch_add(t[0], Ordering::Relaxed);
    }
    progress.stop();
    let secs = started.elapsed().as_secs_f64();
    let names = names.lock().expect("names lock");
    let failures: Vec<(String, String, String)> = run
        .failures()
        .into_iter()
        .map(|f| {
            (
                f.stage,
                names.get(f.item as usize).cloned().unwrap_or_default(),
                f.reason,
            )
        })
        .collect();
    let bytes = fetched.load(Ordering::Relaxed);
    let report = Report {
        src: &args.src,
        listing: listing_text,
        items: names.len(),
        totals,
        secs,
        list_secs,
        bytes,
        failures: &failures,
    };
    if args.json {
        out!("{}", serde_json::to_string_pretty(&report.json(&run.stats()))?);
    } else {
        report.print(&run.stats())?;
    }
    Ok(())
}

struct Report<'a> {
    src: &'a str,
    listing: String,
    items: usize,
    totals: [u64; 4],
    secs: f64,
    list_secs: f64,
    bytes: u64,
    failures: &'a [(String, String, String)],
}

impl Report<'_> {
    fn print(&self, stats: &spdl::pipeline::PipelineStats) -> Result<()> {
        let [ok, images, frames, samples] = self.totals;
        out!(
            "{}: {} listed in {:.2}s, {} items; {ok} decoded, {} failed in {:.2}s",
            self.src,
            self.listing,
            self.list_secs,
            self.items,
            self.failures.len(),
            self.secs
        );
        out!(
            "  {:.1} items/s, {:.1} MB/s; {images} images, {frames} video frames ({:.1} frames/s), {samples} audio samples",
            ok as f64 / self.secs,
            self.bytes as f64 / 1e6 / self.secs,
            frames as f64 / self.secs,
        );
        out!("\n{stats}");
        if !self.failures.is_empty() {
            out!("failed:");
            for (stage, name, reason) in self.failures {
                out!("  [{stage}] {name}: {reason}");
            }
        }
        Ok(())
    }

    fn json(&self, stats: &spdl::pipeline::PipelineStats) -> serde_json::Value {
        let [ok, images, frames, samples] = self.totals;
        serde_json::json!({
            "src": self.src,
            "listed": self.items,
            "decoded": ok,
            "images": images,
            "video_frames": frames,
            "audio_samples": samples,
            "seconds": self.secs,
            "items_per_second": ok as f64 / self.secs,
            "megabytes_per_second": self.bytes as f64 / 1e6 / self.secs,
            "bytes": self.bytes,
            "stats": stats.to_string(),
            "failures": self.failures.iter().map(|(stage, name, reason)| {
                serde_json::json!({"stage": stage, "item": name, "reason": reason})
            }).collect::<Vec<_>>(),
        })
    }
}

/// A progress line on stderr (when it is a terminal): items done, items/s
/// and MB/s, refreshed twice a second.
struct Progress {
    done: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn start(bytes: Arc<AtomicU64>, show: bool) -> Progress {
        let (done, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (d, s) = (done.clone(), stop.clone());
        let thread = show.then(|| {
            std::thread::spawn(move || {
                let t0 = Instant::now();
                while !s.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(500));
                    let secs = t0.elapsed().as_secs_f64();
                    let n = d.load(Ordering::Relaxed);
                    eprint!(
                        "\r  {n} items  {:.1} items/s  {:.1} MB/s   ",
                        n as f64 / secs,
                        bytes.load(Ordering::Relaxed) as f64 / 1e6 / secs
                    );
                }
                eprintln!();
            })
        });
        Progress { done, stop, thread }
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

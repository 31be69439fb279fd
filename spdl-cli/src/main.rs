//! The `spdl` command: inspect media, decode it to `.npy`, and benchmark
//! decoding over a folder of files.

/// `println!` that returns the write's error instead of panicking, so a
/// closed stdout (`spdl info F | head -c 1`) ends the command quietly.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod bench;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use spdl::io::{self as sio, PixelFormat, VideoConfig};

#[derive(Parser)]
#[command(name = "spdl", version, about = "Inspect, decode and benchmark media with spdl-io")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print image header, or container and stream metadata.
    Info {
        /// Media file or URL (s3://, gs://, az://, http(s)://).
        src: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Trust the input: demux any container FFmpeg reads (playlists, text
        /// and device formats included) and follow symlinks out of a dataset
        /// folder. By default those are refused, so a file reads only itself.
        #[arg(long)]
        trusted_input: bool,
    },
    /// Decode video frames into a NumPy .npy file, shape (N,H,W,C) uint8,
    /// an image into (H,W,C) uint8, or audio into (channels, samples) float32.
    Decode(DecodeArgs),
    /// The main job: run the loading pipeline (list -> fetch -> decode ->
    /// resize -> collate) over a folder, a URL prefix (s3://, gs://, az://,
    /// http(s)://) or tar shards, with progress, per-stage stats and the
    /// list of failed items.
    Bench(BenchCli),
}

#[derive(clap::Args)]
struct BenchCli {
    /// A folder, a URL prefix, or a .tar shard (or a folder/prefix of them).
    src: String,
    /// Only this kind of media (default: every kind, by file extension).
    #[arg(long, value_enum)]
    kind: Option<bench::Kind>,
    /// Items per collated batch.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Resize images and video frames to WIDTHxHEIGHT.
    #[arg(long, default_value = "224x224")]
    size: String,
    /// Decode threads.
    #[arg(long, default_value_t = std::thread::available_parallelism().map_or(1, |n| n.get()))]
    threads: usize,
    /// Concurrent fetches from object storage.
    #[arg(long, default_value_t = 64)]
    fetch_concurrency: usize,
    /// Only the first K items.
    #[arg(long)]
    limit: Option<usize>,
    /// This process's rank, for splitting files (or shards) between ranks.
    #[arg(long, default_value_t = 0)]
    rank: usize,
    /// How many ranks share the data.
    #[arg(long, default_value_t = 1)]
    world_size: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Trust the input: demux any container FFmpeg reads (playlists, text
    /// and device formats included) and follow symlinks out of a dataset
    /// folder. By default those are refused, so a file reads only itself.
    #[arg(long)]
    trusted_input: bool,
}

#[derive(clap::Args)]
struct DecodeArgs {
    /// Media file or URL (s3://, gs://, az://, http(s)://).
    src: String,
    /// Output .npy path.
    #[arg(short, long)]
    output: PathBuf,
    /// Output width (keeps the aspect ratio if only one side is given).
    #[arg(long)]
    width: Option<u32>,
    /// Output height.
    #[arg(long)]
    height: Option<u32>,
    /// rgb24, bgr24, rgba, gray8, yuv420p or yuv444p.
    #[arg(long, default_value = "rgb24")]
    pix_fmt: String,
    /// bilinear, bicubic, area, nearest or lanczos.
    #[arg(long, default_value = "bilinear")]
    interpolation: String,
    /// Window start in seconds.
    #[arg(long)]
    start: Option<f64>,
    /// Window end in seconds (exclusive).
    #[arg(long)]
    end: Option<f64>,
    /// Decode only these frame indices (comma-separated, presentation order).
    #[arg(long, value_delimiter = ',')]
    frames: Option<Vec<usize>>,
    /// Decoder threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Resample to this many frames per second (as FFmpeg's fps filter).
    #[arg(long)]
    fps: Option<u32>,
    /// Audio: resample to this rate (Hz).
    #[arg(long)]
    sample_rate: Option<u32>,
    /// Audio: down/upmix to this many channels.
    #[arg(long)]
    channels: Option<u32>,
    /// Trust the input: demux any container FFmpeg reads (playlists, text
    /// and device formats included) and follow symlinks out of a dataset
    /// folder. By default those are refused, so a file reads only itself.
    #[arg(long)]
    trusted_input: bool,
    /// Keep the frames as coded, ignoring rotation metadata (EXIF
    /// orientation for images).
    #[arg(long)]
    no_rotation: bool,
}

fn main() -> ExitCode {
    tracing_subscriber_init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        // Like other Unix tools, stop quietly when the reader went away.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spdl: {}", message(&e));
            ExitCode::FAILURE
        }
    }
}

/// FFmpeg's log goes through `tracing`; show warnings on stderr only when
/// `SPDL_LOG` asks for them, so failures stay one line.
fn tracing_subscriber_init() {
    if let Ok(filter) = std::env::var("SPDL_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// `e` and its causes on one line, each said once (spdl-io's messages
/// already include the cause they keep as their source).
fn message(e: &anyhow::Error) -> String {
    e.chain().skip(1).fold(e.to_string(), |mut text, cause| {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
        text
    })
}

/// Whether `e` is a write to a closed pipe.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info {
            src,
            json,
            trusted_input,
        } => info(&src, json, limits(trusted_input)),
        Command::Decode(args) => decode(&args),
        Command::Bench(args) => bench::run(&bench::BenchArgs {
            kind: args.kind,
            batch: args.batch,
            size: parse_size(&args.size)?,
            threads: args.threads.max(1),
            fetch_concurrency: args.fetch_concurrency.max(1),
            limit: args.limit,
            rank: args.rank,
            world_size: args.world_size,
            json: args.json,
            limits: limits(args.trusted_input),
            src: args.src,
        }),
    }
}

/// The limits the CLI decodes with: the defaults, trusting the input when
/// asked (`--trusted-input`).
fn limits(trusted_input: bool) -> sio::Limits {
    sio::Limits::default().with_trusted_input(trusted_input)
}

fn info(src: &str, json: bool, limits: sio::Limits) -> Result<()> {
    let src = sio::Source::from(src);
    let info = match sio::probe_kind_with_limits(src.clone(), limits)? {
        sio::MediaKind::Image(image) => return print_image_info(&image, json),
        sio::MediaKind::Video(info) | sio::MediaKind::Audio(info) => info,
        other => bail!("{}: no metadata for {other:?}", src.name()),
    };
    let backend = info
        .streams
        .iter()
        .any(|s| s.kind == sio::StreamKind::Audio)
        .then(|| sio::audio_backend(src.clone(), &sio::AudioConfig::default().with_limits(limits)).ok())
        .flatten()
        .map(|b| format!("{b:?}").to_lowercase());
    if json {
        let mut value = serde_json::to_value(&info)?;
        value["audio_backend"] = serde_json::json!(backend);
        out!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.6}"));
    out!(
        "{}: {} duration={} bit_rate={}{}",
        info.source,
        info.format,
        info.duration.map_or("unknown".to_string(), |d| format!("{d:.6}s")),
        info.bit_rate,
        backend.map_or(String::new(), |b| format!(" audio_backend={b}"))
    );
    for s in &info.streams {
        let p = &s.params;
        let head = format!("  stream {} {:?} {}", s.index, s.kind, p.codec);
        let common = format!(
            "time_base={} start={} duration={} header_frames={}",
            s.time_base,
            opt(s.start_time),
            opt(s.duration),
            s.header_frames.map_or("-".into(), |n| n.to_string())
        );
        match s.kind {
            sio::StreamKind::Video => out!(
                "{head} {}x{} {} space={} range={} primaries={} trc={} avg_fps={} r_fps={} rotation={} {common}",
                p.width,
                p.height,
                p.pix_fmt.as_deref().unwrap_or("-"),
                p.color_space.as_deref().unwrap_or("-"),
                p.color_range.as_deref().unwrap_or("-"),
                p.color_primaries.as_deref().unwrap_or("-"),
                p.color_transfer.as_deref().unwrap_or("-"),
                s.avg_frame_rate.map_or("-".into(), |r| r.to_string()),
                s.real_frame_rate.map_or("-".into(), |r| r.to_string()),
                s.rotation,
            ),
            sio::StreamKind::Audio => out!(
                "{head} {} Hz {} channels ({}) {} {common}",
                p.sample_rate,
                p.channels,
                p.channel_layout.as_deref().unwrap_or("-"),
                p.sample_fmt.as_deref().unwrap_or("-"),
            ),
            _ => out!("{head} {common}"),
        }
    }
    Ok(())
}

fn video_config(args: &DecodeArgs) -> Result<VideoConfig> {
    let mut config = VideoConfig::default()
        .with_pix_fmt(args.pix_fmt.parse::<PixelFormat>()?)
        .with_interpolation(args.interpolation.parse()?)
        .with_threads(args.threads)
        .with_rotation(!args.no_rotation)
        .with_limits(limits(args.trusted_input));
    config.convert.width = args.width;
    config.convert.height = args.height;
    config.start = args.start;
    config.end = args.end;
    if let Some(fps) = args.fps {
        let fps = i32::try_from(fps).context("--fps is too large")?;
        config = config.with_frame_rate(fps, 1);
    }
    Ok(config)
}

fn image_config(args: &DecodeArgs) -> Result<sio::ImageConfig> {
    let mut config = sio::ImageConfig::default()
        .with_pix_fmt(args.pix_fmt.parse::<PixelFormat>()?)
        .with_interpolation(args.interpolation.parse()?)
        .with_orientation(!args.no_rotation)
        .with_limits(limits(args.trusted_input));
    config.width = args.width;
    config.height = args.height;
    Ok(config)
}

fn print_image_info(image: &sio::ImageInfo, json: bool) -> Result<()> {
    if json {
        out!("{}", serde_json::to_string_pretty(image)?);
    } else {
        out!(
            "{}: {} image {}x{} {} orientation={}",
            image.source,
            image.format,
            image.width,
            image.height,
            image.color,
            image.orientation
        );
    }
    Ok(())
}

fn decode(args: &DecodeArgs) -> Result<()> {
    let src = sio::Source::from(args.src.as_str());
    match sio::probe_kind_with_limits(src.clone(), limits(args.trusted_input))? {
        sio::MediaKind::Image(_) => decode_image(args, src),
        sio::MediaKind::Audio(_) => decode_audio(args),
        _ => decode_video(args, src),
    }
}

/// Writes `array` to `path` as a `.npy` (spdl-io's writer).
fn write_npy<T: sio::npy::NpyElement, D: ndarray::Dimension>(
    path: &std::path::Path,
    array: ndarray::ArrayView<'_, T, D>,
) -> Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("{}: cannot create", path.display()))?;
    sio::npy::write_npy(std::io::BufWriter::new(file), array)
        .with_context(|| format!("{}: cannot write", path.display()))
}

/// Writes an image as an (H, W, C) uint8 `.npy`.
fn decode_image(args: &DecodeArgs, src: sio::Source) -> Result<()> {
    let unused = [
        (args.start.is_some() || args.end.is_some(), "--start/--end"),
        (args.frames.is_some(), "--frames"),
        (args.fps.is_some(), "--fps"),
        (
            args.sample_rate.is_some() || args.channels.is_some(),
            "--sample-rate/--channels",
        ),
    ];
    if let Some((_, flag)) = unused.iter().find(|(set, _)| *set) {
        bail!("{}: {flag} does not apply to an image", args.src);
    }
    let image = sio::load_image(src, &image_config(args)?)?;
    write_npy(&args.output, image.view())?;
    eprintln!("{}: image {:?} -> {}", args.src, image.shape(), args.output.display());
    Ok(())
}

/// Writes frames as an (N, H, W, C) uint8 `.npy`.
fn decode_video(args: &DecodeArgs, src: sio::Source) -> Result<()> {
    let config = video_config(args)?;
    let video = match &args.frames {
        Some(frames) => sio::sample_frames(src, frames, &config)?,
        None => sio::load_video(src, &config)?,
    };
    write_npy(&args.output, video.frames.view())?;
    eprintln!(
        "{}: {} frames {:?} -> {}",
        args.src,
        video.len(),
        video.frames.shape(),
        args.output.display()
    );
    Ok(())
}

/// Writes audio as a (channels, samples) float32 `.npy`.
fn decode_audio(args: &DecodeArgs) -> Result<()> {
    let unused = [
        (args.frames.is_some(), "--frames"),
        (args.fps.is_some(), "--fps"),
        (args.width.is_some() || args.height.is_some(), "--width/--height"),
    ];
    if let Some((_, flag)) = unused.iter().find(|(set, _)| *set) {
        bail!("{}: {flag} does not apply to audio", args.src);
    }
    let mut config = sio::AudioConfig::default().with_limits(limits(args.trusted_input));
    config.sample_rate = args.sample_rate;
    config.channels = args.channels;
    config.start = args.start;
    config.end = args.end;
    let audio = sio::load_audio(args.src.as_str(), &config)?;
    write_npy(&args.output, audio.samples.view())?;
    eprintln!(
        "{}: audio {:?} at {} Hz ({}, {} backend) -> {}",
        args.src,
        audio.samples.shape(),
        audio.sample_rate,
        audio.channel_layout,
        audio.backend,
        args.output.display()
    );
    Ok(())
}

fn parse_size(size: &str) -> Result<(u32, u32)> {
    let Some((w, h)) = size.split_once('x') else {
        bail!("--size must look like 224x224, not {size:?}");
    };
    Ok((w.parse()?, h.parse()?))
}

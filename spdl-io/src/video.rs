//! High-level video loading: whole clips or time windows into one array,
//! frames sampled by index, and a streaming reader for long videos.

use ndarray::Array4;

use crate::convert::{ConvertConfig, Crop, FrameConverter, Interpolation, PixelFormat};
use crate::decode::{DecoderConfig, Frame};
use crate::demux::{Demuxer, Ratio};
use crate::error::Position;
use crate::frames::FrameReader;
use crate::rate::FrameRateConverter;
use crate::{Error, Limits, Result, Source};

/// How to load a video. Every field has a default; setters chain.
///
/// ```
/// use spdl_io::{PixelFormat, VideoConfig};
/// let config = VideoConfig::default()
///     .with_size(224, 224)
///     .with_pix_fmt(PixelFormat::Rgb24)
///     .with_window(1.0, 3.0)
///     .with_threads(2);
/// assert_eq!(config.convert.width, Some(224));
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct VideoConfig {
    /// The stream to decode; `None` picks FFmpeg's best video stream.
    pub stream: Option<usize>,
    /// Decoder threads and corrupt-packet budget.
    pub decoder: DecoderConfig,
    /// Output pixel format, size, crop and rotation.
    pub convert: ConvertConfig,
    /// Start of the time window in seconds (stream time, as ffprobe shows).
    pub start: Option<f64>,
    /// End of the time window in seconds, exclusive.
    pub end: Option<f64>,
    /// Output frame rate: frames are repeated or dropped as FFmpeg's `fps`
    /// filter does (pts rounded to the nearest tick). `None` keeps every
    /// decoded frame.
    pub frame_rate: Option<Ratio>,
    /// Safety limits.
    pub limits: Limits,
}

impl VideoConfig {
    /// Decodes stream `index` instead of the best video stream.
    #[must_use]
    pub fn with_stream(mut self, index: usize) -> Self {
        self.stream = Some(index);
        self
    }
    /// Sets the decoder's thread count (see [`DecoderConfig::threads`]).
    #[must_use]
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.decoder.threads = threads;
        self
    }
    /// Sets the decoder settings.
    #[must_use]
    pub fn with_decoder(mut self, decoder: DecoderConfig) -> Self {
        self.decoder = decoder;
        self
    }
    /// Sets the output pixel format.
    #[must_use]
    pub fn with_pix_fmt(mut self, pix_fmt: PixelFormat) -> Self {
        self.convert.pix_fmt = pix_fmt;
        self
    }
    /// Resizes every frame to `width` x `height`.
    #[must_use]
    pub fn with_size(mut self, width: u32, height: u32) -> Self {
        self.convert.width = Some(width);
        self.convert.height = Some(height);
        self
    }
    /// Sets the resampling filter used for resizing.
    #[must_use]
    pub fn with_interpolation(mut self, interpolation: Interpolation) -> Self {
        self.convert.interpolation = interpolation;
        self
    }
    /// Crops every frame (in decoded-frame coordinates) before resizing.
    #[must_use]
    pub fn with_crop(mut self, crop: Crop) -> Self {
        self.convert.crop = Some(crop);
        self
    }
    /// Whether to apply the stream's display matrix (default: yes), as the
    /// `ffmpeg` CLI's autorotation does: right-angle rotations, with the
    /// horizontal or vertical mirror or transpose the matrix adds. Other
    /// angles are not applied.
    #[must_use]
    pub fn with_rotation(mut self, apply: bool) -> Self {
        self.convert.ignore_rotation = !apply;
        self
    }
    /// Keeps only frames with `start <= pts < end` (seconds).
    #[must_use]
    pub fn with_window(mut self, start: f64, end: f64) -> Self {
        self.start = Some(start);
        self.end = Some(end);
        self
    }
    /// Resamples to `num / den` frames per second (at most
    /// [`MAX_FRAME_RATE`]).
    #[must_use]
    pub fn with_frame_rate(mut self, num: i32, den: i32) -> Self {
        self.frame_rate = Some(Ratio { num, den });
        self
    }
    /// Sets the safety limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

/// Decoded frames and their timestamps.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Video {
    /// Frames, shape (N, H, W, C) for packed formats; see [`PixelFormat`]
    /// for the planar layouts.
    pub frames: Array4<u8>,
    /// Presentation time of each frame in seconds (stream time).
    pub pts: Vec<f64>,
    /// The stream the frames came from.
    pub stream: usize,
    /// The pixel format of `frames`.
    pub pix_fmt: PixelFormat,
    /// Packets skipped as corrupt (only with a non-zero
    /// [`DecoderConfig::max_corrupt_packets`]).
    pub corrupt_packets: usize,
    /// The frame count the container declares, if any. Headers can lie,
    /// but a whole-stream load that returns far fewer frames than this
    /// usually means a truncated or damaged file.
    pub header_frames: Option<u64>,
}

impl Video {
    /// Number of frames.
    pub fn len(&self) -> usize {
        self.pts.len()
    }
    /// Whether there are no frames.
    pub fn is_empty(&self) -> bool {
        self.pts.is_empty()
    }
}

/// An opened stream ready to produce converted frames.
struct VideoSource {
    reader: FrameReader,
    converter: FrameConverter,
    time_base: Ratio,
    /// Rough number of frames the load will produce (for preallocation).
    frames_hint: usize,
    header_frames: Option<u64>,
    config: VideoConfig,
    rate: Option<FrameRateConverter>,
    /// A converted frame that frame-rate conversion still has to repeat.
    repeat: Option<Repeat>,
    /// A failure met while filling a streamed chunk: the chunk's frames go
    /// out first, this with the next call.
    deferred: Option<Error>,
}

/// A converted frame to be output `remaining` more times.
struct Repeat {
    bytes: Vec<u8>,
    shape: [usize; 3],
    remaining: usize,
    tick: i64,
}

/// Frames accumulated for one [`Video`], with limits checked per frame.
struct Batch {
    data: Vec<u8>,
    pts: Vec<f64>,
    shape: [usize; 3],
    limits: Limits,
    src: String,
    hint: usize,
}

impl Batch {
    fn new(src: &str, limits: Limits, hint: usize) -> Self {
        Batch {
            data: Vec::new(),
            pts: Vec::new(),
            shape: [0; 3],
            limits,
            src: src.into(),
            hint: hint.max(1),
        }
    }

    fn oom(&self, bytes: usize) -> Error {
        Error::Convert {
            src: self.src.clone(),
            reason: format!("cannot allocate {bytes} bytes for the output"),
        }
    }

    /// Appends a frame of `shape` shown at `pts` seconds and returns its
    /// slot to fill.
    fn slot(&mut self, shape: [usize; 3], pts: f64) -> Result<&mut [u8]> {
        let bytes: usize = shape.iter().product();
        let limits = self.limits;
        Limits::check(&self.src, "frame count", self.pts.len() as u64 + 1, limits.max_frames)?;
        let total = (self.data.len() + bytes) as u64;
        Limits::check(&self.src, "output size in bytes", total, limits.max_output_bytes)?;
        if self.data.capacity() == 0 {
            // Headers can lie: reserve at most 1 GiB up front and grow
            // (realloc of a large block remaps pages, it does not copy).
            let want = self
                .hint
                .saturating_mul(bytes)
                .min(limits.max_output_bytes as usize)
                .min(1 << 30);
            self.data = crate::memory::with_capacity(want).map_err(|n| self.oom(n))?;
        }
        let at = self.data.len();
        self.data.try_reserve(bytes).map_err(|_| self.oom(at + bytes))?;
        self.data.resize(at + bytes, 0);
        self.shape = shape;
        self.pts.push(pts);
        Ok(&mut self.data[at..])
    }

    /// The frames as one (N, H, W, C) array with their pts; `None` if empty.
    fn into_array(mut self) -> Result<Option<(Array4<u8>, Vec<f64>)>> {
        if self.pts.is_empty() {
            return Ok(None);
        }
        self.data.shrink_to_fit();
        let [h, w, c] = self.shape;
        let frames = Array4::from_shape_vec((self.pts.len(), h, w, c), self.data).map_err(|e| Error::Convert {
            src: self.src.clone(),
            reason: e.to_string(),
        })?;
        Ok(Some((frames, self.pts)))
    }
}

impl VideoSource {
    fn open(src: Source, config: &VideoConfig) -> Result<Self> {
        crate::demux::check_window(config.start, config.end)?;
        let demuxer = Demuxer::open_with_limits(src.clone(), config.limits)?;
        let stream = match config.stream {
            Some(s) => s,
            None => demuxer.best_video_stream()?,
        };
        let info = demuxer.stream_info(stream)?;
        let decoder = demuxer.video_decoder(stream, &config.decoder)?;
        let converter = FrameConverter::new(config.convert, demuxer.orientation(stream), demuxer.source_name());
        let fps = info.avg_frame_rate.and_then(Ratio::to_f64).unwrap_or(30.0);
        let seconds = match (config.start, config.end, info.duration) {
            (s, Some(e), _) => e - s.unwrap_or(0.0),
            (s, None, Some(d)) => d - s.unwrap_or(0.0),
            _ => 0.0,
        };
        let by_time = (seconds.max(0.0) * fps).ceil() as usize + 2;
        let frames_hint = match (config.start, config.end, info.header_frames) {
            (None, None, Some(n)) => n as usize,
            _ => by_time,
        }
        .min(config.limits.max_frames as usize);
        let rate = match config.frame_rate {
            Some(r) if r.num > 0 && r.den > 0 && i64::from(r.num) <= MAX_FRAME_RATE * i64::from(r.den) => {
                Some(FrameRateConverter::new(r, info.time_base))
            }
            Some(r) => {
                return Err(Error::InvalidConfig(format!(
                    "frame rate {r} must be positive and at most {MAX_FRAME_RATE} frames/s"
                )))
            }
            None => None,
        };
        let tb = info.time_base;
        let (start, end) = (
            config.start.map(|s| tb.timestamp_at_or_after(s)),
            config.end.map(|e| tb.timestamp_at_or_after(e)),
        );
        let mut reader = FrameReader::new(demuxer, decoder, stream);
        if !reader.set_window(start, end, true)? {
            tracing::debug!(
                src = reader.demuxer.source_name(),
                "no seek reaches the window; decoding from the start"
            );
            let demuxer = Demuxer::open_with_limits(src, config.limits)?;
            let decoder = demuxer.video_decoder(stream, &config.decoder)?;
            reader = FrameReader::new(demuxer, decoder, stream);
            reader.set_window(start, end, false)?;
        }
        Ok(VideoSource {
            reader,
            converter,
            time_base: tb,
            frames_hint,
            header_frames: info.header_frames,
            config: config.clone(),
            rate,
            repeat: None,
            deferred: None,
        })
    }

    fn src(&self) -> &str {
        self.reader.demuxer.source_name()
    }

    /// Reopens `src` and decodes from its very start (no seek: some
    /// containers cannot seek precisely to their first frame).
    fn restart(&mut self, src: &Source) -> Result<()> {
        let (wanted, cannot_seek) = (self.reader.wanted.take(), self.reader.cannot_seek);
        self.reader = VideoSource::open(src.clone(), &self.config)?.reader;
        (self.reader.wanted, self.reader.cannot_seek) = (wanted, cannot_seek);
        Ok(())
    }

    /// The next frame to output and how many consecutive times, with its
    /// output tick when frame-rate conversion is on.
    fn next_output(&mut self) -> Result<Option<(Frame, usize, Option<i64>)>> {
        let Some(rate) = self.rate.as_mut() else {
            return Ok(self.reader.next_frame()?.map(|f| (f, 1, None)));
        };
        loop {
            let out = match self.reader.next_frame()? {
                Some(f) => rate.push(f),
                None => match rate.finish() {
                    Some(o) => Some(o),
                    None => return Ok(None),
                },
            };
            if let Some(o) = out.filter(|o| o.count > 0) {
                return Ok(Some((o.frame, o.count, Some(o.tick))));
            }
        }
    }

    fn tick_seconds(&self, tick: i64) -> f64 {
        self.rate.as_ref().map_or(f64::NAN, |r| r.seconds(tick))
    }

    /// Decodes up to `max` frames (all when `None`) into one array; `None`
    /// when the stream has no more frames.
    fn collect(&mut self, max: Option<usize>) -> Result<Option<Video>> {
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        let mut batch = Batch::new(self.src(), self.config.limits, max.unwrap_or(self.frames_hint));
        while max.is_none_or(|m| batch.pts.len() < m) {
            if let Some(rep) = self.repeat.as_mut().filter(|r| r.remaining > 0) {
                let tick = rep.tick;
                batch.slot(rep.shape, f64::NAN)?.copy_from_slice(&rep.bytes);
                rep.remaining -= 1;
                rep.tick += 1;
                *batch.pts.last_mut().expect("slot pushed a pts") = self.tick_seconds(tick);
                continue;
            }
            let next = match self.next_output() {
                Ok(next) => next,
                // A stream hands out the frames decoded before a failure.
                Err(e) if max.is_some() && !batch.pts.is_empty() => {
                    self.deferred = Some(e);
                    None
                }
                Err(e) => return Err(e),
            };
            let Some((mut frame, count, tick)) = next else {
                break;
            };
            let shape = self.converter.layout(&frame)?.shape;
            let pts = tick.map_or_else(|| frame_seconds(&frame, self.time_base), |t| self.tick_seconds(t));
            let slot = batch.slot(shape, pts)?;
            self.converter.convert(&mut frame, slot)?;
            if let (Some(t), true) = (tick, count > 1) {
                self.repeat = Some(Repeat {
                    bytes: slot.to_vec(),
                    shape,
                    remaining: count - 1,
                    tick: t + 1,
                });
            }
        }
        let Some((frames, pts)) = batch.into_array()? else {
            return Ok(None);
        };
        Ok(Some(Video {
            frames,
            pts,
            stream: self.reader.stream,
            pix_fmt: self.config.convert.pix_fmt,
            corrupt_packets: self.reader.decoder.corrupt_packets(),
            header_frames: self.header_frames,
        }))
    }

    fn convert_error(&self, reason: String) -> Error {
        Error::Convert {
            src: self.src().into(),
            reason,
        }
    }
}

fn frame_seconds(frame: &Frame, tb: Ratio) -> f64 {
    frame.pts().map_or(f64::NAN, |t| tb.seconds(t))
}

/// The highest output frame rate: more is a mistake (a stream at 10^9
/// frames/s from a 2 s clip never ended).
pub const MAX_FRAME_RATE: i64 = 10_000;

/// Decodes every frame of a video (or of `config`'s time window) into one
/// array.
///
/// ```no_run
/// use spdl_io::{load_video, VideoConfig};
/// let video = load_video("clip.mp4", &VideoConfig::default().with_size(224, 224))?;
/// assert_eq!(video.frames.shape()[1..], [224, 224, 3]);
/// # Ok::<(), spdl_io::Error>(())
/// ```
///
/// # Errors
/// Any [`Error`] naming the source: missing or unreadable input, no video
/// stream, corrupt data, conversion failures, [`Limits`] exceeded, or a
/// stream (or window) with no frames at all.
pub fn load_video(src: impl Into<Source>, config: &VideoConfig) -> Result<Video> {
    let mut source = VideoSource::open(src.into(), config)?;
    source.collect(None)?.ok_or_else(|| no_frames(&source))
}

fn no_frames(source: &VideoSource) -> Error {
    Error::Decode {
        src: source.src().into(),
        stream: source.reader.stream,
        at: Position::EndOfStream,
        reason: match (source.config.start, source.config.end, source.config.frame_rate) {
            (None, None, None) => "no frame could be decoded".into(),
            (None, None, Some(rate)) => format!(
                "no frame at {rate} frames/s (the stream is shorter than one output frame interval, or none could be decoded)"
            ),
            (s, e, _) => format!(
                "no frame is shown in the window [{}, {}) s (or none could be decoded there; frames without timestamps cannot be placed in a window)",
                s.unwrap_or(0.0),
                e.map_or("end".into(), |e| e.to_string())
            ),
        },
    }
}

/// A streaming reader yielding chunks of at most `chunk_frames` frames, so
/// long videos decode with bounded memory. Created by [`stream_video`].
pub struct VideoChunks {
    source: VideoSource,
    chunk_frames: usize,
    done: bool,
}

impl Iterator for VideoChunks {
    type Item = Result<Video>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let chunk = self.source.collect(Some(self.chunk_frames)).transpose();
        self.done = !matches!(chunk, Some(Ok(_)));
        chunk
    }
}

/// Opens a video for streaming decode in chunks of `chunk_frames` frames.
///
/// ```no_run
/// let chunks = spdl_io::stream_video("long.mp4", &Default::default(), 64)?;
/// for chunk in chunks {
///     let chunk = chunk?;
///     println!("{} frames from {:.3}s", chunk.len(), chunk.pts[0]);
/// }
/// # Ok::<(), spdl_io::Error>(())
/// ```
///
/// # Errors
/// As [`load_video`] for opening; each chunk may carry a decode error,
/// after which the iterator ends.
pub fn stream_video(src: impl Into<Source>, config: &VideoConfig, chunk_frames: usize) -> Result<VideoChunks> {
    if chunk_frames == 0 {
        return Err(Error::InvalidConfig("chunk_frames must be at least 1".into()));
    }
    Ok(VideoChunks {
        source: VideoSource::open(src.into(), config)?,
        chunk_frames,
        done: false,
    })
}

/// Most frames [`sample_frames`] indexes (a week at 30 fps; 160 MB of index).
const MAX_INDEXED_FRAMES: u64 = 20_000_000;

/// Presentation timestamps of every frame of a stream, from the packets
/// themselves (not from headers), plus the keyframes among them.
struct FrameIndex {
    /// Pts of every frame, ascending: frame `i` is `pts[i]`.
    pts: Vec<i64>,
    /// Pts of keyframes, ascending.
    keyframes: Vec<i64>,
    /// Whether every packet carried a pts. If not (e.g. AVI with B-frames),
    /// packet times do not map to frames, and frames are found by counting
    /// decoded frames from the start instead of seeking.
    exact: bool,
}

impl FrameIndex {
    /// Reads every packet's timestamp. The index costs 8 bytes a frame, so
    /// it is bounded by [`MAX_INDEXED_FRAMES`] (days of video), not by
    /// [`Limits::max_frames`], which bounds decoded output.
    fn scan(demuxer: &mut Demuxer, stream: usize) -> Result<Self> {
        let (mut pts, mut keyframes, mut exact) = (Vec::new(), Vec::new(), true);
        while let Some(p) = demuxer.read_packet(stream)? {
            exact &= p.pts().is_some();
            // A packet without any timestamp (raw H.264) still is a frame;
            // the index is then not exact and only counts frames.
            let t = p
                .pts()
                .or(p.dts())
                .unwrap_or_else(|| pts.last().map_or(0, |l: &i64| l + 1));
            if p.is_key() {
                keyframes.push(t); // a seek point even when not shown
            }
            if p.is_discard() {
                continue;
            }
            Limits::check(
                demuxer.source_name(),
                "indexed frame count",
                pts.len() as u64 + 1,
                MAX_INDEXED_FRAMES,
            )?;
            pts.push(t);
        }
        pts.sort_unstable();
        keyframes.sort_unstable();
        Ok(FrameIndex { pts, keyframes, exact })
    }

    /// The index from the container's sample table, when it is known to be
    /// the exact frame index without reading any packet: MP4/MOV (whose
    /// table lists every sample) with no frame reordering (so each entry's
    /// timestamp is its pts) and a first entry at the stream's start time.
    /// Remote videos then seek straight to the GOPs needed.
    fn from_container(demuxer: &Demuxer, stream: usize) -> Option<Self> {
        let info = demuxer.info();
        if !info.format.contains("mp4") {
            return None;
        }
        let (entries, delay) = demuxer.container_index(stream);
        let st = demuxer.stream(stream).ok()?;
        // A fragmented MP4's index covers only the fragments read so far;
        // the sample table's count (nb_frames) must match it.
        let whole = st.frames() > 0 && st.frames() as usize == entries.len();
        if !whole || delay != 0 || entries[0].0 != st.start_time() || !entries.windows(2).all(|w| w[0].0 < w[1].0) {
            return None;
        }
        Limits::check(
            demuxer.source_name(),
            "indexed frame count",
            entries.len() as u64,
            MAX_INDEXED_FRAMES,
        )
        .ok()?;
        let keyframes = entries.iter().filter(|e| e.1).map(|e| e.0).collect();
        let pts = entries.into_iter().map(|e| e.0).collect();
        Some(FrameIndex {
            pts,
            keyframes,
            exact: true,
        })
    }

    /// Indexed frames shown before the first keyframe (0 when the index
    /// is not exact, or no packet is flagged a keyframe).
    fn leading_frames(&self) -> usize {
        match self.keyframes.first() {
            Some(&key) if self.exact => self.pts.partition_point(|&p| p < key),
            _ => 0,
        }
    }

    /// A stream cut in the middle of a GOP starts with frames shown before
    /// its first keyframe, which decoders mostly drop (their references are
    /// missing). Those index entries become the frames the decoder does
    /// show there, found by decoding from the start up to the keyframe, so
    /// frame `i` is the `i`-th frame [`load_video`] returns.
    /// `source` must be at the start of the stream; it is reopened after.
    fn settle_leading_frames(&mut self, source: &mut VideoSource, src: &Source) -> Result<()> {
        let (key, leading) = (self.keyframes[0], self.leading_frames());
        let mut shown = Vec::new();
        while let Some(frame) = source.reader.next_frame()? {
            match frame.pts() {
                Some(t) if t < key => shown.push(t),
                _ => break,
            }
        }
        shown.sort_unstable();
        shown.dedup();
        self.pts.splice(..leading, shown);
        source.restart(src)
    }

    /// The keyframe at or before `t` (the first keyframe if none is).
    fn keyframe_before(&self, t: i64) -> i64 {
        let i = self.keyframes.partition_point(|&k| k <= t);
        match i {
            0 => self.keyframes.first().copied().unwrap_or(i64::MIN),
            _ => self.keyframes[i - 1],
        }
    }
}

/// Decodes only the frames at `indices` (presentation order, counted from
/// the stream's content), in the order given; repeated and backward indices
/// are allowed. Seeks to the keyframe before each run of requested frames
/// and decodes forward, reusing decoded work for nearby indices. The
/// config's time window and frame rate are ignored.
///
/// ```no_run
/// let video = spdl_io::sample_frames("clip.mp4", &[0, 30, 60, 30], &Default::default())?;
/// assert_eq!(video.len(), 4);
/// # Ok::<(), spdl_io::Error>(())
/// ```
///
/// # Errors
/// [`Error::FrameIndex`] for an index past the last frame; otherwise as
/// [`load_video`].
pub fn sample_frames(src: impl Into<Source>, indices: &[usize], config: &VideoConfig) -> Result<Video> {
    let mut config = config.clone();
    (config.start, config.end, config.frame_rate) = (None, None, None);
    let src = src.into();
    let mut source = VideoSource::open(src.clone(), &config)?;
    let stream = source.reader.stream;
    Limits::check(
        source.src(),
        "frame count",
        indices.len() as u64,
        config.limits.max_frames,
    )?;
    let mut index = match FrameIndex::from_container(&source.reader.demuxer, stream) {
        Some(index) => index,
        None => FrameIndex::scan(&mut source.reader.demuxer, stream)?,
    };
    if index.leading_frames() > 0 {
        source.restart(&src)?; // the scan read to the end
        index.settle_leading_frames(&mut source, &src)?;
    }
    if let Some(&bad) = indices.iter().find(|&&i| i >= index.pts.len()) {
        return Err(Error::FrameIndex {
            src: source.src().into(),
            index: bad,
            frames: index.pts.len(),
        });
    }
    let mut targets: Vec<usize> = indices.to_vec();
    targets.sort_unstable();
    targets.dedup();
    let mut data = Vec::new();
    let mut shape = [0usize; 3];
    let mut pts_out = vec![f64::NAN; indices.len()];
    let mut last_pts: Option<i64> = None;
    let mut decoded = 0usize;
    if index.exact {
        source
            .reader
            .set_wanted(targets.iter().map(|&i| index.pts[i]).collect());
    } else {
        source.restart(&src)?;
    }
    for &target in &targets {
        let mut frame = if index.exact {
            seek_and_decode_to(&mut source, &src, &index, index.pts[target], &mut last_pts, target)?
        } else {
            count_and_decode_to(&mut source, &mut decoded, target)?
        };
        let layout = source.converter.layout(&frame)?;
        let bytes = layout.bytes;
        shape = layout.shape;
        if data.is_empty() {
            let total = indices.len() * bytes;
            Limits::check(
                source.src(),
                "output size in bytes",
                total as u64,
                config.limits.max_output_bytes,
            )?;
            data = vec![0u8; total];
        }
        let positions: Vec<usize> = (0..indices.len()).filter(|&k| indices[k] == target).collect();
        let first = positions[0];
        source
            .converter
            .convert(&mut frame, &mut data[first * bytes..(first + 1) * bytes])?;
        for &k in &positions {
            pts_out[k] = frame_seconds(&frame, source.time_base);
            if k != first {
                data.copy_within(first * bytes..(first + 1) * bytes, k * bytes);
            }
        }
    }
    let frames = Array4::from_shape_vec((indices.len(), shape[0], shape[1], shape[2]), data)
        .map_err(|e| source.convert_error(e.to_string()))?;
    Ok(Video {
        frames,
        pts: pts_out,
        stream,
        pix_fmt: config.convert.pix_fmt,
        corrupt_packets: source.reader.decoder.corrupt_packets(),
        header_frames: source.header_frames,
    })
}

/// Decodes forward from the start until the `target`-th frame (counting
/// output frames, as [`load_video`] does); `decoded` counts frames so far.
fn count_and_decode_to(source: &mut VideoSource, decoded: &mut usize, target: usize) -> Result<Frame> {
    loop {
        let frame = source
            .reader
            .next_frame()?
            .ok_or_else(|| ended_before(source, target))?;
        *decoded += 1;
        if *decoded > target {
            return Ok(frame);
        }
    }
}

fn ended_before(source: &VideoSource, target: usize) -> Error {
    Error::Decode {
        src: source.src().into(),
        stream: source.reader.stream,
        at: Position::Frame(target),
        reason: "the decoder ended before producing this frame".into(),
    }
}

/// Decodes forward to the first frame with pts >= `t`, seeking first unless
/// the decoder is already between `t`'s keyframe and `t`. If a seek lands
/// past `t` (some demuxers overshoot), decodes again from the start.
fn seek_and_decode_to(
    source: &mut VideoSource,
    src: &Source,
    index: &FrameIndex,
    t: i64,
    last_pts: &mut Option<i64>,
    target: usize,
) -> Result<Frame> {
    let key = index.keyframe_before(t);
    let (mut just_seeked, mut fell_back) = (false, false);
    let ahead = last_pts.is_some_and(|lp| lp < t && (key <= lp || source.reader.cannot_seek));
    if !ahead && (source.reader.cannot_seek || source.reader.seek(key).is_err()) {
        // Cannot seek: decode forward from the very start.
        source.restart(src)?;
        fell_back = true;
    } else if !ahead {
        just_seeked = true;
    }
    loop {
        let frame = source.reader.next_frame()?;
        let p = frame.as_ref().map_or(i64::MAX, |f| f.pts().unwrap_or(i64::MIN));
        // A seek that overshoots, or lands where the target cannot be
        // decoded, is retried once from the very start.
        if (frame.is_none() || (just_seeked && p > t)) && !fell_back {
            tracing::debug!(
                src = source.src(),
                target,
                "seek missed the frame; decoding from the start"
            );
            source.restart(src)?;
            (fell_back, just_seeked) = (true, false);
            continue;
        }
        let frame = frame.ok_or_else(|| ended_before(source, target))?;
        just_seeked = false;
        *last_pts = Some(p);
        if p >= t {
            return Ok(frame);
        }
    }
}

//! Whole clips or time windows decoded into one array, and a streaming
//! reader for long videos: the open stream (`VideoSource`) that the loaders
//! and `sample_frames` share, and the batch its frames are written into.

use ndarray::Array4;

use super::config::VideoConfig;
use super::rate::FrameRateConverter;
use crate::error::{Error, Position, Result};
use crate::ffmpeg::filter::FilterGraph;
use crate::limits::Limits;
use crate::media::convert::{FrameConverter, PixelFormat};
use crate::media::decode::Frame;
use crate::media::demux::Demuxer;
use crate::media::frames::FrameReader;
use crate::media::time::Ratio;
use crate::orientation::Orientation;
use crate::source::Source;

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
pub(super) struct VideoSource {
    pub(super) reader: FrameReader,
    pub(super) converter: FrameConverter,
    pub(super) time_base: Ratio,
    /// Rough number of frames the load will produce (for preallocation).
    frames_hint: usize,
    pub(super) header_frames: Option<u64>,
    config: VideoConfig,
    rate: Option<FrameRateConverter>,
    /// A converted frame that frame-rate conversion still has to repeat.
    repeat: Option<Repeat>,
    /// A failure met while filling a streamed chunk: the chunk's frames go
    /// out first, this with the next call.
    deferred: Option<Error>,
    /// The config's filter chain, built on the first decoded frame.
    filter: Option<FilterStage>,
}

/// A filter chain and where it stands.
struct FilterStage {
    desc: String,
    /// The stream's start time (stream time base): time 0 for the chain.
    start: i64,
    graph: Option<FilterGraph>,
    /// Whether the end of input was fed (only output remains).
    flushed: bool,
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
            // The header's estimate and 1/16 more, so that the buffer need
            // not grow: growing a buffer with huge pages (realloc) copied it,
            // doubling peak memory (BENCHMARKS.md, "Peak memory"). This is
            // address space only; a header can lie, so when the system
            // refuses that much, 1 GiB, grown as needed.
            let estimate = self.hint.saturating_mul(bytes);
            let want = estimate
                .saturating_add(estimate / 16)
                .min(limits.max_output_bytes as usize);
            self.data = match crate::memory::with_capacity(want) {
                Ok(data) => data,
                Err(_) => crate::memory::with_capacity(want.min(1 << 30)).map_err(|n| self.oom(n))?,
            };
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
        // A header's frame count can overshoot: give back a large excess,
        // keep a small one so the pool (`memory`) matches the next request
        // made from the same header.
        if self.data.capacity() - self.data.len() > self.data.len() / 8 {
            self.data.shrink_to_fit();
        }
        let [h, w, c] = self.shape;
        let frames = Array4::from_shape_vec((self.pts.len(), h, w, c), self.data).map_err(|e| Error::Convert {
            src: self.src.clone(),
            reason: e.to_string(),
        })?;
        Ok(Some((frames, self.pts)))
    }
}

impl VideoSource {
    pub(super) fn open(src: Source, config: &VideoConfig) -> Result<Self> {
        config.validate()?;
        let demuxer = Demuxer::open_with_limits(src.clone(), config.limits)?;
        let stream = match config.stream {
            Some(s) => s,
            None => demuxer.best_video_stream()?,
        };
        let info = demuxer.stream_info(stream)?;
        let decoder = demuxer.video_decoder(stream, &config.decoder)?;
        let mut orientation = demuxer.orientation(stream);
        // With a filter chain the rotation comes first, inside the graph,
        // as the `ffmpeg` CLI applies it: the chain sees displayed frames.
        let filter = config.filter.as_ref().map(|desc| {
            match orientation.ffmpeg_filter().filter(|_| !config.convert.ignore_rotation) {
                Some(rotate) => {
                    orientation = Orientation::Normal;
                    format!("{rotate},{desc}")
                }
                None => desc.clone(),
            }
        });
        let converter = FrameConverter::new(config.convert, orientation, demuxer.source_name());
        let fps = info.avg_frame_rate.and_then(Ratio::to_f64).unwrap_or(30.0);
        // Matroska and WebM declare the duration for the file, not the stream.
        let duration = info.duration.or_else(|| demuxer.info().duration);
        let seconds = match (config.start, config.end, duration) {
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
        let rate = config.frame_rate.map(|r| FrameRateConverter::new(r, info.time_base));
        let tb = info.time_base;
        let (start, end) = (
            config.start.map(|s| tb.timestamp_at_or_after(s)),
            config.end.map(|e| tb.timestamp_at_or_after(e)),
        );
        let mut reader = FrameReader::new(demuxer, decoder, stream);
        if !reader.set_window(start, end, true)? {
            tracing::debug!(
                src = reader.demuxer().source_name(),
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
            filter: filter.map(|desc| FilterStage {
                desc,
                start: info.start_time.map_or(0, |s| tb.timestamp(s)),
                graph: None,
                flushed: false,
            }),
        })
    }

    pub(super) fn src(&self) -> &str {
        self.reader.demuxer().source_name()
    }

    /// Reopens `src` and decodes from its very start (no seek: some
    /// containers cannot seek precisely to their first frame).
    pub(super) fn restart(&mut self, src: &Source) -> Result<()> {
        let mut fresh = VideoSource::open(src.clone(), &self.config)?.reader;
        fresh.resume_from(&mut self.reader);
        self.reader = fresh;
        Ok(())
    }

    /// The next decoded frame, through the filter chain when there is one.
    fn next_decoded(&mut self) -> Result<Option<Frame>> {
        let Some(stage) = self.filter.as_mut() else {
            return self.reader.next_frame();
        };
        let src = self.reader.demuxer().source_name().to_string();
        let failed = |reason: String| Error::Convert {
            src: src.clone(),
            reason,
        };
        loop {
            if let Some(graph) = stage.graph.as_mut() {
                let mut out = ffmpeg_next::frame::Video::empty();
                if graph.pull(&mut out).map_err(failed)? {
                    return Ok(Some(Frame::filtered(out, self.time_base)));
                }
                if stage.flushed {
                    return Ok(None);
                }
            }
            let Some(mut frame) = self.reader.next_frame()? else {
                let Some(graph) = stage.graph.as_mut() else {
                    return Ok(None);
                };
                graph.push(None).map_err(failed)?;
                stage.flushed = true;
                continue;
            };
            if stage.graph.is_none() {
                let graph = FilterGraph::video(&stage.desc, &frame.inner, self.time_base.into(), stage.start)
                    .map_err(|reason| Error::InvalidConfig(format!("{src}: {reason}")))?;
                self.time_base = graph.time_base().into();
                stage.graph = Some(graph);
            }
            if let Some(graph) = stage.graph.as_mut() {
                graph.push(Some(&mut frame.inner)).map_err(failed)?;
            }
        }
    }

    /// The next frame to output and how many consecutive times, with its
    /// output tick when frame-rate conversion is on.
    fn next_output(&mut self) -> Result<Option<(Frame, usize, Option<i64>)>> {
        let Some(rate) = self.rate.as_mut() else {
            return Ok(self.next_decoded()?.map(|f| (f, 1, None)));
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
            stream: self.reader.stream(),
            pix_fmt: self.config.convert.pix_fmt,
            corrupt_packets: self.reader.corrupt_packets(),
            header_frames: self.header_frames,
        }))
    }

    pub(super) fn convert_error(&self, reason: String) -> Error {
        Error::Convert {
            src: self.src().into(),
            reason,
        }
    }
}

pub(super) fn frame_seconds(frame: &Frame, tb: Ratio) -> f64 {
    frame.pts().map_or(f64::NAN, |t| tb.seconds(t))
}

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
        stream: source.reader.stream(),
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
        cause: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// WebM declares its duration for the file, not the stream: the output
    /// is reserved from it for every frame at once, not for 2 and regrown.
    #[test]
    fn webm_output_is_reserved_from_the_container_duration() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/vp9_yuv420p.webm");
        let config = VideoConfig::default();
        let frames = load_video(path, &config).unwrap().frames.shape()[0];
        let source = VideoSource::open(Source::from(path), &config).unwrap();
        assert!(
            source.frames_hint >= frames,
            "hint {} for {frames} frames",
            source.frames_hint
        );
    }

    /// An output past 1 GiB is reserved whole from the header's estimate
    /// (address space only: one frame is written here), so it never grows
    /// by realloc, which copied huge-page buffers.
    #[test]
    fn large_outputs_are_reserved_whole() {
        let shape = [1080, 1920, 3];
        let frame: usize = shape.iter().product();
        let mut batch = Batch::new("test", Limits::default(), 200);
        batch.slot(shape, 0.0).unwrap();
        assert!(
            batch.data.capacity() >= 200 * frame,
            "capacity {}",
            batch.data.capacity()
        );
        let start = batch.data.as_ptr();
        batch.slot(shape, 1.0).unwrap();
        assert_eq!(batch.data.as_ptr(), start);
    }
}

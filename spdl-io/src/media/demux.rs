//! Demuxing: open a container, describe its streams, read the packets of
//! one stream, seek to keyframes and cut time windows.

use ffmpeg_next as ff;
use serde::Serialize;

use super::time::Ratio;
use crate::error::{Error, Position, Result};
use crate::ffmpeg::input::InputContext;
use crate::ffmpeg::stream::{CodecParameters, IndexEntry};
use crate::ffmpeg::{self, stream as ffstream};
use crate::limits::Limits;
use crate::orientation::Orientation;
use crate::source::Source;

/// What a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum StreamKind {
    /// Video frames.
    Video,
    /// Audio samples.
    Audio,
    /// Subtitles.
    Subtitle,
    /// Anything else (data, attachments).
    Other,
}

/// The metadata of one stream, as declared by the container and codec
/// headers (header values can lie; content-derived counts come from
/// decoding).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct StreamInfo {
    /// Index of the stream in the container.
    pub index: usize,
    /// What the stream carries.
    pub kind: StreamKind,
    /// What the codec headers declare: codec name, size, pixel and colour
    /// formats (video), rate, channels and sample format (audio), bit rate.
    /// Serialized inline (`codec`, `width`, ... beside `index`).
    #[serde(flatten)]
    pub params: CodecParameters,
    /// Time base of the stream's timestamps.
    pub time_base: Ratio,
    /// Start time in seconds, when declared.
    pub start_time: Option<f64>,
    /// Duration in seconds, when declared.
    pub duration: Option<f64>,
    /// Frame count from the header, when declared (may differ from content).
    pub header_frames: Option<u64>,
    /// Average frame rate (video).
    pub avg_frame_rate: Option<Ratio>,
    /// Real base frame rate, FFmpeg's `r_frame_rate` (video).
    pub real_frame_rate: Option<Ratio>,
    /// Clockwise rotation the display matrix asks for: 0, 90, 180 or 270
    /// (0 for other angles, which decoding does not apply). A mirror in
    /// the matrix is not part of this number; decoding applies it too (see
    /// [`VideoConfig::with_rotation`](crate::video::VideoConfig::with_rotation)).
    pub rotation: u32,
    /// A still picture attached to the file (an MP3's or FLAC's cover
    /// art), not a video: [`Demuxer::best_video_stream`] skips it.
    pub attached_picture: bool,
}

/// The metadata of a container and all its streams.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct MediaInfo {
    /// The source name.
    pub source: String,
    /// Container format (FFmpeg's short names).
    pub format: String,
    /// Duration in seconds, when declared.
    pub duration: Option<f64>,
    /// Declared overall bit rate in bits/s (0 if unknown).
    pub bit_rate: i64,
    /// The streams, in container order.
    pub streams: Vec<StreamInfo>,
}

/// One compressed packet of a stream.
pub struct Packet {
    pub(crate) inner: ff::Packet,
    time_base: Ratio,
}

impl Packet {
    /// The index of the stream the packet belongs to.
    pub fn stream(&self) -> usize {
        self.inner.stream()
    }
    /// Presentation timestamp in the stream's time base.
    pub fn pts(&self) -> Option<i64> {
        self.inner.pts()
    }
    /// Decoding timestamp in the stream's time base.
    pub fn dts(&self) -> Option<i64> {
        self.inner.dts()
    }
    /// Presentation timestamp in seconds.
    pub fn pts_seconds(&self) -> Option<f64> {
        self.pts().map(|t| self.time_base.seconds(t))
    }
    /// Whether the packet starts a keyframe.
    pub fn is_key(&self) -> bool {
        self.inner.is_key()
    }
    /// Whether the container marks the packet to be decoded but not shown
    /// (for example before an edit list's start).
    pub fn is_discard(&self) -> bool {
        ffmpeg::codec::packet_flags(&self.inner) & ff::ffi::AV_PKT_FLAG_DISCARD != 0
    }
    /// Payload size in bytes.
    pub fn size(&self) -> usize {
        self.inner.size()
    }

    /// A packet with these bytes in place of this one's payload, and its
    /// stream, timestamps, duration and flags.
    pub(crate) fn with_payload(&self, data: &[u8]) -> Packet {
        let mut inner = ff::Packet::copy(data);
        inner.set_stream(self.inner.stream());
        inner.set_pts(self.inner.pts());
        inner.set_dts(self.inner.dts());
        inner.set_duration(self.inner.duration());
        inner.set_flags(self.inner.flags());
        Packet {
            inner,
            time_base: self.time_base,
        }
    }
}

/// How many times a read that asks to be retried (EAGAIN) is retried.
const MAX_READ_RETRIES: usize = 1000;

/// An opened container.
///
/// ```no_run
/// let mut demuxer = spdl_io::Demuxer::open("clip.mp4")?;
/// let stream = demuxer.best_video_stream()?;
/// let mut keyframes = 0;
/// while let Some(packet) = demuxer.read_packet(stream)? {
///     keyframes += packet.is_key() as usize;
/// }
/// println!("{keyframes} keyframes");
/// # Ok::<(), spdl_io::Error>(())
/// ```
pub struct Demuxer {
    ctx: InputContext,
    src: String,
    limits: Limits,
}

impl Demuxer {
    /// Opens `src` with default [`Limits`].
    ///
    /// # Errors
    /// [`Error::NotFound`] for a missing file; [`Error::Open`] when the
    /// input is not media FFmpeg can read; [`Error::Limit`] when it is larger
    /// than [`Limits::max_input_bytes`].
    pub fn open(src: impl Into<Source>) -> Result<Self> {
        Self::open_with_limits(src, Limits::default())
    }

    /// Opens `src` with the given limits.
    ///
    /// # Errors
    /// As [`Demuxer::open`].
    pub fn open_with_limits(src: impl Into<Source>, limits: Limits) -> Result<Self> {
        let src = src.into();
        let ctx = InputContext::open(src.open_random(&limits)?, &src.name(), limits.trusted_input)?;
        Ok(Demuxer {
            ctx,
            src: src.name(),
            limits,
        })
    }

    /// The source name used in errors.
    pub fn source_name(&self) -> &str {
        &self.src
    }

    /// The limits this demuxer was opened with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The container's metadata and every stream's.
    pub fn info(&self) -> MediaInfo {
        let input = &self.ctx.input;
        let streams = (0..input.nb_streams() as usize)
            .filter_map(|i| self.stream_info(i).ok())
            .collect();
        let duration = input.duration();
        MediaInfo {
            source: self.src.clone(),
            format: input.format().name().to_string(),
            duration: (duration > 0).then(|| duration as f64 / f64::from(ff::ffi::AV_TIME_BASE)),
            bit_rate: input.bit_rate(),
            streams,
        }
    }

    /// The metadata of stream `index`.
    ///
    /// # Errors
    /// [`Error::Stream`] when there is no such stream.
    pub fn stream_info(&self, index: usize) -> Result<StreamInfo> {
        let input = &self.ctx.input;
        let st = input.stream(index).ok_or_else(|| self.no_stream(index))?;
        let p = ffstream::codec_params(&st);
        let tb = Ratio::from(st.time_base());
        let kind = match st.parameters().medium() {
            ff::media::Type::Video => StreamKind::Video,
            ff::media::Type::Audio => StreamKind::Audio,
            ff::media::Type::Subtitle => StreamKind::Subtitle,
            _ => StreamKind::Other,
        };
        let is_video = kind == StreamKind::Video;
        let known = |t: i64| (t != ff::ffi::AV_NOPTS_VALUE).then(|| tb.seconds(t));
        Ok(StreamInfo {
            index,
            kind,
            params: p,
            time_base: tb,
            start_time: known(st.start_time()),
            duration: known(st.duration()).filter(|d| *d > 0.0),
            header_frames: (st.frames() > 0).then_some(st.frames() as u64),
            avg_frame_rate: Ratio::nonzero(st.avg_frame_rate()).filter(|_| is_video),
            real_frame_rate: Ratio::nonzero(st.rate()).filter(|_| is_video),
            rotation: if is_video {
                ffstream::stream_rotation(input, index)
            } else {
                0
            },
            attached_picture: is_attached_picture(&st),
        })
    }

    fn no_stream(&self, index: usize) -> Error {
        Error::Stream {
            src: self.src.clone(),
            reason: format!("no stream {index} (the container has {})", self.ctx.input.nb_streams()),
        }
    }

    /// The index of the "best" video stream, as FFmpeg ranks them.
    ///
    /// # Errors
    /// [`Error::Stream`] when there is no video stream.
    pub fn best_video_stream(&self) -> Result<usize> {
        self.best_stream(ff::media::Type::Video, "video")
    }

    /// The index of the "best" audio stream, as FFmpeg ranks them.
    ///
    /// # Errors
    /// [`Error::Stream`] when there is no audio stream.
    pub fn best_audio_stream(&self) -> Result<usize> {
        self.best_stream(ff::media::Type::Audio, "audio")
    }

    /// FFmpeg's pick, unless it is cover art: then the first stream of
    /// `kind` that is not.
    fn best_stream(&self, kind: ff::media::Type, name: &str) -> Result<usize> {
        let usable = |s: &ff::format::stream::Stream<'_>| s.parameters().medium() == kind && !is_attached_picture(s);
        let best = self.ctx.input.streams().best(kind).filter(|s| usable(s));
        best.or_else(|| self.ctx.input.streams().find(|s| usable(s)))
            .map(|s| s.index())
            .ok_or_else(|| Error::Stream {
                src: self.src.clone(),
                reason: match self.ctx.input.streams().any(|s| s.parameters().medium() == kind) {
                    true => format!("no {name} stream (only attached pictures such as cover art)"),
                    false => format!("no {name} stream"),
                },
            })
    }

    /// The container's index of `stream` and the stream's container id
    /// (see `ffmpeg::stream::container_index`); empty for demuxers without
    /// one.
    pub(crate) fn container_index(&self, stream: usize) -> (Vec<IndexEntry>, i32) {
        ffstream::container_index(&self.ctx.input, stream)
    }

    /// How `stream`'s frames are turned for display (its display matrix;
    /// see `ffmpeg::stream::stream_orientation`).
    pub(crate) fn orientation(&self, stream: usize) -> Orientation {
        ffstream::stream_orientation(&self.ctx.input, stream)
    }

    /// The FFmpeg stream `index` (for building decoders).
    pub(crate) fn stream(&self, index: usize) -> Result<ff::format::stream::Stream<'_>> {
        self.ctx.input.stream(index).ok_or_else(|| self.no_stream(index))
    }

    pub(crate) fn time_base(&self, stream: usize) -> Result<Ratio> {
        let st = self.ctx.input.stream(stream).ok_or_else(|| self.no_stream(stream))?;
        Ok(Ratio::from(st.time_base()))
    }

    /// Reads the next packet of `stream`, skipping other streams' packets.
    /// Returns `Ok(None)` at the end of the input.
    ///
    /// # Errors
    /// [`Error::Demux`] when the container is corrupt or the read fails.
    pub fn read_packet(&mut self, stream: usize) -> Result<Option<Packet>> {
        let time_base = self.time_base(stream)?;
        let mut retries = 0;
        loop {
            let mut packet = ff::Packet::empty();
            match packet.read(&mut self.ctx.input) {
                Ok(()) if packet.stream() == stream => {
                    return Ok(Some(Packet {
                        inner: packet,
                        time_base,
                    }))
                }
                Ok(()) => continue,
                Err(ff::Error::Eof) => return Ok(None),
                Err(ff::Error::Other { errno }) if errno == ff::error::EAGAIN && retries < MAX_READ_RETRIES => {
                    retries += 1;
                }
                Err(e) => {
                    return Err(Error::Demux {
                        src: self.src.clone(),
                        stream,
                        at: Position::Unknown,
                        reason: ffmpeg::describe_read(e),
                        cause: Some(ffmpeg::cause(e)),
                    })
                }
            }
        }
    }

    /// Seeks so that the next packet of `stream` is the keyframe at or
    /// before `seconds` (stream time, as `ffprobe` shows timestamps).
    ///
    /// # Errors
    /// [`Error::Demux`] when the container cannot seek.
    pub fn seek(&mut self, stream: usize, seconds: f64) -> Result<()> {
        let ts = self.time_base(stream)?.timestamp(seconds);
        self.seek_timestamp(stream, ts)
    }

    /// Seeks to the keyframe at or before `ts`, in the stream's time base.
    pub(crate) fn seek_timestamp(&mut self, stream: usize, ts: i64) -> Result<()> {
        let tb = self.time_base(stream)?;
        ffstream::seek_keyframe_before(&mut self.ctx.input, stream, ts).map_err(|e| Error::Demux {
            src: self.src.clone(),
            stream,
            at: Position::Pts(tb.seconds(ts)),
            reason: format!("seek failed: {e}"),
            cause: Some(ffmpeg::cause(e)),
        })
    }

    /// Packets of `stream` needed to decode the window `[start, end)` in
    /// seconds: seeks to the keyframe at or before `start` and stops at the
    /// first packet whose decoding timestamp is at or past `end` (so every
    /// frame shown before `end` is included, B-frames too).
    ///
    /// # Errors
    /// As [`Demuxer::seek`].
    pub fn window(&mut self, stream: usize, start: f64, end: f64) -> Result<PacketWindow<'_>> {
        if start > 0.0 {
            self.seek(stream, start)?;
        }
        let end_ts = self.time_base(stream)?.timestamp(end);
        Ok(PacketWindow {
            demuxer: self,
            stream,
            end_ts,
            done: false,
        })
    }
}

/// Iterator over the packets of a time window; see [`Demuxer::window`].
pub struct PacketWindow<'a> {
    demuxer: &'a mut Demuxer,
    stream: usize,
    end_ts: i64,
    done: bool,
}

impl Iterator for PacketWindow<'_> {
    type Item = Result<Packet>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.demuxer.read_packet(self.stream) {
            Ok(Some(p)) if p.dts().or(p.pts()).is_some_and(|t| t >= self.end_ts) => {
                self.done = true;
                None
            }
            Ok(Some(p)) => Some(Ok(p)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Whether the stream is a picture attached to the file (cover art).
fn is_attached_picture(st: &ff::format::stream::Stream<'_>) -> bool {
    st.disposition().contains(ff::format::stream::Disposition::ATTACHED_PIC)
}

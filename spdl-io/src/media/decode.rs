//! Decoding: compressed packets in, raw video frames out, in FFmpeg's
//! send/receive model where "need more data" and "end of stream" are
//! states, not errors.

use ffmpeg_next as ff;

use super::demux::{Demuxer, Packet};
use super::h264_refs::{ReferenceTracker, StandInSize};
use super::nal::{NalUnits, Unwanted};
use super::time::Ratio;
use crate::error::{Error, Position, Result};
use crate::ffmpeg::{self, codec, log, stream};
use crate::limits::Limits;

/// Decoder settings.
///
/// ```
/// let config = spdl_io::DecoderConfig::default().with_threads(2);
/// assert_eq!(config.threads, 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecoderConfig {
    /// FFmpeg decoder threads (frame + slice threading). Default 1: data
    /// loading gets its parallelism from decoding many files at once. 0 lets
    /// FFmpeg start one thread per core.
    pub threads: usize,
    /// Packets the decoder may reject as corrupt before the stream fails.
    /// Default 0: the first corrupt packet is an error. Skipped packets are
    /// counted in [`VideoDecoder::corrupt_packets`].
    pub max_corrupt_packets: usize,
    /// Where to decode. Default [`Device::Cpu`].
    pub device: Device,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            threads: 1,
            max_corrupt_packets: 0,
            device: Device::Cpu,
        }
    }
}

/// Where video is decoded.
///
/// `Cuda(n)` decodes with NVDEC on GPU `n` through FFmpeg's hwaccel and
/// copies each frame to host memory, so outputs are today's arrays (a
/// drop-in speed-up for H.264, HEVC, VP9, AV1 and the other codecs NVDEC
/// reads; others decode on the CPU inside FFmpeg). It needs spdl-io's
/// `cuda` feature and an NVIDIA driver at run time; without either the
/// decoder falls back to the CPU, logs the reason as a warning, and
/// [`VideoDecoder::device`] reports [`Device::Cpu`].
///
/// ```
/// use spdl_io::media::Device;
/// let config = spdl_io::DecoderConfig::default().with_device(Device::Cuda(0));
/// assert_eq!(config.device, Device::Cuda(0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Device {
    /// FFmpeg's software decoders.
    #[default]
    Cpu,
    /// NVDEC on CUDA device `n`.
    Cuda(u32),
}

impl DecoderConfig {
    /// Sets [`DecoderConfig::threads`].
    #[must_use]
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }
    /// Sets [`DecoderConfig::device`].
    #[must_use]
    pub fn with_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }
    /// Sets [`DecoderConfig::max_corrupt_packets`].
    #[must_use]
    pub fn with_max_corrupt_packets(mut self, n: usize) -> Self {
        self.max_corrupt_packets = n;
        self
    }
}

/// Whether the decoder took a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum SendStatus {
    /// The packet was accepted (or skipped as corrupt within the budget).
    Accepted,
    /// The decoder's output is full: receive frames, then send the packet again.
    Full,
}

/// What [`VideoDecoder::receive_frame`] produced.
#[derive(Debug)]
#[must_use]
pub enum DecodeStatus {
    /// A decoded frame.
    Frame(Frame),
    /// The decoder needs another packet before it can output a frame.
    NeedMoreData,
    /// The decoder was sent end of stream and has been drained.
    EndOfStream,
}

/// A decoded video frame in the stream's native pixel format.
pub struct Frame {
    pub(crate) inner: ff::frame::Video,
    time_base: Ratio,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("width", &self.width())
            .field("height", &self.height())
            .field("pts", &self.pts())
            .finish()
    }
}

impl Frame {
    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.inner.width()
    }
    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.inner.height()
    }
    /// FFmpeg's name of the pixel format, e.g. `yuv420p`.
    pub fn pix_fmt(&self) -> String {
        self.inner
            .format()
            .descriptor()
            .map(|d| d.name().to_string())
            .unwrap_or_default()
    }
    /// Best-effort presentation timestamp in the stream's time base (the
    /// one the `ffmpeg` CLI uses).
    pub fn pts(&self) -> Option<i64> {
        self.inner.timestamp()
    }
    /// A frame out of a filter graph, timed in the graph's output time base.
    pub(crate) fn filtered(inner: ff::frame::Video, time_base: Ratio) -> Frame {
        Frame { inner, time_base }
    }
    /// Sets the timestamp of a frame that came without one.
    pub(crate) fn set_pts(&mut self, pts: i64) {
        codec::set_best_effort_timestamp(&mut self.inner, pts);
    }
    /// Presentation timestamp in seconds.
    pub fn pts_seconds(&self) -> Option<f64> {
        self.pts().map(|t| self.time_base.seconds(t))
    }
    /// Duration in the stream's time base as the container declared it
    /// (0 when unknown).
    pub fn duration(&self) -> i64 {
        self.inner.packet().duration
    }
}

/// A video decoder for one stream. `Send` (it may move between threads) but
/// not `Sync`: one codec context must never be used from two threads.
///
/// ```compile_fail
/// fn assert_sync<T: Sync>() {}
/// assert_sync::<spdl_io::VideoDecoder>();
/// ```
pub struct VideoDecoder {
    inner: ff::decoder::Video,
    src: String,
    stream: usize,
    time_base: Ratio,
    max_pixels: u64,
    max_corrupt_packets: usize,
    corrupt_packets: usize,
    device: Device,
    /// How to tell unwanted H.264/HEVC packets apart; `None` for other codecs.
    nal: Option<NalUnits>,
    /// The codec's extradata (H.264 parameter sets for the reference model).
    extradata: Vec<u8>,
    /// FFmpeg's error concealment flags while turned off for a stand-in.
    concealment_off: Option<std::os::raw::c_int>,
}

impl VideoDecoder {
    pub(crate) fn new(
        st: &ff::format::stream::Stream,
        src: &str,
        config: &DecoderConfig,
        limits: &Limits,
    ) -> Result<Self> {
        let stream = st.index();
        let fail = |reason: String| Error::Decode {
            src: src.into(),
            stream,
            at: Position::Unknown,
            reason,
            cause: None,
        };
        if st.parameters().medium() != ff::media::Type::Video {
            return Err(Error::Stream {
                src: src.into(),
                reason: format!("stream {stream} is not a video stream"),
            });
        }
        let mut ctx = ff::codec::Context::from_parameters(st.parameters()).map_err(|e| fail(e.to_string()))?;
        let params = stream::codec_params(st);
        Limits::check(
            src,
            "pixels per frame",
            u64::from(params.width) * u64::from(params.height),
            limits.max_pixels,
        )?;
        codec::set_decoder_threads(&mut ctx, config.threads);
        let device = match config.device {
            Device::Cpu => Device::Cpu,
            Device::Cuda(n) => match attach_cuda(&mut ctx, n) {
                Ok(()) => Device::Cuda(n),
                Err(reason) => {
                    tracing::warn!(source = src, "{reason}; decoding on the CPU");
                    Device::Cpu
                }
            },
        };
        ctx.set_time_base(st.time_base());
        let extradata = stream::extradata(st);
        let codec = ff::decoder::find(ctx.id())
            .ok_or_else(|| fail(format!("FFmpeg has no decoder for codec {}", params.codec)))?;
        let inner = ctx
            .decoder()
            .open_as(codec)
            .and_then(|o| o.video())
            .map_err(|e| fail(format!("cannot open the {} decoder: {e}", params.codec)))?;
        Ok(VideoDecoder {
            inner,
            src: src.into(),
            stream,
            time_base: Ratio::from(st.time_base()),
            max_pixels: limits.max_pixels,
            max_corrupt_packets: config.max_corrupt_packets,
            corrupt_packets: 0,
            device,
            nal: NalUnits::new(&params.codec, &extradata),
            extradata,
            concealment_off: None,
        })
    }

    /// Packets (or frames) rejected as corrupt so far, within the budget.
    pub fn corrupt_packets(&self) -> usize {
        self.corrupt_packets
    }

    /// The stream's time base.
    pub fn time_base(&self) -> Ratio {
        self.time_base
    }

    fn error_at(&mut self, at: Position, e: ff::Error, reason: String) -> Result<()> {
        if self.corrupt_packets < self.max_corrupt_packets {
            self.corrupt_packets += 1;
            tracing::warn!(src = %self.src, stream = self.stream, %at, "skipping corrupt data: {reason}");
            return Ok(());
        }
        Err(Error::Decode {
            src: self.src.clone(),
            stream: self.stream,
            at,
            reason,
            cause: Some(ffmpeg::cause(e)),
        })
    }

    /// Sends one packet.
    ///
    /// # Errors
    /// [`Error::Decode`] when the decoder rejects the packet and the
    /// corrupt-packet budget is spent.
    pub fn send_packet(&mut self, packet: &Packet) -> Result<SendStatus> {
        log::clear_logged_error();
        match self.inner.send_packet(&packet.inner) {
            Ok(()) => Ok(SendStatus::Accepted),
            Err(ff::Error::Other { errno }) if errno == ff::error::EAGAIN => Ok(SendStatus::Full),
            Err(e) => {
                let at = packet.pts_seconds().map_or(Position::Unknown, Position::Pts);
                let mut reason = log::logged_error(ffmpeg::describe(e));
                if packet.inner.is_corrupt() {
                    // Set by the demuxer, e.g. for a packet cut short by the end of the file.
                    reason.push_str(" (the demuxer marked this packet damaged: the file is truncated or corrupt here)");
                }
                self.error_at(at, e, reason).map(|()| SendStatus::Accepted)
            }
        }
    }

    /// Signals the end of the stream; remaining frames can then be received.
    ///
    /// # Errors
    /// [`Error::Decode`] if FFmpeg refuses (the decoder is already drained).
    pub fn send_eof(&mut self) -> Result<()> {
        match self.inner.send_eof() {
            Ok(()) | Err(ff::Error::Eof) => Ok(()),
            Err(e) => self.error_at(Position::EndOfStream, e, ffmpeg::describe(e)),
        }
    }

    /// Receives the next frame, if one is ready.
    ///
    /// # Errors
    /// [`Error::Decode`] when decoding fails and the corrupt-packet budget
    /// is spent; [`Error::Limit`] when a frame is over
    /// [`Limits::max_pixels`].
    pub fn receive_frame(&mut self) -> Result<DecodeStatus> {
        loop {
            let mut frame = ff::frame::Video::empty();
            match self.inner.receive_frame(&mut frame) {
                Ok(()) => {
                    if codec::is_hw_frame(&frame) {
                        codec::download_hw_frame(&mut frame).map_err(|reason| Error::Decode {
                            src: self.src.clone(),
                            stream: self.stream,
                            at: Position::Unknown,
                            reason: format!("{:?}: {reason}", self.device),
                            cause: None,
                        })?;
                    }
                    let pixels = u64::from(frame.width()) * u64::from(frame.height());
                    Limits::check(&self.src, "pixels per frame", pixels, self.max_pixels)?;
                    return Ok(DecodeStatus::Frame(Frame {
                        inner: frame,
                        time_base: self.time_base,
                    }));
                }
                Err(ff::Error::Other { errno }) if errno == ff::error::EAGAIN => return Ok(DecodeStatus::NeedMoreData),
                Err(ff::Error::Eof) => return Ok(DecodeStatus::EndOfStream),
                Err(e) => self.error_at(Position::Unknown, e, ffmpeg::describe(e))?,
            }
        }
    }

    /// What to do with `packet` when its picture is not wanted (see
    /// [`nal`](super::nal)): FFmpeg's skip for codecs other than H.264/HEVC.
    pub(crate) fn unwanted(&self, packet: &Packet) -> Unwanted {
        self.nal
            .map_or(Unwanted::Skip, |n| n.unwanted(packet.inner.data().unwrap_or_default()))
    }

    /// Sets FFmpeg's skip for the next packet from what
    /// [`VideoDecoder::unwanted`] (or the reference model) said of it:
    /// non-reference pictures for [`Unwanted::Skip`]; for
    /// [`Unwanted::SkipReference`] (a stand-in packet of one macroblock)
    /// no error concealment. Frames that are output and not skipped stay
    /// bit-identical to a full decode.
    pub(crate) fn set_skip(&mut self, unwanted: Unwanted) {
        let discard = match unwanted {
            Unwanted::Skip => ff::codec::discard::Discard::NonReference,
            _ => ff::codec::discard::Discard::Default,
        };
        codec::set_skip_frame(&mut self.inner, discard);
        let one_macroblock = unwanted == Unwanted::SkipReference && codec::is_single_threaded(&self.inner);
        if one_macroblock {
            let inner = &mut self.inner;
            self.concealment_off
                .get_or_insert_with(|| codec::swap_error_concealment(inner, 0));
        } else if let Some(flags) = self.concealment_off.take() {
            codec::swap_error_concealment(&mut self.inner, flags);
        }
    }

    /// A model of the H.264 reference buffer for this stream, making
    /// stand-ins for unused reference B-frames (see
    /// [`h264_refs`](super::h264_refs)): of one macroblock for a decoder
    /// on the calling thread, whose error concealment can be turned off
    /// for that one packet (concealing the rest would cost what decoding
    /// it does), else of the whole picture in skipped macroblocks (frame
    /// threads copy the concealment setting only when they start). `None`
    /// for other codecs, GPU decoding, or parameter sets it cannot read.
    pub(crate) fn reference_tracker(&self) -> Option<ReferenceTracker> {
        let framing = self.nal.as_ref()?.h264_framing()?;
        let size = match codec::is_single_threaded(&self.inner) {
            true => StandInSize::OneMacroblock,
            false => StandInSize::WholePicture,
        };
        (self.device == Device::Cpu).then(|| ReferenceTracker::new(framing, &self.extradata, size))?
    }

    /// Where this decoder decodes: [`Device::Cpu`] when CUDA was asked for
    /// and could not be used (the reason was logged as a warning).
    pub fn device(&self) -> Device {
        self.device
    }

    /// Drops buffered frames and resets the decoder (after a seek).
    pub fn flush(&mut self) {
        self.inner.flush();
    }
}

impl Demuxer {
    /// A decoder for `stream`.
    ///
    /// # Errors
    /// [`Error::Stream`] when the stream is not video; [`Error::Decode`]
    /// when FFmpeg has no decoder for it or cannot open one;
    /// [`Error::Limit`] when the declared frame size is over
    /// [`Limits::max_pixels`].
    pub fn video_decoder(&self, stream: usize, config: &DecoderConfig) -> Result<VideoDecoder> {
        VideoDecoder::new(&self.stream(stream)?, self.source_name(), config, self.limits())
    }
}

/// Attaches CUDA device `n` to a decoder context (feature `cuda`).
#[cfg(feature = "cuda")]
fn attach_cuda(ctx: &mut ff::codec::Context, n: u32) -> std::result::Result<(), String> {
    codec::attach_cuda(ctx, n)
}

/// Without the `cuda` feature there is no GPU path.
#[cfg(not(feature = "cuda"))]
fn attach_cuda(_ctx: &mut ff::codec::Context, n: u32) -> std::result::Result<(), String> {
    Err(format!("CUDA device {n}: spdl-io was built without its `cuda` feature"))
}

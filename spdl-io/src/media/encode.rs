//! Writing media: a [`Muxer`] over a [`Destination`] and the encoders that
//! feed its streams, [`VideoEncoder`] ((N, H, W, 3) RGB frames) and
//! [`AudioEncoder`] ((channels, samples) float32). `video::VideoWriter`
//! and `audio::AudioWriter` are these put together; everything streams,
//! so memory holds one chunk, the encoders' lookahead and the muxer's
//! interleaving queue, never the whole stream.

use ffmpeg_next as ff;
use ndarray::{ArrayView2, ArrayView4};

use crate::error::{Error, Result};
use crate::ffmpeg::output::OutputContext;
use crate::ffmpeg::resample::SampleConverter;
use crate::ffmpeg::scale::FrameScaler;
use crate::source::Destination;

/// The movflags an MP4 gets when its destination cannot seek (an
/// upload): fragments, so no index has to be written back at the start.
const FRAGMENTED_MP4: &str = "frag_keyframe+empty_moov+default_base_moof";

/// A container being written.
pub(crate) struct Muxer {
    output: OutputContext,
    name: String,
}

impl Muxer {
    /// Opens `dest` for the container `format` (FFmpeg's muxer name) or
    /// the one its name's extension implies.
    pub(crate) fn create(dest: &Destination, format: Option<&str>) -> Result<Self> {
        let sink = dest.open()?;
        Ok(Muxer {
            output: OutputContext::create(sink, format)?,
            name: dest.name(),
        })
    }

    /// An [`Error::InvalidConfig`] naming the destination.
    pub(crate) fn bad(&self, reason: impl std::fmt::Display) -> Error {
        Error::InvalidConfig(format!("{}: {reason}", self.name))
    }

    /// An [`Error::Encode`] naming the destination, or the sink's own
    /// error when a write to it is what failed.
    fn failed(&mut self, what: &str, e: ff::Error) -> Error {
        let name = self.name.clone();
        self.output.error(|| Error::Encode {
            src: name,
            reason: format!("{what}: {}", crate::ffmpeg::describe(e)),
        })
    }

    /// The codec the container uses for `kind` by default.
    pub(crate) fn default_codec(&self, kind: ff::media::Type) -> ff::codec::Id {
        let name = std::path::Path::new(&self.name);
        self.output.output.format().codec(&name, kind)
    }

    /// Adds a stream for `encoder`'s output (a video stream's frame rate
    /// given); its index.
    fn add_stream(
        &mut self,
        encoder: impl Into<ff::codec::Parameters>,
        codec: ff::Codec,
        time_base: ff::Rational,
        frame_rate: Option<ff::Rational>,
    ) -> Result<usize> {
        let name = &self.name;
        let mut stream = self
            .output
            .output
            .add_stream(codec)
            .map_err(|e| Error::InvalidConfig(format!("{name}: {e}")))?;
        stream.set_parameters(encoder);
        stream.set_time_base(time_base);
        if let Some(rate) = frame_rate {
            stream.set_rate(rate);
            stream.set_avg_frame_rate(rate);
        }
        Ok(stream.index())
    }

    /// Whether encoders must put their headers in the stream parameters.
    fn global_header(&self) -> bool {
        self.output
            .output
            .format()
            .flags()
            .contains(ff::format::Flags::GLOBAL_HEADER)
    }

    /// Writes the container header, with the muxer `options`; an MP4 to a
    /// destination that cannot seek is fragmented unless `movflags` is set.
    pub(crate) fn write_header(&mut self, options: &[(String, String)]) -> Result<()> {
        let mut dict = dictionary(options);
        let is_mp4 = self
            .output
            .output
            .format()
            .name()
            .split(',')
            .any(|n| matches!(n, "mp4" | "mov" | "ipod"));
        if is_mp4 && !self.output.seekable() && dict.get("movflags").is_none() {
            dict.set("movflags", FRAGMENTED_MP4);
        }
        let written = self.output.output.write_header_with(dict).map(drop);
        written.map_err(|e| self.failed("writing the header", e))
    }

    /// Writes the packets `encoder` has ready to `stream`. A packet
    /// without a duration gets `default_duration` (encoder time base), so
    /// the container's length (and an MP4 edit list) covers the last
    /// frame; an empty packet (FLAC's final header update, side data only,
    /// which FFmpeg 5.1's muxer refuses) is skipped, so that header keeps
    /// the values written at the start.
    fn write_packets(
        &mut self,
        encoder: &mut ff::encoder::Encoder,
        stream: usize,
        time_base: ff::Rational,
        default_duration: i64,
    ) -> Result<()> {
        let stream_tb = self.output.output.stream(stream).map_or(time_base, |s| s.time_base());
        let mut packet = ff::Packet::empty();
        while encoder.receive_packet(&mut packet).is_ok() {
            if packet.size() == 0 {
                continue;
            }
            if packet.duration() == 0 {
                packet.set_duration(default_duration);
            }
            packet.set_stream(stream);
            packet.rescale_ts(time_base, stream_tb);
            packet
                .write_interleaved(&mut self.output.output)
                .map_err(|e| self.failed("writing a packet", e))?;
        }
        Ok(())
    }

    /// Writes the trailer and completes the destination: the bytes for an
    /// in-memory one.
    pub(crate) fn finish(mut self) -> Result<Option<Vec<u8>>> {
        let written = self.output.write_trailer();
        written.map_err(|e| self.failed("writing the trailer", e))?;
        self.output.finish()
    }
}

/// One stream's opened encoder (`ff::encoder::Video` or `Audio`).
struct StreamEncoder<E> {
    encoder: E,
    stream: usize,
    time_base: ff::Rational,
}

/// A codec context for `codec` in `time_base`, with the global-header
/// flag where the container wants it, ready to be configured and opened.
fn encoder_context(muxer: &Muxer, codec: ff::Codec, time_base: ff::Rational) -> ff::codec::encoder::Encoder {
    let mut context = ff::codec::context::Context::new_with_codec(codec);
    if muxer.global_header() {
        context.set_flags(ff::codec::Flags::GLOBAL_HEADER);
    }
    context.set_time_base(time_base);
    context.encoder()
}

fn dictionary(options: &[(String, String)]) -> ff::Dictionary<'_> {
    let mut dict = ff::Dictionary::new();
    for (k, v) in options {
        dict.set(k, v);
    }
    dict
}

/// The encoder named `name`, or an error naming it.
pub(crate) fn find_encoder(muxer: &Muxer, name: &str) -> Result<ff::Codec> {
    ff::encoder::find_by_name(name).ok_or_else(|| {
        muxer.bad(format!(
            "this FFmpeg build has no {name:?} encoder (`ffmpeg -encoders` lists those it has)"
        ))
    })
}

/// How a [`VideoEncoder`] encodes.
pub(crate) struct VideoSettings<'a> {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) fps: (i32, i32),
    pub(crate) codec: &'a str,
    pub(crate) pix_fmt: &'a str,
    pub(crate) options: &'a [(String, String)],
}

/// RGB frames into one video stream.
pub(crate) struct VideoEncoder {
    inner: StreamEncoder<ff::encoder::Video>,
    scaler: FrameScaler,
    size: (u32, u32),
    frames: i64,
}

impl VideoEncoder {
    /// Opens the encoder and adds its stream to `muxer` (before the header).
    pub(crate) fn open(muxer: &mut Muxer, s: &VideoSettings<'_>) -> Result<Self> {
        let (num, den) = s.fps;
        if num <= 0 || den <= 0 || s.width == 0 || s.height == 0 {
            return Err(muxer.bad(format!("cannot write {}x{} at {num}/{den} frames/s", s.width, s.height)));
        }
        let codec = find_encoder(muxer, s.codec)?;
        let pix_fmt: ff::format::Pixel = s
            .pix_fmt
            .parse()
            .map_err(|_| muxer.bad(format!("unknown pixel format {:?}", s.pix_fmt)))?;
        let rate = ff::Rational::new(num, den);
        let bad_codec = |e: ff::Error| muxer.bad(format!("cannot open the {} encoder: {e}", s.codec));
        let mut video = encoder_context(muxer, codec, rate.invert())
            .video()
            .map_err(bad_codec)?;
        video.set_width(s.width);
        video.set_height(s.height);
        video.set_format(pix_fmt);
        video.set_frame_rate(Some(rate));
        let encoder = video.open_with(dictionary(s.options)).map_err(bad_codec)?;
        let stream = muxer.add_stream(&encoder, codec, rate.invert(), Some(rate))?;
        let inner = StreamEncoder {
            encoder,
            stream,
            time_base: rate.invert(),
        };
        let scaler = FrameScaler::new(ff::format::Pixel::RGB24, pix_fmt, s.width, s.height)
            .map_err(|e| muxer.bad(format!("cannot convert rgb24 to {}: {e}", s.pix_fmt)))?;
        Ok(VideoEncoder {
            inner,
            scaler,
            size: (s.width, s.height),
            frames: 0,
        })
    }

    /// Encodes (N, H, W, 3) RGB frames, in order.
    pub(crate) fn write(&mut self, muxer: &mut Muxer, frames: ArrayView4<'_, u8>) -> Result<()> {
        let (_, h, w, c) = frames.dim();
        if (w as u32, h as u32) != self.size || c != 3 {
            return Err(muxer.bad(format!(
                "frames are {w}x{h}x{c}, the writer takes {}x{}x3 RGB",
                self.size.0, self.size.1
            )));
        }
        let mut rgb = ff::frame::Video::new(ff::format::Pixel::RGB24, self.size.0, self.size.1);
        let mut yuv = ff::frame::Video::empty();
        let row = w * 3;
        for frame in frames.outer_iter() {
            let frame = frame.as_standard_layout();
            let stride = rgb.stride(0);
            let data = rgb.data_mut(0);
            for (y, src) in frame.as_slice().unwrap_or_default().chunks_exact(row).enumerate() {
                data[y * stride..y * stride + row].copy_from_slice(src);
            }
            self.scaler
                .run(&rgb, &mut yuv)
                .map_err(|e| muxer.failed("converting", e))?;
            yuv.set_pts(Some(self.frames));
            self.frames += 1;
            self.inner
                .encoder
                .send_frame(&yuv)
                .map_err(|e| muxer.failed("encoding", e))?;
            self.drain(muxer)?;
        }
        Ok(())
    }

    /// Flushes the encoder into the muxer.
    pub(crate) fn finish(&mut self, muxer: &mut Muxer) -> Result<()> {
        self.inner.encoder.send_eof().map_err(|e| muxer.failed("flushing", e))?;
        self.drain(muxer)
    }

    /// Writes every packet ready (one frame long each).
    fn drain(&mut self, muxer: &mut Muxer) -> Result<()> {
        let s = &mut self.inner;
        muxer.write_packets(&mut s.encoder, s.stream, s.time_base, 1)
    }
}

/// Float32 samples into one audio stream, re-chunked to the encoder's
/// frame size.
pub(crate) struct AudioEncoder {
    inner: StreamEncoder<ff::encoder::Audio>,
    converter: SampleConverter,
    layout: ff::ChannelLayout,
    rate: u32,
    /// Samples per encoded frame (0: any).
    frame_size: usize,
    /// Samples not encoded yet, one buffer per channel.
    pending: Vec<Vec<f32>>,
    next_pts: i64,
}

impl AudioEncoder {
    /// Opens `codec` for `channels` at `rate` Hz and adds its stream to
    /// `muxer` (before the header).
    pub(crate) fn open(muxer: &mut Muxer, codec: ff::Codec, rate: u32, channels: u32) -> Result<Self> {
        if rate == 0 || rate > i32::MAX as u32 || !(1..=64).contains(&channels) {
            return Err(muxer.bad(format!("cannot write {channels} channels at {rate} Hz")));
        }
        let format = codec
            .audio()
            .ok()
            .and_then(|a| a.formats().and_then(|mut f| f.next()))
            .ok_or_else(|| muxer.bad(format!("{:?} is not an audio encoder", codec.name())))?;
        let layout = ff::ChannelLayout::default(channels as i32);
        let time_base = ff::Rational::new(1, rate as i32);
        let bad_codec = |e: ff::Error| {
            muxer.bad(format!(
                "cannot open the {} encoder at {rate} Hz, {channels} channels: {e}",
                codec.name()
            ))
        };
        let mut audio = encoder_context(muxer, codec, time_base).audio().map_err(bad_codec)?;
        audio.set_rate(rate as i32);
        audio.set_channel_layout(layout);
        audio.set_format(format);
        let encoder = audio.open_with(ff::Dictionary::new()).map_err(bad_codec)?;
        let stream = muxer.add_stream(&encoder, codec, time_base, None)?;
        let inner = StreamEncoder {
            encoder,
            stream,
            time_base,
        };
        let converter = SampleConverter::from_f32(format, layout, rate)
            .map_err(|e| muxer.bad(format!("converting to {format:?}: {e}")))?;
        let frame_size = inner.encoder.frame_size() as usize;
        Ok(AudioEncoder {
            inner,
            converter,
            layout,
            rate,
            frame_size,
            pending: vec![Vec::new(); channels as usize], // bounded: channels <= 64
            next_pts: 0,
        })
    }

    /// Encodes (channels, samples) float32 samples, in order.
    pub(crate) fn write(&mut self, muxer: &mut Muxer, samples: ArrayView2<'_, f32>) -> Result<()> {
        if samples.nrows() != self.pending.len() {
            return Err(muxer.bad(format!(
                "{} channels given, the writer takes {}",
                samples.nrows(),
                self.pending.len()
            )));
        }
        for (buffer, channel) in self.pending.iter_mut().zip(samples.outer_iter()) {
            buffer.extend(channel.iter());
        }
        let step = if self.frame_size > 0 { self.frame_size } else { 4096 };
        while self.pending[0].len() >= step {
            self.encode(muxer, step)?;
        }
        Ok(())
    }

    /// Encodes what is left and flushes the encoder into the muxer.
    pub(crate) fn finish(&mut self, muxer: &mut Muxer) -> Result<()> {
        if !self.pending[0].is_empty() {
            self.encode(muxer, self.pending[0].len())?;
        }
        self.inner.encoder.send_eof().map_err(|e| muxer.failed("flushing", e))?;
        self.drain(muxer)
    }

    /// Encodes the first `n` pending samples of every channel.
    fn encode(&mut self, muxer: &mut Muxer, n: usize) -> Result<()> {
        let mut planar = ff::frame::Audio::new(
            ff::format::Sample::F32(ff::format::sample::Type::Planar),
            n,
            self.layout,
        );
        planar.set_rate(self.rate);
        for (c, buffer) in self.pending.iter_mut().enumerate() {
            planar.plane_mut::<f32>(c)[..n].copy_from_slice(&buffer[..n]);
            buffer.drain(..n);
        }
        let mut converted = ff::frame::Audio::empty();
        self.converter
            .run(&planar, &mut converted)
            .map_err(|e| muxer.failed("converting samples", e))?;
        converted.set_pts(Some(self.next_pts));
        self.next_pts += n as i64;
        self.inner
            .encoder
            .send_frame(&converted)
            .map_err(|e| muxer.failed("encoding", e))?;
        self.drain(muxer)
    }

    /// Writes every packet ready.
    fn drain(&mut self, muxer: &mut Muxer) -> Result<()> {
        let s = &mut self.inner;
        muxer.write_packets(&mut s.encoder, s.stream, s.time_base, 0)
    }
}

//! Writing video: (N, H, W, 3) RGB frames encoded (H.264 through libx264,
//! VP9, AV1 or MPEG-4, whichever the FFmpeg build has) and muxed into a
//! file whose container the extension names (MP4, MKV, WebM...). Frames
//! stream through: memory holds one chunk and the encoder's lookahead,
//! never the whole video.

use std::path::Path;

use ffmpeg_next as ff;
use ndarray::ArrayView4;

use crate::error::{Error, Result};
use crate::ffmpeg::scale::FrameScaler;
use crate::media::encode::write_packets;

/// How [`VideoWriter`] encodes. Every field has a default; setters chain.
///
/// ```
/// let config = spdl_io::video::WriterConfig::new(30, 1).with_codec("libvpx-vp9").with_option("crf", "30");
/// assert_eq!(config.codec, "libvpx-vp9");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterConfig {
    /// Frames per second, as `num / den`.
    pub fps: (i32, i32),
    /// FFmpeg's encoder name (default `libx264`; `libvpx-vp9`,
    /// `libaom-av1`, `mpeg4`...).
    pub codec: String,
    /// Encoded pixel format (default `yuv420p`, which every player reads).
    pub pix_fmt: String,
    /// Encoder options, as `ffmpeg -crf 23 -preset fast` takes them.
    pub options: Vec<(String, String)>,
}

impl WriterConfig {
    /// H.264 (libx264) in yuv420p at `num / den` frames per second.
    pub fn new(num: i32, den: i32) -> Self {
        WriterConfig {
            fps: (num, den),
            codec: "libx264".into(),
            pix_fmt: "yuv420p".into(),
            options: Vec::new(),
        }
    }
    /// Sets the encoder by FFmpeg's name.
    #[must_use]
    pub fn with_codec(mut self, codec: impl Into<String>) -> Self {
        self.codec = codec.into();
        self
    }
    /// Sets the encoded pixel format.
    #[must_use]
    pub fn with_pix_fmt(mut self, pix_fmt: impl Into<String>) -> Self {
        self.pix_fmt = pix_fmt.into();
        self
    }
    /// Adds an encoder option.
    #[must_use]
    pub fn with_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.push((key.into(), value.into()));
        self
    }
}

/// A video file being written: frames in, encoded and muxed as they come.
///
/// ```no_run
/// use spdl_io::video::{VideoWriter, WriterConfig};
/// let frames = ndarray::Array4::<u8>::zeros((30, 240, 320, 3));
/// let mut writer = VideoWriter::create("out.mp4", 320, 240, &WriterConfig::new(30, 1))?;
/// writer.write(frames.view())?;
/// writer.finish()?;
/// # Ok::<(), spdl_io::Error>(())
/// ```
pub struct VideoWriter {
    // Field order is drop order: the encoder before the container.
    encoder: ff::encoder::Video,
    scaler: FrameScaler,
    output: ff::format::context::Output,
    name: String,
    size: (u32, u32),
    encoder_tb: ff::Rational,
    frames: i64,
    finished: bool,
}

impl VideoWriter {
    /// Creates `path` for frames of `width` x `height`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an encoder this FFmpeg build lacks (the
    /// message names it), a pixel format it does not know, an odd size for
    /// a 4:2:0 format or a bad frame rate; [`Error::Io`] when the file
    /// cannot be created.
    pub fn create(path: impl AsRef<Path>, width: u32, height: u32, config: &WriterConfig) -> Result<Self> {
        crate::ffmpeg::init();
        let path = path.as_ref();
        let name = path.display().to_string();
        let bad = |reason: String| Error::InvalidConfig(format!("{name}: {reason}"));
        let (num, den) = config.fps;
        if num <= 0 || den <= 0 || width == 0 || height == 0 {
            return Err(bad(format!("cannot write {width}x{height} at {num}/{den} frames/s")));
        }
        let codec = ff::encoder::find_by_name(&config.codec).ok_or_else(|| {
            bad(format!(
                "this FFmpeg build has no {:?} encoder (`ffmpeg -encoders` lists those it has)",
                config.codec
            ))
        })?;
        let pix_fmt: ff::format::Pixel = config
            .pix_fmt
            .parse()
            .map_err(|_| bad(format!("unknown pixel format {:?}", config.pix_fmt)))?;
        let mut output = ff::format::output(&path).map_err(|e| bad(format!("cannot create the file: {e}")))?;
        let global_header = output.format().flags().contains(ff::format::Flags::GLOBAL_HEADER);
        let mut encoder = ff::codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(|e| bad(format!("{}: {e}", config.codec)))?;
        let encoder_tb = ff::Rational::new(den, num);
        encoder.set_width(width);
        encoder.set_height(height);
        encoder.set_format(pix_fmt);
        encoder.set_time_base(encoder_tb);
        encoder.set_frame_rate(Some(ff::Rational::new(num, den)));
        if global_header {
            encoder.set_flags(ff::codec::Flags::GLOBAL_HEADER);
        }
        let mut options = ff::Dictionary::new();
        for (k, v) in &config.options {
            options.set(k, v);
        }
        let encoder = encoder
            .open_with(options)
            .map_err(|e| bad(format!("cannot open the {} encoder: {e}", config.codec)))?;
        let mut stream = output.add_stream(codec).map_err(|e| bad(e.to_string()))?;
        stream.set_parameters(&encoder);
        stream.set_time_base(encoder_tb);
        stream.set_rate(ff::Rational::new(num, den));
        stream.set_avg_frame_rate(ff::Rational::new(num, den));
        output
            .write_header()
            .map_err(|e| bad(format!("cannot write the header: {e}")))?;
        let scaler = FrameScaler::new(ff::format::Pixel::RGB24, pix_fmt, width, height)
            .map_err(|e| bad(format!("cannot convert rgb24 to {}: {e}", config.pix_fmt)))?;
        Ok(VideoWriter {
            encoder,
            scaler,
            output,
            name,
            size: (width, height),
            encoder_tb,
            frames: 0,
            finished: false,
        })
    }

    /// Encodes (N, H, W, 3) RGB frames, in order.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for frames of another size or channel
    /// count; [`Error::Convert`] when encoding or writing fails.
    pub fn write(&mut self, frames: ArrayView4<'_, u8>) -> Result<()> {
        let (_, h, w, c) = frames.dim();
        if (w as u32, h as u32) != self.size || c != 3 || self.finished {
            return Err(Error::InvalidConfig(format!(
                "{}: frames are {w}x{h}x{c}, the writer takes {}x{}x3 RGB{}",
                self.name,
                self.size.0,
                self.size.1,
                if self.finished { " and is finished" } else { "" }
            )));
        }
        let mut rgb = ff::frame::Video::new(ff::format::Pixel::RGB24, self.size.0, self.size.1);
        let mut yuv = ff::frame::Video::empty();
        for frame in frames.outer_iter() {
            let frame = frame.as_standard_layout();
            let row = w * 3;
            let stride = rgb.stride(0);
            let data = rgb.data_mut(0);
            for (y, src) in frame.as_slice().unwrap_or_default().chunks_exact(row).enumerate() {
                data[y * stride..y * stride + row].copy_from_slice(src);
            }
            self.scaler
                .run(&rgb, &mut yuv)
                .map_err(|e| self.failed(format!("converting: {e}")))?;
            yuv.set_pts(Some(self.frames));
            self.frames += 1;
            self.encoder
                .send_frame(&yuv)
                .map_err(|e| self.failed(format!("encoding: {e}")))?;
            self.drain()?;
        }
        Ok(())
    }

    /// Flushes the encoder and writes the file's trailer. Dropping a
    /// writer without calling it leaves an unfinished file.
    ///
    /// # Errors
    /// [`Error::Convert`] when encoding or writing fails.
    pub fn finish(mut self) -> Result<()> {
        self.finished = true;
        self.encoder
            .send_eof()
            .map_err(|e| self.failed(format!("flushing: {e}")))?;
        self.drain()?;
        self.output
            .write_trailer()
            .map_err(|e| self.failed(format!("writing the trailer: {e}")))
    }

    /// Writes every packet the encoder has ready (one frame long each).
    fn drain(&mut self) -> Result<()> {
        write_packets(&mut self.encoder, &mut self.output, self.encoder_tb, 1)
            .map_err(|e| self.failed(format!("writing: {e}")))
    }

    fn failed(&self, reason: String) -> Error {
        Error::Convert {
            src: self.name.clone(),
            reason,
        }
    }
}

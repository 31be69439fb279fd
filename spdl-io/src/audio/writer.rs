//! Writing audio: (channels, samples) float32 arrays encoded and muxed
//! into the container the extension names (WAV as float32, FLAC, Opus,
//! AAC, MP3, or any FFmpeg encoder by name), streamed frame by frame.

use std::path::Path;

use ffmpeg_next as ff;
use ndarray::ArrayView2;

use crate::error::{Error, Result};
use crate::ffmpeg::resample::SampleConverter;
use crate::media::encode::write_packets;

/// The encoder a file's extension implies.
fn default_codec(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "wav" => "pcm_f32le",
        "flac" => "flac",
        "opus" | "ogg" => "libopus",
        "m4a" | "aac" => "aac",
        "mp3" => "libmp3lame",
        _ => return None,
    })
}

/// An audio file being written: samples in, encoded and muxed as they come.
///
/// ```no_run
/// let samples = ndarray::Array2::<f32>::zeros((2, 48_000));
/// let mut writer = spdl_io::audio::AudioWriter::create("out.flac", 48_000, 2, None)?;
/// writer.write(samples.view())?;
/// writer.finish()?;
/// # Ok::<(), spdl_io::Error>(())
/// ```
pub struct AudioWriter {
    // Field order is drop order: the encoder before the container.
    encoder: ff::encoder::Audio,
    converter: SampleConverter,
    output: ff::format::context::Output,
    name: String,
    layout: ff::ChannelLayout,
    rate: u32,
    /// Samples per encoded frame (0: any).
    frame_size: usize,
    /// Samples not encoded yet, one buffer per channel.
    pending: Vec<Vec<f32>>,
    next_pts: i64,
}

impl AudioWriter {
    /// Creates `path` for `channels` channels at `rate` Hz, encoded with
    /// `codec` (FFmpeg's encoder name) or the extension's default (WAV:
    /// float32 PCM, FLAC, Opus, AAC, MP3).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an encoder this FFmpeg build lacks (the
    /// message names it), an extension with no default, or a rate or
    /// channel count the encoder refuses.
    pub fn create(path: impl AsRef<Path>, rate: u32, channels: u32, codec: Option<&str>) -> Result<Self> {
        crate::ffmpeg::init();
        let path = path.as_ref();
        let name = path.display().to_string();
        let bad = |reason: String| Error::InvalidConfig(format!("{name}: {reason}"));
        if rate == 0 || !(1..=64).contains(&channels) {
            return Err(bad(format!("cannot write {channels} channels at {rate} Hz")));
        }
        let codec_name = codec
            .or_else(|| default_codec(path))
            .ok_or_else(|| bad("no encoder given and none known for this extension".into()))?;
        let codec = ff::encoder::find_by_name(codec_name)
            .ok_or_else(|| bad(format!("this FFmpeg build has no {codec_name:?} encoder")))?;
        let format = codec
            .audio()
            .ok()
            .and_then(|a| a.formats().and_then(|mut f| f.next()))
            .ok_or_else(|| bad(format!("{codec_name:?} is not an audio encoder")))?;
        let layout = ff::ChannelLayout::default(channels as i32);
        let mut output = ff::format::output(&path).map_err(|e| bad(format!("cannot create the file: {e}")))?;
        let global_header = output.format().flags().contains(ff::format::Flags::GLOBAL_HEADER);
        let mut encoder = ff::codec::context::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(|e| bad(format!("{codec_name}: {e}")))?;
        encoder.set_rate(rate as i32);
        encoder.set_channel_layout(layout);
        encoder.set_format(format);
        encoder.set_time_base(ff::Rational::new(1, rate as i32));
        if global_header {
            encoder.set_flags(ff::codec::Flags::GLOBAL_HEADER);
        }
        let encoder = encoder.open_with(ff::Dictionary::new()).map_err(|e| {
            bad(format!(
                "cannot open the {codec_name} encoder at {rate} Hz, {channels} channels: {e}"
            ))
        })?;
        let mut stream = output.add_stream(codec).map_err(|e| bad(e.to_string()))?;
        stream.set_parameters(&encoder);
        stream.set_time_base(ff::Rational::new(1, rate as i32));
        output
            .write_header()
            .map_err(|e| bad(format!("cannot write the header: {e}")))?;
        let converter = SampleConverter::from_f32(format, layout, rate)
            .map_err(|e| bad(format!("converting to {format:?}: {e}")))?;
        let frame_size = encoder.frame_size() as usize;
        Ok(AudioWriter {
            encoder,
            converter,
            output,
            name,
            layout,
            rate,
            frame_size,
            pending: vec![Vec::new(); channels as usize], // bounded: channels <= 64
            next_pts: 0,
        })
    }

    /// Encodes (channels, samples) float32 samples, in order.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for another channel count;
    /// [`Error::Convert`] when encoding or writing fails.
    pub fn write(&mut self, samples: ArrayView2<'_, f32>) -> Result<()> {
        if samples.nrows() != self.pending.len() {
            return Err(Error::InvalidConfig(format!(
                "{}: {} channels given, the writer takes {}",
                self.name,
                samples.nrows(),
                self.pending.len()
            )));
        }
        for (buffer, channel) in self.pending.iter_mut().zip(samples.outer_iter()) {
            buffer.extend(channel.iter());
        }
        let step = if self.frame_size > 0 { self.frame_size } else { 4096 };
        while self.pending[0].len() >= step {
            self.encode(step)?;
        }
        Ok(())
    }

    /// Encodes what is left, flushes the encoder and writes the trailer.
    ///
    /// # Errors
    /// [`Error::Convert`] when encoding or writing fails.
    pub fn finish(mut self) -> Result<()> {
        if !self.pending[0].is_empty() {
            self.encode(self.pending[0].len())?;
        }
        self.encoder
            .send_eof()
            .map_err(|e| self.failed(format!("flushing: {e}")))?;
        self.drain()?;
        self.output
            .write_trailer()
            .map_err(|e| self.failed(format!("writing the trailer: {e}")))
    }

    /// Encodes the first `n` pending samples of every channel.
    fn encode(&mut self, n: usize) -> Result<()> {
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
            .map_err(|e| self.failed(format!("converting samples: {e}")))?;
        converted.set_pts(Some(self.next_pts));
        self.next_pts += n as i64;
        self.encoder
            .send_frame(&converted)
            .map_err(|e| self.failed(format!("encoding: {e}")))?;
        self.drain()
    }

    /// Writes every packet the encoder has ready.
    fn drain(&mut self) -> Result<()> {
        let time_base = ff::Rational::new(1, self.rate as i32);
        write_packets(&mut self.encoder, &mut self.output, time_base, 0)
            .map_err(|e| self.failed(format!("writing: {e}")))
    }

    fn failed(&self, reason: String) -> Error {
        Error::Convert {
            src: self.name.clone(),
            reason,
        }
    }
}

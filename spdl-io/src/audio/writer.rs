//! Writing audio: (channels, samples) float32 arrays encoded and muxed
//! into the container the destination's extension names (WAV as float32,
//! FLAC, Opus, AAC, MP3, or any FFmpeg encoder by name), streamed frame by
//! frame to a file, to memory or to object storage.

use std::path::Path;

use ndarray::ArrayView2;

use crate::error::{Error, Result};
use crate::media::encode::{find_encoder, AudioEncoder, Muxer};
use crate::source::Destination;

/// The encoder a destination's extension implies.
fn default_codec(name: &str) -> Option<&'static str> {
    let ext = Path::new(name).extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "wav" => "pcm_f32le",
        "flac" => "flac",
        "opus" | "ogg" => "libopus",
        "m4a" | "aac" => "aac",
        "mp3" => "libmp3lame",
        _ => return None,
    })
}

/// An audio stream being written: samples in, encoded and muxed as they
/// come.
///
/// ```no_run
/// let samples = ndarray::Array2::<f32>::zeros((2, 48_000));
/// let mut writer = spdl_io::audio::AudioWriter::create("out.flac", 48_000, 2, None)?;
/// writer.write(samples.view())?;
/// writer.finish()?;
/// # Ok::<(), spdl_io::Error>(())
/// ```
pub struct AudioWriter {
    encoder: AudioEncoder,
    muxer: Muxer,
}

impl AudioWriter {
    /// Creates `dest` (a path, [`Destination::memory`], or an object URL)
    /// for `channels` channels at `rate` Hz, encoded with `codec` (FFmpeg's
    /// encoder name) or the extension's default (WAV: float32 PCM, FLAC,
    /// Opus, AAC, MP3).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](Error::InvalidConfig) for an encoder
    /// this FFmpeg build lacks (the message names it), an extension with
    /// no default, or a rate or channel count the encoder refuses;
    /// [`Error::Write`] when the destination cannot
    /// be created.
    pub fn create(dest: impl Into<Destination>, rate: u32, channels: u32, codec: Option<&str>) -> Result<Self> {
        crate::ffmpeg::init();
        let dest = dest.into();
        let name = dest.name();
        let codec_name = codec.or_else(|| default_codec(&name)).ok_or_else(|| {
            Error::InvalidConfig(format!("{name}: no encoder given and none known for this extension"))
        })?;
        let mut muxer = Muxer::create(&dest, None)?;
        let codec = find_encoder(&muxer, codec_name)?;
        let encoder = AudioEncoder::open(&mut muxer, codec, rate, channels)?;
        muxer.write_header(&[])?;
        Ok(AudioWriter { encoder, muxer })
    }

    /// Encodes (channels, samples) float32 samples, in order.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](Error::InvalidConfig) for another
    /// channel count; [`Error::Encode`] or
    /// [`Error::Write`] when encoding or writing fails.
    pub fn write(&mut self, samples: ArrayView2<'_, f32>) -> Result<()> {
        self.encoder.write(&mut self.muxer, samples)
    }

    /// Encodes what is left, flushes the encoder and writes the trailer.
    /// Returns the bytes for an in-memory destination.
    ///
    /// # Errors
    /// As [`AudioWriter::write`].
    pub fn finish(mut self) -> Result<Option<Vec<u8>>> {
        self.encoder.finish(&mut self.muxer)?;
        self.muxer.finish()
    }
}

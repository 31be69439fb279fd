//! How audio is loaded: stream, output rate and channels, time window,
//! channel order, backend and limits.

use crate::limits::Limits;

/// How samples are laid out in the output array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ChannelOrder {
    /// (channels, samples): one row per channel (default).
    #[default]
    ChannelsFirst,
    /// (samples, channels): interleaved.
    Interleaved,
}

/// Which decoder reads audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AudioBackend {
    /// The direct PCM reader for PCM WAV and symphonia for FLAC, which
    /// decode the same samples as FFmpeg faster, when no resampling,
    /// remixing or stream choice is asked for; FFmpeg for everything else
    /// (default).
    #[default]
    Auto,
    /// Always FFmpeg.
    Ffmpeg,
    /// Always symphonia (WAV, FLAC, MP3, AAC, Vorbis, ALAC); an error for
    /// what it cannot read and for resampling or remixing.
    Symphonia,
    /// The direct PCM WAV reader (u8, s16, s24, s32, f32, f64): one pass
    /// from the file into the output layout. Auto picks it for PCM WAV.
    Pcm,
}

/// How to load audio. Every field has a default; setters chain.
///
/// ```
/// let config = spdl_io::AudioConfig::default().with_sample_rate(16_000).with_channels(1).with_window(1.0, 3.5);
/// assert_eq!(config.sample_rate, Some(16_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct AudioConfig {
    /// The stream to decode; `None` picks FFmpeg's best audio stream.
    pub stream: Option<usize>,
    /// Resample to this rate (Hz); `None` keeps the source rate.
    pub sample_rate: Option<u32>,
    /// Down/upmix to this many channels; `None` keeps the source's.
    pub channels: Option<u32>,
    /// Window start in seconds (stream time).
    pub start: Option<f64>,
    /// Window end in seconds, exclusive.
    pub end: Option<f64>,
    /// Output layout (default channels-first).
    pub order: ChannelOrder,
    /// Safety limits; `max_frames` bounds the samples per channel (default
    /// [`AUDIO_MAX_SAMPLES`]).
    pub limits: Limits,
    /// The decoder for whole-file loads (streaming always uses FFmpeg).
    pub backend: AudioBackend,
}

/// Default limit of samples per channel: two hours at 48 kHz.
pub const AUDIO_MAX_SAMPLES: u64 = 48_000 * 60 * 60 * 2;

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            stream: None,
            sample_rate: None,
            channels: None,
            start: None,
            end: None,
            order: ChannelOrder::ChannelsFirst,
            limits: Limits::default().with_max_frames(AUDIO_MAX_SAMPLES),
            backend: AudioBackend::Auto,
        }
    }
}

impl AudioConfig {
    /// Resamples to `rate` Hz.
    #[must_use]
    pub fn with_sample_rate(mut self, rate: u32) -> Self {
        self.sample_rate = Some(rate);
        self
    }
    /// Down/upmixes to `channels`.
    #[must_use]
    pub fn with_channels(mut self, channels: u32) -> Self {
        self.channels = Some(channels);
        self
    }
    /// Keeps samples in `[start, end)` seconds.
    #[must_use]
    pub fn with_window(mut self, start: f64, end: f64) -> Self {
        self.start = Some(start);
        self.end = Some(end);
        self
    }
    /// Sets the output layout.
    #[must_use]
    pub fn with_order(mut self, order: ChannelOrder) -> Self {
        self.order = order;
        self
    }
    /// Decodes stream `index`.
    #[must_use]
    pub fn with_stream(mut self, index: usize) -> Self {
        self.stream = Some(index);
        self
    }
    /// Sets the safety limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    /// Picks the decoder.
    #[must_use]
    pub fn with_backend(mut self, backend: AudioBackend) -> Self {
        self.backend = backend;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_limit_allows_hours_of_audio() {
        let limit = AudioConfig::default().limits.max_frames;
        assert_eq!(limit, AUDIO_MAX_SAMPLES);
        assert!(limit >= 48_000 * 3600);
    }
}

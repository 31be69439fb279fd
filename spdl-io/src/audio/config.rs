//! How audio is loaded: stream, output rate and channels, time window,
//! channel order, backend and limits.

use crate::choice;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::media::time::check_window;

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

impl std::str::FromStr for ChannelOrder {
    type Err = Error;
    /// `channels_first` or `interleaved`.
    fn from_str(s: &str) -> Result<Self> {
        use ChannelOrder::*;
        choice::parse(
            "channel order",
            s,
            &[("channels_first", ChannelsFirst), ("interleaved", Interleaved)],
        )
    }
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

impl std::str::FromStr for AudioBackend {
    type Err = Error;
    /// `auto`, `ffmpeg`, `symphonia` or `pcm`.
    fn from_str(s: &str) -> Result<Self> {
        use AudioBackend::*;
        let names = [
            ("auto", Auto),
            ("ffmpeg", Ffmpeg),
            ("symphonia", Symphonia),
            ("pcm", Pcm),
        ];
        choice::parse("audio backend", s, &names)
    }
}

/// How to load audio. Every field has a default; setters chain.
///
/// ```
/// let config = spdl_io::AudioConfig::default().with_sample_rate(16_000).with_channels(1).with_window(1.0, 3.5);
/// assert_eq!(config.sample_rate, Some(16_000));
/// ```
#[derive(Debug, Clone, PartialEq)]
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
    /// An FFmpeg audio filter chain (as `ffmpeg -af` takes it: volume,
    /// highpass, atempo, aresample...) applied to decoded samples before
    /// the conversion to float32 (FFmpeg backend). Its output rate and
    /// channels are the output's unless `sample_rate`/`channels` are set.
    pub filter: Option<String>,
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
            filter: None,
        }
    }
}

impl AudioConfig {
    /// Checks the settings that do not depend on a source: the time window
    /// (finite, start before end), the output rate (1000..=768000 Hz:
    /// below 1 kHz swresample gives short or no output) and
    /// channel count (1..=64). Every load calls it; front ends call it to
    /// refuse a config when it is made.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the value.
    pub fn validate(&self) -> Result<()> {
        check_window(self.start, self.end)?;
        if self.sample_rate.is_some_and(|r| !(1000..=768_000).contains(&r))
            || self.channels.is_some_and(|c| !(1..=64).contains(&c))
        {
            let or_source = |v: Option<u32>| v.map_or("the source's".to_string(), |v| v.to_string());
            return Err(Error::InvalidConfig(format!(
                "cannot output {} channels at {} Hz (sample_rate must be 1000..=768000, channels 1..=64)",
                or_source(self.channels),
                or_source(self.sample_rate)
            )));
        }
        Ok(())
    }

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
    /// Applies an FFmpeg audio filter chain (see [`AudioConfig::filter`]).
    ///
    /// ```
    /// let config = spdl_io::AudioConfig::default().with_filter("volume=0.5,highpass=f=200");
    /// assert!(config.filter.is_some());
    /// ```
    #[must_use]
    pub fn with_filter(mut self, desc: impl Into<String>) -> Self {
        self.filter = Some(desc.into());
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

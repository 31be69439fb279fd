//! The output of an audio load: samples in the requested order and type,
//! and the shaping of decoded samples into it.

use ndarray::Array2;

use super::config::ChannelOrder;
use crate::error::{Error, Result};
use crate::ffmpeg::resample::default_layout_name;

/// Decoded audio.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AudioBuffer<T = f32> {
    /// Samples, (channels, samples) or (samples, channels) per
    /// [`AudioConfig::order`].
    pub samples: Array2<T>,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channel layout name (FFmpeg's, e.g. `stereo`, `5.1`).
    pub channel_layout: String,
    /// Time of the first sample in seconds (stream time).
    pub start: f64,
    /// Which decoder produced the samples.
    pub backend: &'static str,
}

/// A sample type of the output: `f32` or `i16`.
pub trait AudioSample: Copy + Default + Send + 'static {
    /// From a float sample, as FFmpeg converts `flt` to this format.
    fn from_f32(v: f32) -> Self;

    /// A whole buffer converted (f32 keeps the buffer itself: no copy).
    fn from_f32_vec(v: Vec<f32>) -> Vec<Self> {
        v.into_iter().map(Self::from_f32).collect()
    }
}

impl AudioSample for f32 {
    fn from_f32(v: f32) -> Self {
        v
    }

    fn from_f32_vec(v: Vec<f32>) -> Vec<f32> {
        v
    }
}

impl AudioSample for i16 {
    /// `av_clip_int16(lrintf(v * 32768))`, as swresample does.
    fn from_f32(v: f32) -> Self {
        (v * 32768.0).round_ties_even().clamp(-32768.0, 32767.0) as i16
    }
}

/// Interleaved samples and what they are.
pub(super) struct Decoded {
    pub(super) interleaved: Vec<f32>,
    pub(super) rate: u32,
    pub(super) channels: u32,
    /// Time of the first sample, in seconds.
    pub(super) start: f64,
    /// Whether the samples are channels-first already (else interleaved).
    pub(super) planar: bool,
    pub(super) backend: &'static str,
}

/// Shapes decoded samples as the config asks and converts the type.
pub(super) fn to_buffer<T: AudioSample>(src: &str, d: Decoded, order: ChannelOrder) -> Result<AudioBuffer<T>> {
    let ch = d.channels as usize;
    let n = d.interleaved.len() / ch;
    let data: Vec<T> = T::from_f32_vec(d.interleaved);
    let shape = if d.planar { (ch, n) } else { (n, ch) };
    let array = Array2::from_shape_vec(shape, data).map_err(|e| Error::Convert {
        src: src.into(),
        reason: e.to_string(),
    })?;
    let samples = match (order == ChannelOrder::ChannelsFirst) == d.planar {
        true => array,
        false => array.reversed_axes().as_standard_layout().into_owned(),
    };
    Ok(AudioBuffer {
        samples,
        sample_rate: d.rate,
        channel_layout: default_layout_name(d.channels),
        start: d.start,
        backend: d.backend,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i16_conversion_rounds_and_clips_like_swresample() {
        assert_eq!(i16::from_f32(0.5), 16384);
        assert_eq!(i16::from_f32(1.0), 32767);
        assert_eq!(i16::from_f32(-1.0), -32768);
        assert_eq!(i16::from_f32(-2.0), -32768);
        assert_eq!(i16::from_f32(1.5 / 32768.0), 2); // ties to even
    }
}

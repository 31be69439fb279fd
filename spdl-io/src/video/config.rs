//! How a video is loaded: stream, decoder threads, output pixel format,
//! size, crop, rotation, time window, frame rate and limits.

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::media::convert::{ConvertConfig, Crop, Interpolation, PixelFormat};
use crate::media::decode::DecoderConfig;
use crate::media::time::{check_window, Ratio};

/// How to load a video. Every field has a default; setters chain.
///
/// ```
/// use spdl_io::{PixelFormat, VideoConfig};
/// let config = VideoConfig::default()
///     .with_size(224, 224)
///     .with_pix_fmt(PixelFormat::Rgb24)
///     .with_window(1.0, 3.0)
///     .with_threads(2);
/// assert_eq!(config.convert.width, Some(224));
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct VideoConfig {
    /// The stream to decode; `None` picks FFmpeg's best video stream.
    pub stream: Option<usize>,
    /// Decoder threads and corrupt-packet budget.
    pub decoder: DecoderConfig,
    /// Output pixel format, size, crop and rotation.
    pub convert: ConvertConfig,
    /// Start of the time window in seconds (stream time, as ffprobe shows).
    pub start: Option<f64>,
    /// End of the time window in seconds, exclusive.
    pub end: Option<f64>,
    /// Output frame rate: frames are repeated or dropped as FFmpeg's `fps`
    /// filter does (pts rounded to the nearest tick). `None` keeps every
    /// decoded frame.
    pub frame_rate: Option<Ratio>,
    /// An FFmpeg filter chain (as `ffmpeg -vf` takes it) applied to the
    /// decoded frames before conversion ([`load_video`](super::load_video)
    /// and [`stream_video`](super::stream_video) only): its output size
    /// and timing decide the frames' shape and pts; the output pixel format
    /// is still [`ConvertConfig::pix_fmt`].
    pub filter: Option<String>,
    /// How frames are found by index or time ([`VideoReader`] and
    /// [`sample_frames`]); whole-clip loads ignore it.
    ///
    /// [`VideoReader`]: super::VideoReader
    /// [`sample_frames`]: super::sample_frames
    pub seek_mode: SeekMode,
    /// Safety limits.
    pub limits: Limits,
}

impl VideoConfig {
    /// Checks the settings that do not depend on a source: the time window
    /// (finite, start before end) and the frame rate (positive, at most
    /// [`MAX_FRAME_RATE`]). Every load calls it; front ends call it to
    /// refuse a config when it is made.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the value.
    pub fn validate(&self) -> Result<()> {
        check_window(self.start, self.end)?;
        if self.filter.is_some() && self.frame_rate.is_some() {
            return Err(Error::InvalidConfig(
                "a filter chain and a frame rate do not combine: add fps=N to the filter instead".into(),
            ));
        }
        match self.frame_rate {
            Some(r) if r.num <= 0 || r.den <= 0 || i64::from(r.num) > MAX_FRAME_RATE * i64::from(r.den) => {
                Err(Error::InvalidConfig(format!(
                    "frame rate {r} must be positive and at most {MAX_FRAME_RATE} frames/s"
                )))
            }
            _ => Ok(()),
        }
    }

    /// Decodes stream `index` instead of the best video stream.
    #[must_use]
    pub fn with_stream(mut self, index: usize) -> Self {
        self.stream = Some(index);
        self
    }
    /// Sets the decoder's thread count (see [`DecoderConfig::threads`]).
    #[must_use]
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.decoder.threads = threads;
        self
    }
    /// Sets the decoder settings.
    #[must_use]
    pub fn with_decoder(mut self, decoder: DecoderConfig) -> Self {
        self.decoder = decoder;
        self
    }
    /// Sets the output pixel format.
    #[must_use]
    pub fn with_pix_fmt(mut self, pix_fmt: PixelFormat) -> Self {
        self.convert.pix_fmt = pix_fmt;
        self
    }
    /// Resizes every frame to `width` x `height`.
    #[must_use]
    pub fn with_size(mut self, width: u32, height: u32) -> Self {
        self.convert.width = Some(width);
        self.convert.height = Some(height);
        self
    }
    /// Sets the resampling filter used for resizing.
    #[must_use]
    pub fn with_interpolation(mut self, interpolation: Interpolation) -> Self {
        self.convert.interpolation = interpolation;
        self
    }
    /// Crops every frame (in decoded-frame coordinates) before resizing.
    #[must_use]
    pub fn with_crop(mut self, crop: Crop) -> Self {
        self.convert.crop = Some(crop);
        self
    }
    /// Whether to apply the stream's display matrix (default: yes), as the
    /// `ffmpeg` CLI's autorotation does: right-angle rotations, with the
    /// horizontal or vertical mirror or transpose the matrix adds. Other
    /// angles are not applied.
    #[must_use]
    pub fn with_rotation(mut self, apply: bool) -> Self {
        self.convert.ignore_rotation = !apply;
        self
    }
    /// Keeps only frames with `start <= pts < end` (seconds).
    #[must_use]
    pub fn with_window(mut self, start: f64, end: f64) -> Self {
        self.start = Some(start);
        self.end = Some(end);
        self
    }
    /// Resamples to `num / den` frames per second (at most
    /// [`MAX_FRAME_RATE`]).
    #[must_use]
    pub fn with_frame_rate(mut self, num: i32, den: i32) -> Self {
        self.frame_rate = Some(Ratio { num, den });
        self
    }
    /// Applies an FFmpeg filter chain to decoded frames (crop, pad, hflip,
    /// eq, fps, ...): the escape hatch when the typed options do not cover
    /// a need; the typed options are faster where they do. The stream's
    /// rotation, if any, is applied first, inside the graph, so the chain
    /// sees frames as displayed (as the `ffmpeg` CLI's `-vf` does).
    ///
    /// ```
    /// let config = spdl_io::VideoConfig::default().with_filter("hflip,crop=100:80:10:20");
    /// assert_eq!(config.filter.as_deref(), Some("hflip,crop=100:80:10:20"));
    /// ```
    #[must_use]
    pub fn with_filter(mut self, desc: impl Into<String>) -> Self {
        self.filter = Some(desc.into());
        self
    }
    /// Sets how frames are found by index or time.
    #[must_use]
    pub fn with_seek_mode(mut self, mode: SeekMode) -> Self {
        self.seek_mode = mode;
        self
    }
    /// Sets the safety limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

/// How frames are found in a stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeekMode {
    /// Frame `i` is the `i`-th frame the decoder shows, as [`load_video`]
    /// returns them: the index comes from the sample table (MP4/MOV) or
    /// from reading every packet, and frames before the first keyframe
    /// that the decoder cannot show are accounted for.
    ///
    /// [`load_video`]: crate::video::load_video
    #[default]
    Exact,
    /// Trusts the header where no sample table exists: frame `i` is the
    /// first frame shown at or after `start + (i - 1/2) / fps`, and the
    /// frame count is the header's (or duration x fps). No packet is read
    /// to build it, but a variable frame rate, a header that lies or
    /// undecodable leading frames make frame `i` differ from
    /// [`SeekMode::Exact`]'s. With a sample table both modes agree.
    Approximate,
}

impl std::str::FromStr for SeekMode {
    type Err = Error;
    /// `"exact"` or `"approximate"`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "exact" => Ok(SeekMode::Exact),
            "approximate" => Ok(SeekMode::Approximate),
            _ => Err(Error::InvalidConfig(format!(
                "unknown seek mode {s:?}: expected \"exact\" or \"approximate\""
            ))),
        }
    }
}

/// The highest output frame rate: more is a mistake (a stream at 10^9
/// frames/s from a 2 s clip never ended).
pub const MAX_FRAME_RATE: i64 = 10_000;

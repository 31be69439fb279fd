//! Safety limits checked before memory is allocated from header values.

use crate::error::{Error, Result};

/// Upper bounds that protect against forged headers and decompression bombs.
///
/// Every value is checked before the corresponding allocation; going over
/// one returns [`Error::Limit`] naming the source.
///
/// ```
/// let limits = spdl_io::Limits::default().with_max_frames(10_000);
/// assert_eq!(limits.max_frames, 10_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest frame, in pixels (width x height) of the decoded stream.
    /// Default: 8192 x 8192 (67 M pixels).
    pub max_pixels: u64,
    /// Most frames one call may return. Default: 100 000.
    pub max_frames: u64,
    /// Largest output buffer, in bytes. Default: 16 GiB.
    pub max_output_bytes: u64,
    /// Largest input (file or buffer), in bytes. Default: 64 GiB.
    pub max_input_bytes: u64,
    /// Whether inputs are trusted. Default `false`: only the containers a
    /// media dataset holds are demuxed (MP4/MOV, Matroska/WebM, AVI,
    /// MPEG-TS/PS, Ogg, FLV, ..., raw audio and video streams, images), so
    /// a file cannot make FFmpeg read anything but itself: playlists (HLS,
    /// DASH, concat), text-as-video, device and pattern demuxers are
    /// refused, naming the format. `true` demuxes any container FFmpeg has,
    /// and lets a local HLS playlist open the local files it names (never
    /// a network URL).
    pub trusted_input: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pixels: 8192 * 8192,
            max_frames: 100_000,
            max_output_bytes: 16 << 30,
            max_input_bytes: 64 << 30,
            trusted_input: false,
        }
    }
}

impl Limits {
    /// Sets [`Limits::max_pixels`].
    #[must_use]
    pub fn with_max_pixels(mut self, v: u64) -> Self {
        self.max_pixels = v;
        self
    }
    /// Sets [`Limits::max_frames`].
    #[must_use]
    pub fn with_max_frames(mut self, v: u64) -> Self {
        self.max_frames = v;
        self
    }
    /// Sets [`Limits::max_output_bytes`].
    #[must_use]
    pub fn with_max_output_bytes(mut self, v: u64) -> Self {
        self.max_output_bytes = v;
        self
    }
    /// Sets [`Limits::max_input_bytes`].
    #[must_use]
    pub fn with_max_input_bytes(mut self, v: u64) -> Self {
        self.max_input_bytes = v;
        self
    }

    /// Sets [`Limits::trusted_input`].
    #[must_use]
    pub fn with_trusted_input(mut self, v: bool) -> Self {
        self.trusted_input = v;
        self
    }

    /// Checks `value` against `limit`, naming `what` and `src` on failure.
    pub(crate) fn check(src: &str, what: &'static str, value: u64, limit: u64) -> Result<()> {
        if value > limit {
            return Err(Error::Limit {
                src: src.to_string(),
                what,
                value,
                limit,
            });
        }
        Ok(())
    }
}

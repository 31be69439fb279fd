//! How an image is loaded: output pixel format, size and fit, crop,
//! interpolation, orientation, DCT scaling and limits.

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::media::convert::{Crop, Interpolation, PixelFormat};

use super::resize::Fit;

/// How to load an image. Every field has a default; setters chain.
///
/// EXIF orientation is applied by default (as OpenCV does; Pillow needs
/// `ImageOps.exif_transpose`); `with_orientation(false)` keeps stored pixels.
///
/// ```
/// use spdl_io::{Fit, ImageConfig, PixelFormat};
/// let config = ImageConfig::default().with_size(224, 224).with_fit(Fit::Cover);
/// assert_eq!(config.pix_fmt, PixelFormat::Rgb24);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ImageConfig {
    /// Output pixel format: rgb24 (default), bgr24, rgba or gray8.
    pub pix_fmt: PixelFormat,
    /// Output width (with `height`; one alone keeps the aspect ratio).
    pub width: Option<u32>,
    /// Output height.
    pub height: Option<u32>,
    /// How a resize treats the aspect ratio (default: stretch).
    pub fit: Fit,
    /// Resampling filter (default bilinear; antialiased when downscaling).
    pub interpolation: Interpolation,
    /// Crop in displayed (oriented) coordinates, applied before resizing.
    pub crop: Option<Crop>,
    /// Keep stored pixels, ignoring EXIF orientation (default: applied).
    pub ignore_orientation: bool,
    /// Let JPEG decoding downscale by 1/2, 1/4 or 1/8 in the DCT domain
    /// when the target is at most that size (default: on). The final
    /// resize then starts from the smaller image.
    pub dct_scaling: bool,
    /// Safety limits (pixels per image and input bytes are checked from the
    /// header before allocating).
    pub limits: Limits,
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            pix_fmt: PixelFormat::Rgb24,
            width: None,
            height: None,
            fit: Fit::Stretch,
            interpolation: Interpolation::Bilinear,
            crop: None,
            ignore_orientation: false,
            dct_scaling: true,
            limits: Limits::default().with_max_pixels(IMAGE_MAX_PIXELS),
        }
    }
}

/// Default pixel limit for images: Pillow's decompression-bomb error
/// threshold (2 x 89 478 485 pixels).
pub const IMAGE_MAX_PIXELS: u64 = 2 * 89_478_485;

impl ImageConfig {
    /// Checks the settings that do not depend on a source: an output size
    /// of 1..=65536 on each side given, and an image output format (not a
    /// planar YUV one). Every load calls it; front ends call it to refuse
    /// a config when it is made.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the value.
    pub fn validate(&self) -> Result<()> {
        let side = |v: Option<u32>| v.is_none_or(|v| (1..=1 << 16).contains(&v));
        if !side(self.width) || !side(self.height) {
            let show = |v: Option<u32>| v.map_or("auto".to_string(), |v| v.to_string());
            return Err(Error::InvalidConfig(format!(
                "size must be 1..=65536 on each side, not {}x{}",
                show(self.width),
                show(self.height)
            )));
        }
        match self.pix_fmt.packed_channels() {
            Some(_) => Ok(()),
            None => Err(Error::InvalidConfig(format!(
                "{} is not an image output format",
                self.pix_fmt.name()
            ))),
        }
    }

    /// Sets the output pixel format.
    #[must_use]
    pub fn with_pix_fmt(mut self, pix_fmt: PixelFormat) -> Self {
        self.pix_fmt = pix_fmt;
        self
    }
    /// Resizes to `width` x `height`.
    #[must_use]
    pub fn with_size(mut self, width: u32, height: u32) -> Self {
        self.width = Some(width);
        self.height = Some(height);
        self
    }
    /// Sets the aspect-ratio policy of a resize.
    #[must_use]
    pub fn with_fit(mut self, fit: Fit) -> Self {
        self.fit = fit;
        self
    }
    /// Sets the resampling filter.
    #[must_use]
    pub fn with_interpolation(mut self, interpolation: Interpolation) -> Self {
        self.interpolation = interpolation;
        self
    }
    /// Crops (displayed coordinates) before resizing.
    #[must_use]
    pub fn with_crop(mut self, crop: Crop) -> Self {
        self.crop = Some(crop);
        self
    }
    /// Whether to apply EXIF orientation (default: yes).
    #[must_use]
    pub fn with_orientation(mut self, apply: bool) -> Self {
        self.ignore_orientation = !apply;
        self
    }
    /// Whether JPEG may be downscaled in the DCT domain (default: yes).
    #[must_use]
    pub fn with_dct_scaling(mut self, on: bool) -> Self {
        self.dct_scaling = on;
        self
    }
    /// Sets the safety limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

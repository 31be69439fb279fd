//! Image geometry and resampling: where the crop and fit policy put the
//! source region, and a SIMD resize (`fast_image_resize`, Pillow-style
//! convolution, antialiased when downscaling) of that region into the
//! output.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::pixels::Sample;
use crate::choice;
use crate::error::{Error, Result};
use crate::media::convert::{Crop, Interpolation};
use crate::orientation::Orientation;

/// How a resize to W x H treats the source's aspect ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Fit {
    /// Stretch the whole image to W x H.
    #[default]
    Stretch,
    /// Keep the aspect ratio: scale to cover W x H and crop the centre
    /// (torchvision's `Resize` + `CenterCrop`).
    Cover,
}

impl std::str::FromStr for Fit {
    type Err = Error;
    /// `stretch` or `cover`.
    fn from_str(s: &str) -> Result<Self> {
        choice::parse("fit", s, &[("stretch", Fit::Stretch), ("cover", Fit::Cover)])
    }
}

/// A rectangle in floating-point pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub(crate) fn full(w: usize, h: usize) -> Rect {
        Rect {
            x: 0.0,
            y: 0.0,
            w: w as f64,
            h: h as f64,
        }
    }

    pub(crate) fn from_crop(c: Crop) -> Rect {
        Rect {
            x: f64::from(c.left),
            y: f64::from(c.top),
            w: f64::from(c.width),
            h: f64::from(c.height),
        }
    }

    /// The centred sub-rectangle with aspect ratio `tw / th`.
    pub(crate) fn cover(self, tw: u32, th: u32) -> Rect {
        let aspect = f64::from(tw) / f64::from(th);
        if self.w / self.h > aspect {
            let w = self.h * aspect;
            Rect {
                x: self.x + (self.w - w) / 2.0,
                w,
                ..self
            }
        } else {
            let h = self.w / aspect;
            Rect {
                y: self.y + (self.h - h) / 2.0,
                h,
                ..self
            }
        }
    }

    /// This rectangle of the displayed image, in the coordinates of the
    /// stored `w` x `h` image that `o` displays.
    pub(crate) fn to_stored(self, o: Orientation, w: f64, h: f64) -> Rect {
        let Rect { x, y, w: cw, h: ch } = self;
        let (sx, sy, sw, sh) = match o {
            Orientation::Normal => (x, y, cw, ch),
            Orientation::FlipHorizontal => (w - x - cw, y, cw, ch),
            Orientation::Rotate180 => (w - x - cw, h - y - ch, cw, ch),
            Orientation::FlipVertical => (x, h - y - ch, cw, ch),
            Orientation::Transpose => (y, x, ch, cw),
            Orientation::Rotate90 => (y, h - x - cw, ch, cw),
            Orientation::Transverse => (w - y - ch, h - x - cw, ch, cw),
            Orientation::Rotate270 => (w - y - ch, x, ch, cw),
        };
        Rect {
            x: sx,
            y: sy,
            w: sw,
            h: sh,
        }
    }

    pub(crate) fn scaled(self, f: f64) -> Rect {
        Rect {
            x: self.x * f,
            y: self.y * f,
            w: self.w * f,
            h: self.h * f,
        }
    }
}

fn pixel_type<T: Sample>(channels: usize) -> Option<PixelType> {
    let wide = std::mem::size_of::<T>() == 2;
    Some(match (channels, wide) {
        (1, false) => PixelType::U8,
        (3, false) => PixelType::U8x3,
        (4, false) => PixelType::U8x4,
        (1, true) => PixelType::U16,
        (3, true) => PixelType::U16x3,
        (4, true) => PixelType::U16x4,
        _ => return None,
    })
}

fn algorithm(i: Interpolation) -> ResizeAlg {
    match i {
        Interpolation::Bilinear => ResizeAlg::Convolution(FilterType::Bilinear),
        Interpolation::Bicubic => ResizeAlg::Convolution(FilterType::CatmullRom),
        Interpolation::Area => ResizeAlg::Convolution(FilterType::Box),
        Interpolation::Nearest => ResizeAlg::Nearest,
        Interpolation::Lanczos => ResizeAlg::Convolution(FilterType::Lanczos3),
    }
}

/// Resamples the `region` of a `sw` x `sh` image into a `dw` x `dh`
/// destination (same channel count).
#[allow(clippy::too_many_arguments)]
pub(crate) fn resize<T: Sample>(
    src: &[T],
    (sw, sh): (usize, usize),
    region: Rect,
    dst: &mut [T],
    (dw, dh): (usize, usize),
    channels: usize,
    interpolation: Interpolation,
) -> Result<(), String> {
    let pt = pixel_type::<T>(channels).ok_or_else(|| format!("cannot resize {channels}-channel images"))?;
    let src = ImageRef::new(sw as u32, sh as u32, bytemuck::cast_slice(src), pt).map_err(|e| e.to_string())?;
    let mut dst =
        Image::from_slice_u8(dw as u32, dh as u32, bytemuck::cast_slice_mut(dst), pt).map_err(|e| e.to_string())?;
    let options = ResizeOptions::new()
        .resize_alg(algorithm(interpolation))
        .crop(region.x, region.y, region.w, region.h);
    RESIZER.with(|r| {
        r.borrow_mut()
            .resize(&src, &mut dst, &options)
            .map_err(|e| e.to_string())
    })
}

thread_local! {
    /// One resizer per thread keeps its scratch buffers between images.
    static RESIZER: std::cell::RefCell<Resizer> = std::cell::RefCell::new(Resizer::new());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cover_keeps_the_centre_at_the_target_aspect() {
        let r = Rect::full(400, 200).cover(100, 100);
        assert_eq!(
            r,
            Rect {
                x: 100.0,
                y: 0.0,
                w: 200.0,
                h: 200.0
            }
        );
        let r = Rect::full(200, 400).cover(200, 100);
        assert_eq!(
            r,
            Rect {
                x: 0.0,
                y: 150.0,
                w: 200.0,
                h: 100.0
            }
        );
    }

    #[test]
    fn displayed_rect_maps_back_to_stored_pixels() {
        // Stored 4x2; Rotate90 displays it as 2 wide, 4 tall. The displayed
        // top row (y=0, height 1) is the stored left column, read bottom-up.
        let top_row = Rect {
            x: 0.0,
            y: 0.0,
            w: 2.0,
            h: 1.0,
        };
        assert_eq!(
            top_row.to_stored(Orientation::Rotate90, 4.0, 2.0),
            Rect {
                x: 0.0,
                y: 0.0,
                w: 1.0,
                h: 2.0
            }
        );
        let right_col = Rect {
            x: 1.0,
            y: 0.0,
            w: 1.0,
            h: 4.0,
        };
        assert_eq!(
            right_col.to_stored(Orientation::Rotate90, 4.0, 2.0),
            Rect {
                x: 0.0,
                y: 0.0,
                w: 4.0,
                h: 1.0
            }
        );
        let full = Rect::full(2, 4);
        for o in 1..=8 {
            let o = Orientation::from_exif(o);
            let (w, h) = if o.swaps_axes() { (4.0, 2.0) } else { (2.0, 4.0) };
            let s = full.to_stored(o, w, h);
            assert_eq!((s.x, s.y, s.w, s.h), (0.0, 0.0, w, h), "{o:?}");
        }
    }

    #[test]
    fn resize_of_a_flat_image_stays_flat() {
        let src = vec![200u8; 40 * 30 * 3];
        let mut dst = vec![0u8; 7 * 5 * 3];
        resize(
            &src,
            (40, 30),
            Rect::full(40, 30),
            &mut dst,
            (7, 5),
            3,
            Interpolation::Bilinear,
        )
        .unwrap();
        assert!(dst.iter().all(|&v| v == 200));
    }
}

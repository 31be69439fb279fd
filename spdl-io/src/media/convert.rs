//! Conversion of decoded frames: pixel format, colour matrix and range,
//! crop, resize and rotation, written straight into the output buffer.

use std::str::FromStr;

use ff::ffi;
use ffmpeg_next as ff;

use super::decode::Frame;
use crate::choice;
use crate::error::{Error, Result};
use crate::ffmpeg::scale::{self, PlaneLayout, Scaler, ScalerKey};
use crate::orientation::{orient, Orientation};

/// Output pixel format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PixelFormat {
    /// Packed RGB, 3 bytes per pixel: shape (H, W, 3).
    #[default]
    Rgb24,
    /// Packed BGR, 3 bytes per pixel (OpenCV order): shape (H, W, 3).
    Bgr24,
    /// Packed RGBA with opaque alpha: shape (H, W, 4).
    Rgba,
    /// Luma only, full range: shape (H, W, 1).
    Gray8,
    /// Planar YUV 4:2:0 (I420). Planes stacked as rows: shape (H * 3 / 2, W, 1),
    /// Y then U then V; needs even output width and height.
    Yuv420p,
    /// Planar YUV 4:4:4. Planes stacked as rows: shape (H * 3, W, 1).
    Yuv444p,
}

impl PixelFormat {
    fn av(self) -> ff::format::Pixel {
        use ff::format::Pixel;
        match self {
            PixelFormat::Rgb24 => Pixel::RGB24,
            PixelFormat::Bgr24 => Pixel::BGR24,
            PixelFormat::Rgba => Pixel::RGBA,
            PixelFormat::Gray8 => Pixel::GRAY8,
            PixelFormat::Yuv420p => Pixel::YUV420P,
            PixelFormat::Yuv444p => Pixel::YUV444P,
        }
    }

    /// The format's name as FFmpeg spells it.
    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::Rgb24 => "rgb24",
            PixelFormat::Bgr24 => "bgr24",
            PixelFormat::Rgba => "rgba",
            PixelFormat::Gray8 => "gray8",
            PixelFormat::Yuv420p => "yuv420p",
            PixelFormat::Yuv444p => "yuv444p",
        }
    }

    /// Channels per pixel of a packed format (rgb24 and bgr24 3, rgba 4,
    /// gray8 1); `None` for the planar YUV formats, which have no channel
    /// axis. The one place that says how wide a pixel is.
    pub fn packed_channels(self) -> Option<usize> {
        match self {
            PixelFormat::Rgb24 | PixelFormat::Bgr24 => Some(3),
            PixelFormat::Rgba => Some(4),
            PixelFormat::Gray8 => Some(1),
            PixelFormat::Yuv420p | PixelFormat::Yuv444p => None,
        }
    }

    /// The planes of one `w` x `h` frame and the (rows, cols, channels)
    /// shape of its slot in the output array.
    fn layout(self, w: usize, h: usize) -> (Vec<PlaneLayout>, [usize; 3]) {
        let plane = |offset, stride, rows| PlaneLayout { offset, stride, rows };
        match self {
            PixelFormat::Rgb24 | PixelFormat::Bgr24 | PixelFormat::Rgba | PixelFormat::Gray8 => {
                let c = self.packed_channels().unwrap_or(1);
                (vec![plane(0, w * c, h)], [h, w, c])
            }
            PixelFormat::Yuv420p => {
                let (y, c) = (w * h, (w / 2) * (h / 2));
                let planes = vec![plane(0, w, h), plane(y, w / 2, h / 2), plane(y + c, w / 2, h / 2)];
                (planes, [h * 3 / 2, w, 1])
            }
            PixelFormat::Yuv444p => {
                let planes = vec![plane(0, w, h), plane(w * h, w, h), plane(2 * w * h, w, h)];
                (planes, [h * 3, w, 1])
            }
        }
    }
}

impl FromStr for PixelFormat {
    type Err = Error;
    /// `rgb24` (or `rgb`), `bgr24` (`bgr`), `rgba`, `gray8` (`gray`),
    /// `yuv420p`, `yuv444p`.
    fn from_str(s: &str) -> Result<Self> {
        use PixelFormat::*;
        let names = [
            ("rgb24", Rgb24),
            ("rgb", Rgb24),
            ("bgr24", Bgr24),
            ("bgr", Bgr24),
            ("rgba", Rgba),
            ("gray8", Gray8),
            ("gray", Gray8),
            ("yuv420p", Yuv420p),
            ("yuv444p", Yuv444p),
        ];
        choice::parse("pixel format", s, &names)
    }
}

/// Resampling filter used when resizing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Interpolation {
    /// Bilinear; antialiased when downscaling (swscale widens the filter).
    #[default]
    Bilinear,
    /// Bicubic (the `ffmpeg` CLI's default).
    Bicubic,
    /// Area averaging.
    Area,
    /// Nearest neighbour.
    Nearest,
    /// Lanczos.
    Lanczos,
}

impl Interpolation {
    fn sws_flags(self) -> std::os::raw::c_int {
        (match self {
            Interpolation::Bilinear => ffi::SWS_BILINEAR,
            Interpolation::Bicubic => ffi::SWS_BICUBIC,
            Interpolation::Area => ffi::SWS_AREA,
            Interpolation::Nearest => ffi::SWS_POINT,
            Interpolation::Lanczos => ffi::SWS_LANCZOS,
        }) as std::os::raw::c_int
    }
}

impl FromStr for Interpolation {
    type Err = Error;
    /// `bilinear`, `bicubic`, `area`, `nearest`, `lanczos`.
    fn from_str(s: &str) -> Result<Self> {
        use Interpolation::*;
        let names = [
            ("bilinear", Bilinear),
            ("bicubic", Bicubic),
            ("area", Area),
            ("nearest", Nearest),
            ("lanczos", Lanczos),
        ];
        choice::parse("interpolation", s, &names)
    }
}

/// A rectangle in the decoded frame's own coordinates (before rotation and
/// resize).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    /// Left edge in pixels.
    pub left: u32,
    /// Top edge in pixels.
    pub top: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// What a frame is converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ConvertConfig {
    /// Output pixel format (default rgb24).
    pub pix_fmt: PixelFormat,
    /// Output width; `None` keeps the source width (or follows the aspect
    /// ratio when only the height is given).
    pub width: Option<u32>,
    /// Output height; as `width`.
    pub height: Option<u32>,
    /// Resampling filter for resizing (default bilinear).
    pub interpolation: Interpolation,
    /// Optional crop, applied first.
    pub crop: Option<Crop>,
    /// Do not apply the stream's rotation metadata (default: applied).
    pub ignore_rotation: bool,
}

/// The fixed geometry of every frame one converter writes.
#[derive(Debug, Clone)]
pub(crate) struct FrameLayout {
    /// (rows, cols, channels) of one frame's slot.
    pub shape: [usize; 3],
    /// Bytes per frame.
    pub bytes: usize,
    /// Scaler output size (before rotation).
    scaled_w: u32,
    scaled_h: u32,
    /// Planes of the scaler output (before rotation).
    scaled_planes: Vec<PlaneLayout>,
    /// Planes of the final slot (after rotation).
    planes: Vec<PlaneLayout>,
    /// Whether the output size differs from the (cropped, displayed) source.
    resize: bool,
}

/// Converts frames of one stream into slots of the output array.
pub(crate) struct FrameConverter {
    config: ConvertConfig,
    orientation: Orientation,
    src: String,
    layout: Option<FrameLayout>,
    scaler: Option<Scaler>,
    scratch: Vec<u8>,
    /// swscale flags added to the interpolation's.
    extra_flags: std::os::raw::c_int,
}

impl FrameConverter {
    pub(crate) fn new(config: ConvertConfig, orientation: Orientation, src: &str) -> Self {
        FrameConverter {
            orientation: if config.ignore_rotation {
                Orientation::Normal
            } else {
                orientation
            },
            config,
            src: src.into(),
            layout: None,
            scaler: None,
            scratch: Vec::new(),
            extra_flags: 0,
        }
    }

    /// Interpolates subsampled chroma to every pixel and rounds exactly
    /// (`SWS_FULL_CHR_H_INT | SWS_ACCURATE_RND`), as libavif and Pillow
    /// do for single images (43.9 dB against Pillow on its AVIF test image
    /// instead of 39.0); slower, so video keeps swscale's fast path.
    pub(crate) fn with_full_chroma(mut self) -> Self {
        self.extra_flags = ffi::SWS_FULL_CHR_H_INT | ffi::SWS_ACCURATE_RND;
        self
    }

    pub(crate) fn fail(&self, reason: impl Into<String>) -> Error {
        Error::Convert {
            src: self.src.clone(),
            reason: reason.into(),
        }
    }

    /// The layout of every output frame, fixed by the first frame seen.
    pub(crate) fn layout(&mut self, frame: &Frame) -> Result<&FrameLayout> {
        if self.layout.is_none() {
            self.layout = Some(self.make_layout(frame)?);
        }
        Ok(self.layout.as_ref().expect("set above"))
    }

    fn make_layout(&self, frame: &Frame) -> Result<FrameLayout> {
        let (mut w, mut h) = (frame.width(), frame.height());
        if let Some(c) = self.config.crop {
            if c.width == 0 || c.height == 0 || c.left + c.width > w || c.top + c.height > h {
                return Err(self.fail(format!("crop {c:?} does not fit the {w}x{h} frame")));
            }
            (w, h) = (c.width, c.height);
        }
        let quarter = self.orientation.swaps_axes();
        let (dw, dh) = if quarter { (h, w) } else { (w, h) };
        let (out_w, out_h) = match (self.config.width, self.config.height) {
            (Some(ow), Some(oh)) => (ow, oh),
            (Some(ow), None) => (ow, scaled_side(dh, ow, dw)),
            (None, Some(oh)) => (scaled_side(dw, oh, dh), oh),
            (None, None) => (dw, dh),
        };
        if out_w == 0 || out_h == 0 || out_w > 1 << 16 || out_h > 1 << 16 {
            return Err(self.fail(format!("output size {out_w}x{out_h} is out of range (1..=65536)")));
        }
        let fmt = self.config.pix_fmt;
        if fmt == PixelFormat::Yuv420p && (out_w % 2 == 1 || out_h % 2 == 1) {
            return Err(self.fail(format!("yuv420p output needs an even size, not {out_w}x{out_h}")));
        }
        let (scaled_w, scaled_h) = if quarter { (out_h, out_w) } else { (out_w, out_h) };
        let (scaled_planes, _) = fmt.layout(scaled_w as usize, scaled_h as usize);
        let (planes, shape) = fmt.layout(out_w as usize, out_h as usize);
        Ok(FrameLayout {
            resize: (out_w, out_h) != (dw, dh),
            bytes: shape.iter().product(),
            shape,
            scaled_w,
            scaled_h,
            scaled_planes,
            planes,
        })
    }

    /// Converts `frame` into `out` (exactly `layout().bytes` long).
    pub(crate) fn convert(&mut self, frame: &mut Frame, out: &mut [u8]) -> Result<()> {
        let layout = self.layout(frame)?.clone();
        if let Some(c) = self.config.crop {
            scale::crop_frame(&mut frame.inner, c.left, c.top, c.width, c.height).map_err(|e| {
                self.fail(format!(
                    "crop {c:?} of a {}x{} frame failed: {e}",
                    frame.width(),
                    frame.height()
                ))
            })?;
        }
        if self.orientation == Orientation::Normal {
            return self.scale(&frame.inner, out, &layout, false);
        }
        if layout.resize {
            // Rotate first, then scale, as the `ffmpeg` CLI does, so the
            // resampling grid (and every output pixel) matches it.
            if let Some(rotated) = rotate_frame(&frame.inner, self.orientation) {
                return self.scale(&rotated, out, &layout, false);
            }
        }
        // Same size: scaling is a pure conversion, so converting and then
        // rotating the result gives identical pixels with a smaller copy.
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.resize(layout.bytes, 0);
        self.scale(&frame.inner, &mut scratch, &layout, true)?;
        self.orient_planes(&scratch, out, &layout);
        self.scratch = scratch;
        Ok(())
    }

    /// Converts `frame` into `out`: into the pre-rotation planes when
    /// `unrotated`, else straight into the final planes.
    fn scale(&mut self, frame: &ff::frame::Video, out: &mut [u8], layout: &FrameLayout, unrotated: bool) -> Result<()> {
        let (w, h) = if unrotated {
            (layout.scaled_w, layout.scaled_h)
        } else {
            self.final_size(layout)
        };
        let key = self.scaler_key(frame, w, h);
        if self.scaler.as_ref().map(|s| *s.key()) != Some(key) {
            self.scaler = Some(Scaler::new(key).map_err(|e| self.fail(e))?);
        }
        let planes = if unrotated {
            &layout.scaled_planes
        } else {
            &layout.planes
        };
        let scaler = self.scaler.as_mut().expect("set above");
        scaler.run(frame, out, planes).map_err(|e| Error::Convert {
            src: self.src.clone(),
            reason: e,
        })
    }

    /// The output size (width, height) as displayed.
    fn final_size(&self, layout: &FrameLayout) -> (u32, u32) {
        if self.orientation.swaps_axes() {
            (layout.scaled_h, layout.scaled_w)
        } else {
            (layout.scaled_w, layout.scaled_h)
        }
    }

    /// Rotates converted planes from `scratch` into the final `out`.
    fn orient_planes(&self, scratch: &[u8], out: &mut [u8], layout: &FrameLayout) {
        let channels = layout.shape[2];
        let packed = layout.planes.len() == 1;
        for (sp, dp) in layout.scaled_planes.iter().zip(&layout.planes) {
            let px = if packed { channels } else { 1 };
            let (w, h) = (sp.stride / px, sp.rows);
            let src = &scratch[sp.offset..sp.offset + sp.stride * sp.rows];
            let dst = &mut out[dp.offset..dp.offset + dp.stride * dp.rows];
            orient(src, sp.stride, w, h, px, self.orientation, dst, dp.stride);
        }
    }

    fn scaler_key(&self, f: &ff::frame::Video, dst_w: u32, dst_h: u32) -> ScalerKey {
        // Formats swscale takes as full range when the frame does not say
        // (its `handle_jpeg`): the YUVJ formats, and gray.
        use ff::format::Pixel as P;
        let is_jpeg_fmt = matches!(
            f.format(),
            P::YUVJ420P
                | P::YUVJ422P
                | P::YUVJ444P
                | P::YUVJ440P
                | P::GRAY8
                | P::GRAY9BE
                | P::GRAY9LE
                | P::GRAY10BE
                | P::GRAY10LE
                | P::GRAY12BE
                | P::GRAY12LE
                | P::GRAY14BE
                | P::GRAY14LE
                | P::GRAY16BE
                | P::GRAY16LE
                | P::YA8
                | P::YA16BE
                | P::YA16LE
        );
        let full_range = match f.color_range() {
            ff::color::Range::JPEG => true,
            ff::color::Range::MPEG => false,
            _ => is_jpeg_fmt,
        };
        ScalerKey {
            src_w: f.width(),
            src_h: f.height(),
            src_fmt: f.format(),
            colorspace: f.color_space(),
            full_range,
            dst_w,
            dst_h,
            dst_fmt: self.config.pix_fmt.av(),
            flags: self.config.interpolation.sws_flags() | self.extra_flags,
        }
    }
}

/// A copy of `frame` with every plane turned to its displayed
/// orientation, colour tags kept; `None` for pixel formats whose planes are
/// not whole bytes per pixel (the caller then rotates after converting).
fn rotate_frame(frame: &ff::frame::Video, o: Orientation) -> Option<ff::frame::Video> {
    let (w, h) = (frame.width(), frame.height());
    let (rw, rh) = if o.swaps_axes() { (h, w) } else { (w, h) };
    let mut rotated = ff::frame::Video::new(frame.format(), rw, rh);
    rotated.set_color_space(frame.color_space());
    rotated.set_color_range(frame.color_range());
    for plane in 0..frame.planes() {
        let pw = frame.plane_width(plane);
        let row = scale::plane_row_bytes(frame.format(), w, plane)?;
        if pw == 0 || row % pw as usize != 0 {
            return None;
        }
        let px = row / pw as usize;
        let ph = frame.plane_height(plane);
        // Chroma subsampled differently across and down (4:2:2, 4:4:0)
        // cannot be turned a quarter without resampling.
        let expected = if o.swaps_axes() { (ph, pw) } else { (pw, ph) };
        if (rotated.plane_width(plane), rotated.plane_height(plane)) != expected {
            return None;
        }
        let (src_stride, dst_stride) = (frame.stride(plane), rotated.stride(plane));
        let ph = ph as usize;
        orient(
            frame.data(plane),
            src_stride,
            pw as usize,
            ph,
            px,
            o,
            rotated.data_mut(plane),
            dst_stride,
        );
    }
    Some(rotated)
}

/// `side * num / den`, rounded to the nearest integer, at least 1.
fn scaled_side(side: u32, num: u32, den: u32) -> u32 {
    let v = (u64::from(side) * u64::from(num) + u64::from(den) / 2) / u64::from(den.max(1));
    v.clamp(1, u64::from(u32::MAX)) as u32
}

/// The samples of a frame in a packed 16-bit-per-sample pixel format
/// (gray, gray + alpha, RGB or RGBA, either byte order), top row first,
/// and their count per pixel; `None` for any other format. Images keep
/// these for 16-bit output, and their high byte for 8-bit output, where
/// swscale would round.
pub(crate) fn packed_16_bit_samples(frame: &Frame) -> Option<(Vec<u16>, usize)> {
    use ff::format::Pixel as P;
    let f = &frame.inner;
    let (channels, big_endian) = match f.format() {
        P::GRAY16BE => (1, true),
        P::GRAY16LE => (1, false),
        P::YA16BE => (2, true),
        P::YA16LE => (2, false),
        P::RGB48BE => (3, true),
        P::RGB48LE => (3, false),
        P::RGBA64BE => (4, true),
        P::RGBA64LE => (4, false),
        _ => return None,
    };
    let (w, h, stride) = (f.width() as usize, f.height() as usize, f.stride(0));
    let row = w * channels * 2;
    let data = f.data(0);
    let mut out = crate::memory::with_capacity(w * h * channels).ok()?;
    for y in 0..h {
        let bytes = data.get(y * stride..y * stride + row)?;
        out.extend(bytes.chunks_exact(2).map(|b| match big_endian {
            true => u16::from_be_bytes([b[0], b[1]]),
            false => u16::from_le_bytes([b[0], b[1]]),
        }));
    }
    Some((out, channels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aspect_is_kept_when_one_side_is_given() {
        assert_eq!(scaled_side(240, 224, 320), 168);
        assert_eq!(scaled_side(1, 1, 1000), 1);
    }

    #[test]
    fn yuv420p_layout_stacks_planes_as_rows() {
        let (planes, shape) = PixelFormat::Yuv420p.layout(4, 2);
        assert_eq!(shape, [3, 4, 1]);
        assert_eq!(planes[1].offset, 8);
        assert_eq!(planes[2].offset, 10);
    }

    #[test]
    fn unknown_names_are_config_errors() {
        assert!(matches!("rgb48".parse::<PixelFormat>(), Err(Error::InvalidConfig(_))));
        assert!(matches!("cubic".parse::<Interpolation>(), Err(Error::InvalidConfig(_))));
    }
}

//! Pixel layout conversion for images: gray, gray+alpha, RGB and RGBA in
//! 8 or 16 bits to the output pixel format, with Pillow's conventions
//! (alpha dropped without compositing, ITU-R 601 luma for gray).

use crate::media::convert::PixelFormat;

/// A sample type of the output array: `u8` or `u16`.
pub trait Sample: Copy + Default + bytemuck::Pod + Send + Sync + 'static {
    /// The largest value (opaque alpha).
    const MAX: Self;
    /// Converts an 8-bit value (`u16` scales by 257).
    fn from_u8(v: u8) -> Self;
    /// Converts a 16-bit value (`u8` keeps the high byte, as Pillow and
    /// libpng's `strip_16` do).
    fn from_u16(v: u16) -> Self;
    /// ITU-R 601 luma, rounded as Pillow's `L = R*299/1000 + ...` fixed point.
    fn luma(r: Self, g: Self, b: Self) -> Self;
}

impl Sample for u8 {
    const MAX: Self = u8::MAX;
    fn from_u8(v: u8) -> Self {
        v
    }
    fn from_u16(v: u16) -> Self {
        (v >> 8) as u8
    }
    fn luma(r: Self, g: Self, b: Self) -> Self {
        ((u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16) as u8
    }
}

impl Sample for u16 {
    const MAX: Self = u16::MAX;
    fn from_u8(v: u8) -> Self {
        u16::from(v) * 257
    }
    fn from_u16(v: u16) -> Self {
        v
    }
    fn luma(r: Self, g: Self, b: Self) -> Self {
        ((u64::from(r) * 19595 + u64::from(g) * 38470 + u64::from(b) * 7471 + 0x8000) >> 16) as u16
    }
}

/// Converts pixels of `in_channels` (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA)
/// into `fmt`, sample by sample through `sample`.
pub(crate) fn convert<S: Copy, T: Sample>(
    src: &[S],
    in_channels: usize,
    fmt: PixelFormat,
    out: &mut [T],
    sample: impl Fn(S) -> T,
) {
    let out_channels = fmt.packed_channels().expect("checked by the caller");
    for (p, o) in src.chunks_exact(in_channels).zip(out.chunks_exact_mut(out_channels)) {
        let (r, g, b, a) = match in_channels {
            1 | 2 => {
                let l = sample(p[0]);
                (l, l, l, if in_channels == 2 { sample(p[1]) } else { T::MAX })
            }
            _ => (
                sample(p[0]),
                sample(p[1]),
                sample(p[2]),
                if in_channels == 4 { sample(p[3]) } else { T::MAX },
            ),
        };
        match fmt {
            PixelFormat::Rgb24 => o.copy_from_slice(&[r, g, b]),
            PixelFormat::Bgr24 => o.copy_from_slice(&[b, g, r]),
            PixelFormat::Rgba => o.copy_from_slice(&[r, g, b, a]),
            _ => o[0] = if in_channels <= 2 { r } else { T::luma(r, g, b) },
        }
    }
}

/// [`convert`] for 8-bit input and output.
pub(crate) fn convert_u8(src: &[u8], in_channels: usize, fmt: PixelFormat, out: &mut [u8]) {
    convert(src, in_channels, fmt, out, |v| v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gray_uses_pillows_luma() {
        // Pillow: Image.new("RGB", (1, 1), (255, 0, 0)).convert("L") -> 76
        let mut out = [0u8; 1];
        convert_u8(&[255, 0, 0], 3, PixelFormat::Gray8, &mut out);
        assert_eq!(out, [76]);
        convert_u8(&[0, 255, 0], 3, PixelFormat::Gray8, &mut out);
        assert_eq!(out, [150]);
    }

    #[test]
    fn alpha_is_dropped_or_made_opaque() {
        let mut rgb = [0u8; 3];
        convert_u8(&[10, 20, 30, 0], 4, PixelFormat::Rgb24, &mut rgb);
        assert_eq!(rgb, [10, 20, 30]);
        let mut rgba = [0u8; 4];
        convert_u8(&[7], 1, PixelFormat::Rgba, &mut rgba);
        assert_eq!(rgba, [7, 7, 7, 255]);
        let mut bgr = [0u8; 3];
        convert_u8(&[1, 2, 3], 3, PixelFormat::Bgr24, &mut bgr);
        assert_eq!(bgr, [3, 2, 1]);
    }

    #[test]
    fn sixteen_bit_samples_keep_the_high_byte_or_widen() {
        assert_eq!(u8::from_u16(0xABCD), 0xAB);
        assert_eq!(u16::from_u8(0xFF), 0xFFFF);
        let mut out = [0u16; 3];
        convert(&[1000u16, 2000, 3000], 3, PixelFormat::Rgb24, &mut out, u16::from_u16);
        assert_eq!(out, [1000, 2000, 3000]);
    }
}

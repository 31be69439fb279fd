//! Pixel layout conversion for images: gray, gray+alpha, RGB and RGBA in
//! 8 or 16 bits to the output pixel format, with Pillow's conventions
//! (alpha dropped without compositing, ITU-R 601 luma for gray).

use crate::media::convert::PixelFormat;

/// A sample type of the output array: `u8` or `u16`.
pub trait Sample: crate::memory::Pooled + bytemuck::Pod + Send + Sync + Into<u32> + TryFrom<u32> + 'static {
    /// The largest value (opaque alpha).
    const MAX: Self;
    /// Converts an 8-bit value (`u16` scales by 257).
    fn from_u8(v: u8) -> Self;
    /// Converts a 16-bit value (`u8` keeps the high byte, as Pillow and
    /// libpng's `strip_16` do).
    fn from_u16(v: u16) -> Self;
    /// ITU-R 601 luma, rounded as Pillow's `L = R*299/1000 + ...` fixed point.
    fn luma(r: Self, g: Self, b: Self) -> Self;
    /// A colour sample premultiplied by `alpha` divided by it, truncated
    /// and clipped as Pillow's `RGBa` unpacking does (0 when `alpha` is 0).
    fn unpremultiply(self, alpha: Self) -> Self {
        let (v, a, max): (u32, u32, u32) = (self.into(), alpha.into(), Self::MAX.into());
        match a {
            0 => Self::default(),
            a => Self::try_from((v * max / a).min(max)).unwrap_or(Self::MAX),
        }
    }
    /// A number taken as a level of this type, clipped to `0..=MAX` and
    /// truncated (Pillow's `I` and `F` to `L`).
    fn from_level(v: f64) -> Self {
        let max: u32 = Self::MAX.into();
        Self::try_from(v.clamp(0.0, f64::from(max)) as u32).unwrap_or(Self::MAX)
    }
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

/// RGBA pixels whose colour is premultiplied by alpha (a TIFF's
/// associated alpha) made straight, as Pillow reads them.
pub(crate) fn unpremultiply<T: Sample>(rgba: &mut [T]) {
    for px in rgba.chunks_exact_mut(4) {
        let a = px[3];
        px[..3].iter_mut().for_each(|v| *v = v.unpremultiply(a));
    }
}

/// Pillow expands an n-bit level v to `v * 255 / (2^n - 1)`, truncated;
/// decoders that round (the image crate's BMP) or repeat the high bits
/// (FFmpeg) land one level above it for some values. Each of their values
/// maps back to one stored level, which is expanded here as Pillow does,
/// for the first three channels of `channels`-sample 8-bit pixels with
/// `bits` per colour (an 8-bit output's gray or BGR order is not handled:
/// the callers give RGB with or without alpha).
pub(crate) fn truncated_levels(px: &mut [u8], channels: usize, bits: [u32; 3]) {
    if channels < 3 {
        return;
    }
    let tables = bits.map(|b| {
        let max = (1u32 << b) - 1;
        std::array::from_fn::<u8, 256, _>(|v| ((v as u32 * max + 127) / 255 * 255 / max) as u8)
    });
    for p in px.chunks_exact_mut(channels) {
        for (v, table) in p.iter_mut().zip(&tables) {
            *v = table[usize::from(*v)];
        }
    }
}

/// [`convert`] for 8-bit input and output.
pub(crate) fn convert_u8(src: &[u8], in_channels: usize, fmt: PixelFormat, out: &mut [u8]) {
    convert(src, in_channels, fmt, out, |v| v);
}

/// Pillow's `(a * b + 128) * 257 >> 16` rounding of `a * b / 255`.
fn muldiv255(a: u32, b: u32) -> u32 {
    let t = a * b + 128;
    ((t >> 8) + t) >> 8
}

/// CMYK to RGB exactly as Pillow converts (`cmyk2rgb`); `inverted`
/// samples (Adobe JPEGs, Pillow's `CMYK;I`) are flipped first.
pub(crate) fn cmyk_to_rgb(cmyk: &[u8], inverted: bool, rgb: &mut [u8]) {
    for (src, dst) in cmyk.chunks_exact(4).zip(rgb.chunks_exact_mut(3)) {
        let v = |i: usize| u32::from(if inverted { 255 - src[i] } else { src[i] });
        let nk = 255 - v(3);
        for (c, out) in dst.iter_mut().enumerate() {
            *out = (nk - muldiv255(v(c), nk)) as u8;
        }
    }
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
    fn premultiplied_colour_is_divided_by_alpha_as_pillow_does() {
        // Pillow's unpackRGBa: v * 255 / a truncated, clipped; a = 0 gives 0.
        let mut px = [10u8, 200, 0, 128, 9, 9, 9, 0, 255, 1, 2, 255];
        unpremultiply(&mut px);
        assert_eq!(px, [19, 255, 0, 128, 0, 0, 0, 0, 255, 1, 2, 255]);
    }

    #[test]
    fn rounded_and_bit_repeated_levels_become_pillows_truncated_ones() {
        for v in 0..32u32 {
            let rounded = ((v * 255 * 2 + 31) / 62) as u8;
            let repeated = (v << 3 | v >> 2) as u8;
            let mut px = [rounded, repeated, rounded];
            truncated_levels(&mut px, 3, [5, 5, 5]);
            assert_eq!(px, [(v * 255 / 31) as u8; 3], "level {v}");
        }
        for v in 0..64u32 {
            let mut px = [0, (v << 2 | v >> 4) as u8, 0];
            truncated_levels(&mut px, 3, [5, 6, 5]);
            assert_eq!(px[1], (v * 255 / 63) as u8, "level {v}");
        }
    }

    #[test]
    fn sixteen_bit_samples_keep_the_high_byte_or_widen() {
        assert_eq!(u8::from_u16(0xABCD), 0xAB);
        assert_eq!(u16::from_u8(0xFF), 0xFFFF);
        let mut out = [0u16; 3];
        convert(&[1000u16, 2000, 3000], 3, PixelFormat::Rgb24, &mut out, u16::from_u16);
        assert_eq!(out, [1000, 2000, 3000]);
    }

    #[test]
    fn cmyk_conversion_follows_pillow() {
        let mut rgb = [0u8; 3];
        // Plain (non-Adobe) white paper: no ink.
        cmyk_to_rgb(&[0, 0, 0, 0], false, &mut rgb);
        assert_eq!(rgb, [255, 255, 255]);
        // Adobe stores inverted values: 255 means no ink.
        cmyk_to_rgb(&[255, 255, 255, 255], true, &mut rgb);
        assert_eq!(rgb, [255, 255, 255]);
        cmyk_to_rgb(&[255, 0, 0, 0], false, &mut rgb);
        assert_eq!(rgb, [0, 255, 255]);
    }
}

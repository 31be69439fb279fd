//! DirectDraw Surface (DDS) textures: the first surface (the top mip
//! level), decoded as Pillow's `DdsImagePlugin` decodes it.
//!
//! Hand-rolled where it must match Pillow rather than a spec tolerance,
//! measured on Pillow's DDS test images: FFmpeg's decoder and `bcdec_rs`
//! round BC1-BC5 interpolation differently from Pillow's integer
//! division (45-57 dB, not identical), FFmpeg refuses L, LA, palette and
//! BC6H/BC7 surfaces and reads BC5 as a normal map. BC6H and BC7, whose
//! interpolation the format fixes exactly, go through `bcdec_rs`. The
//! header is read here too: Pillow accepts any header of 124 bytes, and
//! channel masks are scaled as Pillow scales them (`v / max * 255`,
//! truncated).

use crate::error::catch_panic;

/// A DDS file's pixel layout, as Pillow picks it from the pixel format
/// flags, FourCC and DX10 format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Layout {
    /// Packed pixels of `bytes` bytes with channel `masks` (RGB, or RGBA
    /// when `alpha`).
    Masks { bytes: usize, masks: [u32; 4], alpha: bool },
    /// 8-bit gray.
    Gray,
    /// 8-bit gray + alpha.
    GrayAlpha,
    /// 8-bit indices into a palette of 256 RGBA entries.
    Palette,
    /// 8-bit RGBA (DXGI R8G8B8A8).
    Rgba,
    /// Block-compressed 4x4 blocks.
    Block(BlockFormat),
}

/// A block-compression format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BlockFormat {
    /// BC1 (DXT1): RGB with 1-bit alpha.
    Bc1,
    /// BC2 (DXT3): BC1 colour with 4-bit alpha.
    Bc2,
    /// BC3 (DXT5): BC1 colour with interpolated alpha.
    Bc3,
    /// BC4: one channel, gray.
    Bc4,
    /// BC5: two channels into red and green (blue 0, or 128 when signed).
    Bc5 { signed: bool },
    /// BC6H: HDR RGB, clamped to 0..1.
    Bc6h { signed: bool },
    /// BC7: RGBA.
    Bc7,
}

impl BlockFormat {
    fn block_bytes(self) -> usize {
        match self {
            BlockFormat::Bc1 | BlockFormat::Bc4 => 8,
            _ => 16,
        }
    }
}

impl Layout {
    /// Samples per output pixel: gray 1, gray + alpha 2, RGB 3, RGBA 4.
    pub(super) fn channels(self) -> usize {
        match self {
            Layout::Gray | Layout::Block(BlockFormat::Bc4) => 1,
            Layout::GrayAlpha => 2,
            Layout::Masks { alpha: false, .. } | Layout::Block(BlockFormat::Bc5 { .. } | BlockFormat::Bc6h { .. }) => 3,
            _ => 4,
        }
    }
}

/// A DDS header as read here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Header {
    pub(super) width: usize,
    pub(super) height: usize,
    pub(super) layout: Layout,
    /// Where the first surface's data starts.
    offset: usize,
}

// Pixel format flags.
const ALPHAPIXELS: u32 = 0x1;
const FOURCC: u32 = 0x4;
const PALETTEINDEXED8: u32 = 0x20;
const RGB: u32 = 0x40;
const LUMINANCE: u32 = 0x20000;

/// Reads the header of a DDS file (`Err` says what is unsupported).
pub(super) fn header(data: &[u8]) -> Result<Header, String> {
    let u32_at = |at: usize| {
        data.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let field = |at: usize| u32_at(at).ok_or_else(|| "truncated header".to_string());
    if !data.starts_with(b"DDS ") || field(4)? != 124 {
        return Err("not a DDS file with a 124-byte header".into());
    }
    let (height, width) = (field(12)? as usize, field(16)? as usize);
    let (flags, fourcc, bits) = (field(80)?, field(84)?, field(88)?);
    let mut offset = 128;
    let layout = if flags & RGB != 0 {
        let alpha = flags & ALPHAPIXELS != 0;
        let masks = [field(92)?, field(96)?, field(100)?, if alpha { field(104)? } else { 0 }];
        match bits / 8 {
            bytes @ 1..=4 => Layout::Masks {
                bytes: bytes as usize,
                masks,
                alpha,
            },
            _ => return Err(format!("unsupported bit count {bits} of packed pixels")),
        }
    } else if flags & LUMINANCE != 0 {
        match (bits, flags & ALPHAPIXELS != 0) {
            (8, _) => Layout::Gray,
            (16, true) => Layout::GrayAlpha,
            _ => return Err(format!("unsupported bit count {bits} of luminance")),
        }
    } else if flags & PALETTEINDEXED8 != 0 {
        Layout::Palette
    } else if flags & FOURCC != 0 {
        let bc = match &fourcc.to_le_bytes() {
            b"DXT1" => BlockFormat::Bc1,
            b"DXT3" => BlockFormat::Bc2,
            b"DXT5" => BlockFormat::Bc3,
            b"BC4U" | b"ATI1" => BlockFormat::Bc4,
            b"BC5S" => BlockFormat::Bc5 { signed: true },
            b"BC5U" | b"ATI2" => BlockFormat::Bc5 { signed: false },
            b"DX10" => {
                offset += 20;
                return Ok(Header {
                    width,
                    height,
                    layout: dxgi_layout(field(128)?)?,
                    offset,
                });
            }
            other => return Err(format!("unsupported FourCC {:?}", String::from_utf8_lossy(other))),
        };
        Layout::Block(bc)
    } else {
        return Err(format!("unknown pixel format flags {flags:#x}"));
    };
    Ok(Header {
        width,
        height,
        layout,
        offset,
    })
}

/// The layout of a DX10 header's DXGI format.
fn dxgi_layout(format: u32) -> Result<Layout, String> {
    Ok(Layout::Block(match format {
        70 | 71 => BlockFormat::Bc1,
        73 | 74 => BlockFormat::Bc2,
        76 | 77 => BlockFormat::Bc3,
        79 | 80 => BlockFormat::Bc4,
        82 | 83 => BlockFormat::Bc5 { signed: false },
        84 => BlockFormat::Bc5 { signed: true },
        95 => BlockFormat::Bc6h { signed: false },
        96 => BlockFormat::Bc6h { signed: true },
        97..=99 => BlockFormat::Bc7,
        27..=29 => return Ok(Layout::Rgba),
        _ => return Err(format!("unsupported DXGI format {format}")),
    }))
}

/// Decodes the first surface into `out` (width x height x the layout's
/// channels, the size checked against the limits by the caller).
pub(super) fn decode(data: &[u8], h: &Header, out: &mut [u8]) -> Result<(), String> {
    let pixels = h.width * h.height;
    if out.len() != pixels * h.layout.channels() {
        return Err("output buffer of the wrong size".into());
    }
    let body = data.get(h.offset..).unwrap_or_default();
    let take = |n: usize| {
        body.get(..n)
            .ok_or_else(|| format!("truncated pixel data ({n} bytes needed)"))
    };
    match h.layout {
        Layout::Gray | Layout::GrayAlpha | Layout::Rgba => out.copy_from_slice(take(out.len())?),
        Layout::Palette => {
            let (palette, indices) = take(1024 + pixels)?.split_at(1024);
            for (px, &i) in out.chunks_exact_mut(4).zip(indices) {
                px.copy_from_slice(&palette[4 * usize::from(i)..4 * usize::from(i) + 4]);
            }
        }
        Layout::Masks { bytes, masks, alpha } => {
            let channels = if alpha { 4 } else { 3 };
            for (px, v) in out
                .chunks_exact_mut(channels)
                .zip(take(pixels * bytes)?.chunks_exact(bytes))
            {
                let value = v.iter().rev().fold(0u32, |acc, &b| acc << 8 | u32::from(b));
                for (o, &mask) in px.iter_mut().zip(&masks) {
                    *o = scaled(value, mask);
                }
            }
        }
        Layout::Block(bc) => {
            let blocks = h.width.div_ceil(4) * h.height.div_ceil(4);
            decode_block_image(take(blocks * bc.block_bytes())?, bc, h.width, out)?;
        }
    }
    Ok(())
}

/// Decodes an image of 4x4 blocks `width` pixels wide into `out` (its
/// pixels in the format's channels, see [`Layout::channels`]).
pub(super) fn decode_block_image(src: &[u8], bc: BlockFormat, width: usize, out: &mut [u8]) -> Result<(), String> {
    // `bcdec_rs` indexes its tables by block bits: a panic there becomes
    // an error.
    catch_panic(|| decode_blocks(src, bc, width, out)).map_err(|panic| format!("its block decoder panicked ({panic})"))
}

/// A masked channel scaled to 8 bits as Pillow does it: the field over
/// its largest value, times 255, truncated (0 for an empty mask).
fn scaled(value: u32, mask: u32) -> u8 {
    if mask == 0 {
        return 0;
    }
    let shift = mask.trailing_zeros();
    let total = f64::from(mask >> shift);
    ((f64::from((value & mask) >> shift) / total) * 255.0) as u8
}

/// Decodes 4x4 blocks, row by row of blocks, into an image `width`
/// pixels wide, clipping the blocks at the right and bottom edges.
fn decode_blocks(src: &[u8], bc: BlockFormat, width: usize, out: &mut [u8]) {
    let channels = Layout::Block(bc).channels();
    let (stride, height) = (width * channels, out.len() / (width * channels));
    let across = width.div_ceil(4);
    let mut block = [0u8; 64];
    for (n, b) in src.chunks_exact(bc.block_bytes()).enumerate() {
        decode_block(bc, b, &mut block);
        let (x0, y0) = (4 * (n % across), 4 * (n / across));
        for y in y0..(y0 + 4).min(height) {
            let (w, row) = ((x0 + 4).min(width) - x0, (y - y0) * 4 * channels);
            out[y * stride + x0 * channels..][..w * channels].copy_from_slice(&block[row..row + w * channels]);
        }
    }
}

/// One block into 16 pixels of the layout's channels.
fn decode_block(bc: BlockFormat, src: &[u8], out: &mut [u8; 64]) {
    match bc {
        BlockFormat::Bc1 => bc1_colour(src, false, out),
        BlockFormat::Bc2 => {
            bc1_colour(&src[8..], true, out);
            for n in 0..16 {
                let a = (src[n / 2] >> (4 * (n % 2))) & 0xf;
                out[4 * n + 3] = a << 4 | a;
            }
        }
        BlockFormat::Bc3 => {
            bc1_colour(&src[8..], true, out);
            interpolated_channel(src, false, &mut out[3..], 4);
        }
        BlockFormat::Bc4 => interpolated_channel(src, false, out, 1),
        BlockFormat::Bc5 { signed } => {
            out[..48].fill(if signed { 128 } else { 0 });
            interpolated_channel(src, signed, out, 3);
            interpolated_channel(&src[8..], signed, &mut out[1..], 3);
        }
        BlockFormat::Bc6h { signed } => {
            let mut rgb = [0f32; 48];
            bcdec_rs::bc6h_float(src, &mut rgb, 12, signed);
            for (o, v) in out.iter_mut().zip(rgb) {
                // Pillow's clamp: negative 0, over 1 255, else truncated.
                *o = if v > 1.0 { 255 } else { (v.max(0.0) * 255.0) as u8 };
            }
        }
        BlockFormat::Bc7 => bcdec_rs::bc7(src, out, 16),
    }
}

/// A 5:6:5 colour expanded to 8 bits by repeating its high bits.
fn rgb565(c: u16) -> [u16; 3] {
    let (r, g, b) = ((c >> 11) & 0x1f, (c >> 5) & 0x3f, c & 0x1f);
    [r << 3 | r >> 2, g << 2 | g >> 4, b << 3 | b >> 2]
}

/// A BC1 colour block into 16 RGBA pixels; `opaque` (BC2, BC3) always
/// uses the four-colour mode. Thirds and halves truncate, as in Pillow.
fn bc1_colour(src: &[u8], opaque: bool, out: &mut [u8]) {
    let (c0, c1) = (
        u16::from_le_bytes([src[0], src[1]]),
        u16::from_le_bytes([src[2], src[3]]),
    );
    let (p0, p1) = (rgb565(c0), rgb565(c1));
    let mix = |w0: u16, w1: u16, d: u16| [0, 1, 2].map(|i| ((w0 * p0[i] + w1 * p1[i]) / d) as u8);
    let rgb = |p: [u16; 3]| p.map(|v| v as u8);
    let (c2, c3) = if c0 > c1 || opaque {
        (mix(2, 1, 3), mix(1, 2, 3))
    } else {
        (mix(1, 1, 2), [0; 3])
    };
    let colours = [
        (rgb(p0), 255),
        (rgb(p1), 255),
        (c2, 255),
        (c3, if c0 > c1 || opaque { 255 } else { 0 }),
    ];
    for n in 0..16 {
        let (c, a) = colours[usize::from((src[4 + n / 4] >> (2 * (n % 4))) & 3)];
        out[4 * n..4 * n + 3].copy_from_slice(&c);
        out[4 * n + 3] = a;
    }
}

/// A BC3 alpha / BC4 / BC5 channel block (two endpoints and 3-bit
/// indices) into every `stride`-th byte of `out`; signed endpoints are
/// offset by 128. Sevenths and fifths truncate, as in Pillow.
fn interpolated_channel(src: &[u8], signed: bool, out: &mut [u8], stride: usize) {
    let endpoint = |b: u8| {
        if signed {
            (i16::from(b as i8) + 128) as u16
        } else {
            u16::from(b)
        }
    };
    let (a0, a1) = (endpoint(src[0]), endpoint(src[1]));
    let mut a = [a0, a1, 0, 0, 0, 0, 0, 0xff];
    if a0 > a1 {
        for (i, v) in a[2..].iter_mut().enumerate() {
            let w = 6 - i as u16;
            *v = (w * a0 + (7 - w) * a1) / 7;
        }
    } else {
        for (i, v) in a[2..6].iter_mut().enumerate() {
            let w = 4 - i as u16;
            *v = (w * a0 + (5 - w) * a1) / 5;
        }
        a[6] = 0;
    }
    let bits = src[2..8].iter().rev().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
    for n in 0..16 {
        out[stride * n] = a[((bits >> (3 * n)) & 7) as usize] as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DDS file of `width` x `height` with pixel format `flags`,
    /// `fourcc`, `bits` and `masks`, then `body`.
    fn dds(width: u32, height: u32, flags: u32, fourcc: &[u8; 4], bits: u32, masks: [u32; 4], body: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 128];
        f[..4].copy_from_slice(b"DDS ");
        let mut put = |at: usize, v: u32| f[at..at + 4].copy_from_slice(&v.to_le_bytes());
        put(4, 124);
        put(12, height);
        put(16, width);
        put(76, 32);
        put(80, flags);
        put(88, bits);
        for (i, m) in masks.into_iter().enumerate() {
            put(92 + 4 * i, m);
        }
        f[84..88].copy_from_slice(fourcc);
        f.extend_from_slice(body);
        f
    }

    fn decoded(file: &[u8]) -> Result<Vec<u8>, String> {
        let h = header(file)?;
        let mut out = vec![0; h.width * h.height * h.layout.channels()];
        decode(file, &h, &mut out).map(|()| out)
    }

    #[test]
    fn masks_scale_as_pillow_truncating() {
        // BGR 5:5:5 in 16 bits: 0x7fff is white, 0x0421 is 1/31 each.
        let file = dds(
            2,
            1,
            RGB,
            &[0; 4],
            16,
            [0x7c00, 0x03e0, 0x001f, 0],
            &[0xff, 0x7f, 0x21, 0x04],
        );
        // 1/31 * 255 = 8.2258 -> 8.
        assert_eq!(decoded(&file).unwrap(), [255, 255, 255, 8, 8, 8]);
    }

    #[test]
    fn bc1_thirds_truncate_and_three_colour_mode_is_transparent_black() {
        // c0 = pure red (0xf800) > c1 = black: index 2 is 2/3 red.
        let four = [0x00, 0xf8, 0x00, 0x00, 0b1110_0100, 0, 0, 0];
        let file = dds(4, 1, FOURCC, b"DXT1", 0, [0; 4], &four);
        let px = decoded(&file).unwrap();
        assert_eq!(
            &px[..16],
            &[255, 0, 0, 255, 0, 0, 0, 255, 170, 0, 0, 255, 85, 0, 0, 255]
        );
        // c0 < c1: index 2 is the half, index 3 transparent black.
        let three = [0x00, 0x00, 0x00, 0xf8, 0b1110_0100, 0, 0, 0];
        let file = dds(4, 1, FOURCC, b"DXT1", 0, [0; 4], &three);
        let px = decoded(&file).unwrap();
        assert_eq!(&px[8..16], &[127, 0, 0, 255, 0, 0, 0, 0]);
    }

    #[test]
    fn bc5_fills_blue_and_clips_blocks_at_the_edges() {
        // 5x1: two blocks across; red 255 (a0), green 0 (a0), all index 0.
        let block = [255, 0, 0, 0, 0, 0, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0];
        let file = dds(5, 1, FOURCC, b"ATI2", 0, [0; 4], &[block, block].concat());
        assert_eq!(decoded(&file).unwrap(), [255, 0, 0].repeat(5));
    }

    #[test]
    fn palette_indices_take_rgba_entries() {
        let mut body = vec![0u8; 1024];
        body[4..8].copy_from_slice(&[1, 2, 3, 4]);
        body.extend_from_slice(&[1, 0]);
        let file = dds(2, 1, PALETTEINDEXED8, &[0; 4], 8, [0; 4], &body);
        assert_eq!(decoded(&file).unwrap(), [1, 2, 3, 4, 0, 0, 0, 0]);
    }

    #[test]
    fn truncated_data_and_unknown_formats_are_errors() {
        let file = dds(8, 8, FOURCC, b"DXT1", 0, [0; 4], &[0; 8]);
        assert!(decoded(&file).unwrap_err().contains("truncated"));
        let file = dds(8, 8, FOURCC, b"XYZW", 0, [0; 4], &[]);
        assert!(decoded(&file).unwrap_err().contains("FourCC"));
        assert!(header(b"DDS ").is_err());
    }
}

//! Blizzard BLP textures (BLP1 from Warcraft III, BLP2 from World of
//! Warcraft): the first mip level, read exactly as Pillow's
//! `BlpImagePlugin` reads it.
//!
//! Hand-written because nothing else reads BLP Pillow's way: FFmpeg has
//! no BLP decoder, and none of the small BLP crates (`image-blp`,
//! `wow-blp`, `rustydemon-blp2`) sets out to reproduce Pillow, whose
//! quirks change pixels. Pillow expands 5:6:5 colours by a plain shift
//! (white is 248, 252, 248); decodes DXT blocks into rows padded to a
//! multiple of 4 and reads them back at the image's width (a width that
//! is not a multiple of 4 comes out sheared); decodes DXT3 and DXT5 to
//! RGBA bytes even for an RGB image (which then reads them three at a
//! time); takes BLP2 palette alpha from the palette, not the alpha
//! plane; reads BLP1 palette indices right after the palette whatever
//! the mip offset says; and reads 4-component BLP1 JPEG data as inverted
//! CMYK without YCC conversion, then swaps red and blue. The `dds`
//! module's BC1-BC3 decoder repeats the high bits of 5:6:5 (1 to 3
//! off on every pixel of Pillow's `blp2_dxt1.blp`) and clips edge blocks,
//! so DXT is decoded here too.

use super::pixels;
use crate::memory;

/// A BLP header as Pillow reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Header {
    pub(super) width: usize,
    pub(super) height: usize,
    /// Pillow's mode is RGBA (else RGB).
    pub(super) alpha: bool,
    version: Version,
}

/// The version-specific header fields, as Pillow reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    /// BLP1: compression 0 is JPEG, 1 a palette (encoding 4 or 5).
    Blp1 { compression: i32, encoding: i32 },
    /// BLP2: compression 1 with encoding 1 (palette) or 2 (DXT, the
    /// alpha encoding 0, 1 or 7 picking DXT1, DXT3 or DXT5).
    Blp2 {
        compression: i32,
        encoding: i8,
        alpha_encoding: i8,
    },
}

/// Where the mip offset and length tables start, after the header.
const BLP1_TABLES: usize = 28;
const BLP2_TABLES: usize = 20;
/// Bytes of the offset and length tables (16 u32 each).
const TABLES: usize = 128;
/// Bytes of a palette (256 BGRA entries).
const PALETTE: usize = 1024;

/// The header when `data` starts with BLP1 or BLP2 and Pillow would open it; Err(what is wrong) for a BLP header Pillow refuses; None when not BLP at all.
///
/// Like `Image.open`, this accepts compressions and encodings that
/// [`decode`] then refuses, and leaves the pixel-count limit (Pillow's
/// decompression-bomb check) to the caller.
pub(super) fn header(data: &[u8]) -> Option<Result<Header, String>> {
    let blp1 = data.starts_with(b"BLP1");
    if !blp1 && !data.starts_with(b"BLP2") {
        return None;
    }
    Some(read_header(data, blp1))
}

fn read_header(data: &[u8], blp1: bool) -> Result<Header, String> {
    // Pillow reads 24 bytes of a BLP1 header (then seeks past the 4-byte
    // subtype) and 20 of a BLP2 header; a short read fails `Image.open`.
    let needed = if blp1 { 24 } else { 20 };
    if data.len() < needed {
        return Err(format!("truncated BLP header ({} bytes, {needed} needed)", data.len()));
    }
    let u32_at = |at: usize| le_u32(data, at, "header");
    let signed_byte = |at: usize| {
        data.get(at)
            .map(|&b| b as i8)
            .ok_or_else(|| format!("truncated BLP header at byte {at}"))
    };
    let compression = u32_at(4)? as i32;
    let (alpha, version) = if blp1 {
        let alpha = u32_at(8)? != 0;
        let encoding = u32_at(20)? as i32;
        (alpha, Version::Blp1 { compression, encoding })
    } else {
        let encoding = signed_byte(8)?;
        let alpha = signed_byte(9)? != 0;
        let alpha_encoding = signed_byte(10)?;
        (
            alpha,
            Version::Blp2 {
                compression,
                encoding,
                alpha_encoding,
            },
        )
    };
    let (width, height) = (u32_at(12)? as usize, u32_at(16)? as usize);
    if width == 0 || height == 0 {
        return Err(format!("BLP image of size {width}x{height}"));
    }
    Ok(Header {
        width,
        height,
        alpha,
        version,
    })
}

/// What the first mip level needs to become pixels.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Pixels {
    /// RGB (3 channels) or RGBA (4) interleaved, width*height*channels bytes.
    Decoded(Vec<u8>, usize),
    /// A BLP1 JPEG mip level: a complete JPEG stream (shared header + the level's data) for the caller's JPEG decoder; `alpha` says whether Pillow keeps the 4th channel; the caller decodes it and then applies `swap_jpeg_channels` (below).
    ///
    /// Pillow's steps, which the caller repeats:
    /// 1. Decode the stream with libjpeg (TurboJPEG), tolerating its
    ///    "Corrupt JPEG data" warnings as Pillow does: a 1- or
    ///    3-component JPEG to RGB (gray repeated; `JCS_RGB`), a 4-component
    ///    CMYK one to libjpeg's `JCS_CMYK` samples as they are (TurboJPEG
    ///    `PixelFormat::CMYK`; no inversion by the caller, with or without
    ///    an Adobe marker). Pillow forces `jpeg_color_space = JCS_CMYK`, so
    ///    it takes a YCCK JPEG's (Adobe transform 2) samples without the
    ///    YCC conversion that TurboJPEG always applies: to stay exact the
    ///    caller refuses YCCK (TurboJPEG `Colorspace::YCCK`).
    /// 2. [`swap_jpeg_channels`] with 3 or 4 channels.
    /// 3. Read the JPEG's pixels, row-major, at the BLP's width: the
    ///    image is the first width x height pixels whatever the JPEG's
    ///    own size; fewer pixels is an error ("not enough image data").
    ///
    /// `alpha` (the header's) makes Pillow's image RGBA, but its alpha
    /// is 255 everywhere: the JPEG never supplies it.
    Jpeg { stream: Vec<u8>, alpha: bool },
}

/// Decodes (or, for BLP1 JPEG, extracts) the first mip level of `data`,
/// whose header `h` is; Err says what failed and where.
pub(super) fn decode(data: &[u8], h: &Header) -> Result<Pixels, String> {
    let pixels = h
        .width
        .checked_mul(h.height)
        .ok_or_else(|| format!("BLP size {}x{} overflows", h.width, h.height))?;
    match h.version {
        Version::Blp1 { compression, encoding } => {
            let (offset, length) = first_mip(data, BLP1_TABLES)?;
            match compression {
                0 => jpeg(data, offset, length, h.alpha),
                1 if encoding == 4 || encoding == 5 => {
                    let at = BLP1_TABLES + TABLES;
                    let palette = palette(data, at)?;
                    // The indices follow the palette: Pillow ignores the
                    // mip offset here.
                    indexed(data, at + PALETTE, length, &palette, pixels, h.alpha)
                }
                1 => Err(format!("unsupported BLP1 encoding {encoding}")),
                _ => Err(format!("unsupported BLP1 compression {compression}")),
            }
        }
        Version::Blp2 {
            compression,
            encoding,
            alpha_encoding,
        } => {
            let (offset, length) = first_mip(data, BLP2_TABLES)?;
            // Pillow reads the palette whatever the encoding.
            let palette = palette(data, BLP2_TABLES + TABLES)?;
            match (compression, encoding) {
                (1, 1) => indexed(data, offset, length, &palette, pixels, h.alpha),
                (1, 2) => dxt(data, offset, h, pixels, alpha_encoding),
                (1, _) => Err(format!("unsupported BLP2 encoding {encoding}")),
                _ => Err(format!("unsupported BLP2 compression {compression}")),
            }
        }
    }
}

/// What Pillow does to the decoded JPEG pixels of BLP1 (the BGR/BGRA channel order it applies): in place on interleaved pixels of `channels` samples.
///
/// With 3 channels (the JPEG decoded to RGB) red and blue swap: Pillow
/// reads the decoded RGB as BGR. With 4 channels (libjpeg's `JCS_CMYK`
/// samples, see [`Pixels::Jpeg`]) each pixel is inverted (Pillow's
/// rawmode "CMYK;I"), converted by Pillow's `cmyk2rgb` and stored in
/// that swapped order, then 255: blue, green, red, 255. Other channel
/// counts are left alone (gray is the same in either order).
pub(super) fn swap_jpeg_channels(pixels: &mut [u8], channels: usize) {
    match channels {
        3 => pixels.chunks_exact_mut(3).for_each(|p| p.swap(0, 2)),
        4 => {
            let mut rgb = [0u8; 3];
            for p in pixels.chunks_exact_mut(4) {
                pixels::cmyk_to_rgb(p, true, &mut rgb);
                p.copy_from_slice(&[rgb[2], rgb[1], rgb[0], 255]);
            }
        }
        _ => {}
    }
}

/// A little-endian u32 at `at`, or an error naming `what` was cut short.
fn le_u32(data: &[u8], at: usize, what: &str) -> Result<u32, String> {
    let b = bytes(data, at, 4, what)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// `len` bytes at `at`, or an error naming `what` was cut short.
fn bytes<'a>(data: &'a [u8], at: usize, len: usize, what: &str) -> Result<&'a [u8], String> {
    at.checked_add(len).and_then(|end| data.get(at..end)).ok_or_else(|| {
        format!(
            "truncated BLP {what}: {len} bytes at offset {at} needed, the file has {}",
            data.len()
        )
    })
}

/// The first mip level's offset and length, from the tables at `at`
/// (all 128 bytes of which Pillow reads).
fn first_mip(data: &[u8], at: usize) -> Result<(usize, usize), String> {
    bytes(data, at, TABLES, "mip tables")?;
    Ok((
        le_u32(data, at, "mip tables")? as usize,
        le_u32(data, at + 64, "mip tables")? as usize,
    ))
}

/// The 256 BGRA palette entries at `at` (Pillow needs all of them).
fn palette(data: &[u8], at: usize) -> Result<[[u8; 4]; 256], String> {
    let src = bytes(data, at, PALETTE, "palette")?;
    let mut palette = [[0u8; 4]; 256];
    for (entry, b) in palette.iter_mut().zip(src.chunks_exact(4)) {
        entry.copy_from_slice(b);
    }
    Ok(palette)
}

/// `length` palette indices at `at` (all of which Pillow reads), the
/// first `pixels` of them the image: RGB, or RGBA with the palette's
/// alpha.
fn indexed(
    data: &[u8],
    at: usize,
    length: usize,
    palette: &[[u8; 4]; 256],
    pixels: usize,
    alpha: bool,
) -> Result<Pixels, String> {
    let indices = bytes(data, at, length, "palette indices")?;
    let indices = indices
        .get(..pixels)
        .ok_or_else(|| format!("not enough image data: {length} palette indices for {pixels} pixels"))?;
    let channels = if alpha { 4 } else { 3 };
    let mut out = memory::with_capacity(pixels * channels).map_err(|n| format!("cannot allocate {n} bytes"))?;
    for &i in indices {
        let [b, g, r, a] = palette[usize::from(i)];
        out.extend_from_slice(&[r, g, b, a][..channels]);
    }
    Ok(Pixels::Decoded(out, channels))
}

/// A BLP1 JPEG mip level: the shared JPEG header (its u32 size after the
/// mip tables, then the bytes), then Pillow skips up to the mip offset
/// (nothing when the offset is before where it stands) and takes the
/// mip's length from there.
fn jpeg(data: &[u8], offset: usize, length: usize, alpha: bool) -> Result<Pixels, String> {
    let at = BLP1_TABLES + TABLES;
    let header_len = le_u32(data, at, "JPEG header size")? as usize;
    let shared = bytes(data, at + 4, header_len, "JPEG header")?;
    let mut pos = at + 4 + header_len;
    if offset > pos {
        bytes(data, pos, offset - pos, "bytes before the JPEG mip level")?;
        pos = offset;
    }
    let level = bytes(data, pos, length, "JPEG mip level")?;
    Ok(Pixels::Jpeg {
        stream: [shared, level].concat(),
        alpha,
    })
}

/// Pillow's 5:6:5 expansion: a plain shift, without repeating high bits.
fn unpack_565(c: u16) -> [u8; 3] {
    [((c >> 11) & 0x1f) << 3, ((c >> 5) & 0x3f) << 2, (c & 0x1f) << 3].map(|v| v as u8)
}

/// The four RGBA colours of a colour block (its first 4 bytes), Pillow's
/// thirds and halves truncated; `dxt1` allows the three-colour mode
/// (`c0 <= c1`, colour 3 then transparent black).
fn block_colours(src: &[u8], dxt1: bool) -> [[u8; 4]; 4] {
    let c = |i: usize| u16::from_le_bytes([src[i], src[i + 1]]);
    let (c0, c1) = (c(0), c(2));
    let (p0, p1) = (unpack_565(c0), unpack_565(c1));
    let mix = |w0: u16, w1: u16, d: u16| {
        let v = |i: usize| ((w0 * u16::from(p0[i]) + w1 * u16::from(p1[i])) / d) as u8;
        [v(0), v(1), v(2), 255]
    };
    let [r0, g0, b0] = p0;
    let [r1, g1, b1] = p1;
    let (c2, c3) = if c0 > c1 || !dxt1 {
        (mix(2, 1, 3), mix(1, 2, 3))
    } else {
        (mix(1, 1, 2), [0; 4])
    };
    [[r0, g0, b0, 255], [r1, g1, b1, 255], c2, c3]
}

/// One DXT block into 16 RGBA pixels, as Pillow's `decode_dxt1`,
/// `decode_dxt3` and `decode_dxt5` decode it.
fn dxt_block(src: &[u8], alpha_encoding: i8, out: &mut [[u8; 4]; 16]) {
    // DXT3 and DXT5 blocks are 8 bytes of alpha, then a colour block.
    let (alpha_block, colour) = match src.len() {
        16 => {
            let (a, c) = src.split_at(8);
            (Some(a), c)
        }
        _ => (None, src),
    };
    let colours = block_colours(colour, alpha_block.is_none());
    let bits = u32::from_le_bytes([colour[4], colour[5], colour[6], colour[7]]);
    for (n, px) in out.iter_mut().enumerate() {
        *px = colours[((bits >> (2 * n)) & 3) as usize];
    }
    let Some(a) = alpha_block else { return };
    if alpha_encoding == 1 {
        // DXT3: 4-bit alphas, low nibble first, times 17.
        for (n, px) in out.iter_mut().enumerate() {
            px[3] = ((a[n / 2] >> (4 * (n % 2))) & 0xf) * 17;
        }
    } else {
        // DXT5: two endpoints and 3-bit indices (a 48-bit little-endian
        // field), Pillow's sevenths and fifths truncated.
        let (a0, a1) = (u32::from(a[0]), u32::from(a[1]));
        let bits = a[2..8].iter().rev().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
        for (n, px) in out.iter_mut().enumerate() {
            let code = ((bits >> (3 * n)) & 7) as u32;
            px[3] = match code {
                0 => a0,
                1 => a1,
                _ if a0 > a1 => ((8 - code) * a0 + (code - 1) * a1) / 7,
                6 => 0,
                7 => 255,
                _ => ((6 - code) * a0 + (code - 1) * a1) / 5,
            } as u8;
        }
    }
}

/// A DXT mip level at `offset`, as Pillow decodes it: rows of 4x4 blocks
/// into a stream of rows padded to whole blocks (RGBA for DXT3 and DXT5,
/// for DXT1 RGBA when the header has alpha else RGB), whose start is then
/// read as the image: width x height pixels of the header's channels.
fn dxt(data: &[u8], offset: usize, h: &Header, pixels: usize, alpha_encoding: i8) -> Result<Pixels, String> {
    let (block_bytes, stream_channels) = match alpha_encoding {
        0 => (8, if h.alpha { 4 } else { 3 }),
        1 | 7 => (16, 4),
        _ => return Err(format!("unsupported BLP2 alpha encoding {alpha_encoding}")),
    };
    let (across, down) = (h.width.div_ceil(4), h.height.div_ceil(4));
    let overflow = || format!("BLP size {}x{} overflows", h.width, h.height);
    let line = across.checked_mul(block_bytes).ok_or_else(overflow)?;
    let src = bytes(data, offset, line.checked_mul(down).ok_or_else(overflow)?, "DXT blocks")?;
    // From here on every size is at most 8 times the blocks' bytes.
    let channels = if h.alpha { 4 } else { 3 };
    let wanted = pixels.checked_mul(channels).ok_or_else(overflow)?;
    let mut out = memory::with_capacity(wanted).map_err(|n| format!("cannot allocate {n} bytes"))?;
    let mut band = vec![0u8; 16 * across * stream_channels]; // bounded: one band of blocks, within the data
    let mut block = [[0u8; 4]; 16];
    for row in src.chunks_exact(line) {
        if out.len() >= wanted {
            break;
        }
        for (bx, b) in row.chunks_exact(block_bytes).enumerate() {
            dxt_block(b, alpha_encoding, &mut block);
            for (n, px) in block.iter().enumerate() {
                let at = ((n / 4) * across * 4 + bx * 4 + n % 4) * stream_channels;
                if let Some(dst) = band.get_mut(at..at + stream_channels) {
                    dst.copy_from_slice(&px[..stream_channels]);
                }
            }
        }
        let take = (wanted - out.len()).min(band.len());
        out.extend_from_slice(&band[..take]);
    }
    if out.len() != wanted {
        return Err("not enough image data in the DXT blocks".into());
    }
    Ok(Pixels::Decoded(out, channels))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BLP2 file: header, mip tables (the first level at `offset` with
    /// `length`), `palette` (zeros when shorter) and then `body` at 1172.
    fn blp2(
        size: (u32, u32),
        (encoding, alpha, alpha_encoding): (i8, u8, i8),
        offset: u32,
        length: u32,
        palette: &[u8],
        body: &[u8],
    ) -> Vec<u8> {
        let mut f = b"BLP2".to_vec();
        f.extend(1i32.to_le_bytes());
        f.extend([encoding as u8, alpha, alpha_encoding as u8, 0]);
        f.extend(size.0.to_le_bytes());
        f.extend(size.1.to_le_bytes());
        f.extend(offset.to_le_bytes());
        f.extend([0; 60]);
        f.extend(length.to_le_bytes());
        f.extend([0; 60]);
        let mut pal = palette.to_vec();
        pal.resize(PALETTE, 0);
        f.extend(pal);
        f.extend(body);
        f
    }

    const BODY: u32 = 1172;

    fn decoded(file: &[u8]) -> Result<(Vec<u8>, usize), String> {
        let h = header(file).ok_or("not BLP")??;
        match decode(file, &h)? {
            Pixels::Decoded(px, channels) => Ok((px, channels)),
            Pixels::Jpeg { .. } => Err("JPEG".into()),
        }
    }

    #[test]
    fn header_is_none_for_other_data_and_err_for_a_broken_blp_header() {
        assert!(header(b"DDS \0\0\0\0").is_none());
        assert!(header(b"").is_none());
        assert!(header(b"BLP2\x01\0\0\0").unwrap().is_err());
        let mut zero = blp2((0, 4), (1, 0, 0), BODY, 0, &[], &[]);
        assert!(header(&zero).unwrap().is_err());
        zero[12] = 4;
        let h = header(&zero[..20]).unwrap().unwrap();
        assert_eq!((h.width, h.height, h.alpha), (4, 4, false));
    }

    #[test]
    fn palette_blp2_reads_bgra_entries_with_palette_alpha() {
        let palette = [10, 20, 30, 40, 1, 2, 3, 4];
        // Five indices for four pixels: the extra one is read, unused.
        let rgb = blp2((2, 2), (1, 0, 8), BODY, 5, &palette, &[0, 1, 1, 0, 9]);
        assert_eq!(
            decoded(&rgb).unwrap(),
            (vec![30, 20, 10, 3, 2, 1, 3, 2, 1, 30, 20, 10], 3)
        );
        let rgba = blp2((2, 1), (1, 1, 8), BODY, 2, &palette, &[1, 0]);
        assert_eq!(decoded(&rgba).unwrap(), (vec![3, 2, 1, 4, 30, 20, 10, 40], 4));
        // Fewer indices than pixels.
        let short = blp2((2, 2), (1, 0, 8), BODY, 3, &palette, &[0, 1, 1, 0]);
        assert!(decoded(&short).unwrap_err().contains("not enough image data"));
    }

    #[test]
    fn blp1_palette_indices_follow_the_palette_whatever_the_offset() {
        let mut f = b"BLP1".to_vec();
        for v in [1u32, 0, 2, 1, 5, 0] {
            f.extend(v.to_le_bytes());
        }
        f.extend(9999u32.to_le_bytes()); // a bogus offset
        f.extend([0; 60]);
        f.extend(2u32.to_le_bytes());
        f.extend([0; 60]);
        let mut pal = vec![0u8; PALETTE];
        pal[4..8].copy_from_slice(&[7, 8, 9, 0]);
        f.extend(pal);
        f.extend([1, 0]);
        assert_eq!(decoded(&f).unwrap(), (vec![9, 8, 7, 0, 0, 0], 3));
    }

    #[test]
    fn dxt1_expands_565_by_shifting_and_three_colour_mode_is_black() {
        // c0 = white > c1 = black: 248, 252, 248; thirds truncate.
        let four = [0xff, 0xff, 0x00, 0x00, 0b1110_0100, 0, 0, 0];
        let f = blp2((4, 4), (2, 0, 0), BODY, 0, &[], &[four, four].concat());
        let (px, channels) = decoded(&f).unwrap();
        assert_eq!(channels, 3);
        assert_eq!(&px[..12], &[248, 252, 248, 0, 0, 0, 165, 168, 165, 82, 84, 82]);
        // c0 < c1: index 2 is the half, index 3 black (RGB) or transparent.
        let three = [0x00, 0x00, 0xff, 0xff, 0b1110_0100, 0, 0, 0];
        let f = blp2((4, 1), (2, 0, 0), BODY, 0, &[], &three);
        assert_eq!(&decoded(&f).unwrap().0[6..], &[124, 126, 124, 0, 0, 0]);
        let f = blp2((4, 1), (2, 1, 0), BODY, 0, &[], &three);
        assert_eq!(&decoded(&f).unwrap().0[8..], &[124, 126, 124, 255, 0, 0, 0, 0]);
    }

    #[test]
    fn dxt_rows_are_padded_then_read_at_the_image_width() {
        // 6x1: blocks 8 pixels wide; a red block then a blue one. The
        // image is the first 6 pixels of the padded top row.
        let red = [0x00, 0xf8, 0x00, 0xf8, 0, 0, 0, 0];
        let blue = [0x1f, 0x00, 0x1f, 0x00, 0, 0, 0, 0];
        let f = blp2((6, 2), (2, 0, 0), BODY, 0, &[], &[red, blue].concat());
        let (px, _) = decoded(&f).unwrap();
        let pixel = |i: usize| &px[3 * i..3 * i + 3];
        assert_eq!(pixel(3), [248, 0, 0]);
        assert_eq!(pixel(4), [0, 0, 248]);
        // The second image row starts at padded pixel 6: blue, then the
        // second padded row (red again).
        assert_eq!(pixel(6), [0, 0, 248]);
        assert_eq!(pixel(8), [248, 0, 0]);
    }

    #[test]
    fn dxt3_and_dxt5_without_alpha_read_rgba_bytes_as_rgb() {
        // DXT3, all alphas 0x3 (51), colour white.
        let block = [[0x33; 8], [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]].concat();
        let f = blp2((4, 4), (2, 0, 1), BODY, 0, &[], &block);
        let (px, channels) = decoded(&f).unwrap();
        assert_eq!(channels, 3);
        assert_eq!(&px[..6], &[248, 252, 248, 51, 248, 252]);
        let f = blp2((4, 4), (2, 1, 1), BODY, 0, &[], &block);
        assert_eq!(&decoded(&f).unwrap().0[..8], &[248, 252, 248, 51, 248, 252, 248, 51]);
        // DXT5: a0 = 200 > a1 = 100, codes 0, 1, 2, 7 then zeros.
        let codes: u64 = 0b111_010_001_000;
        let mut block = vec![200, 100];
        block.extend(&codes.to_le_bytes()[..6]);
        block.extend([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        let f = blp2((4, 4), (2, 1, 7), BODY, 0, &[], &block);
        let alphas: Vec<u8> = decoded(&f).unwrap().0.chunks(4).take(5).map(|p| p[3]).collect();
        // (6 * 200 + 100) / 7 and (200 + 6 * 100) / 7, truncated.
        assert_eq!(alphas, [200, 100, 185, 114, 200]);
    }

    #[test]
    fn unsupported_encodings_are_errors() {
        for kind in [(3, 0, 0), (2, 0, 5), (1 + 8, 0, 0)] {
            let f = blp2((4, 4), kind, BODY, 16, &[], &[0; 16]);
            assert!(decoded(&f).is_err(), "{kind:?}");
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let dxt = blp2((8, 8), (2, 1, 7), BODY, 64, &[1; 8], &[0x5a; 64]);
        let palette = blp2((3, 3), (1, 1, 8), BODY, 9, &[1; 8], &[1; 9]);
        for f in [dxt, palette] {
            assert!(decoded(&f).is_ok());
            for len in 0..f.len() {
                match header(&f[..len]) {
                    None => assert!(len < 4),
                    Some(Err(_)) => assert!(len < 20),
                    Some(Ok(h)) => assert!(decode(&f[..len], &h).is_err(), "{len}"),
                }
            }
        }
    }

    #[test]
    fn blp1_jpeg_joins_the_shared_header_and_the_level() {
        let mut f = b"BLP1".to_vec();
        for v in [0u32, 1, 425, 256, 5, 0] {
            f.extend(v.to_le_bytes());
        }
        // The level at 164 (after a 2-byte gap), 3 bytes long.
        f.extend(164u32.to_le_bytes());
        f.extend([0; 60]);
        f.extend(3u32.to_le_bytes());
        f.extend([0; 60]);
        f.extend(2u32.to_le_bytes());
        f.extend([0xff, 0xd8, 0xee, 0xee, 1, 2, 3, 4]);
        let h = header(&f).unwrap().unwrap();
        assert!(h.alpha);
        let stream = vec![0xff, 0xd8, 1, 2, 3];
        assert_eq!(decode(&f, &h), Ok(Pixels::Jpeg { stream, alpha: true }));
        // An offset before the end of the shared header: the level is
        // read from where the header ends.
        f[28..32].copy_from_slice(&10u32.to_le_bytes());
        let stream = vec![0xff, 0xd8, 0xee, 0xee, 1];
        assert_eq!(decode(&f, &h), Ok(Pixels::Jpeg { stream, alpha: true }));
        // The level cut short.
        f[28..32].copy_from_slice(&164u32.to_le_bytes());
        f.truncate(f.len() - 2);
        assert!(decode(&f, &h).is_err());
    }

    #[test]
    fn jpeg_channels_swap_and_cmyk_converts_as_pillow() {
        let mut rgb = [1, 2, 3, 4, 5, 6];
        swap_jpeg_channels(&mut rgb, 3);
        assert_eq!(rgb, [3, 2, 1, 6, 5, 4]);
        // Samples 255, 127, 0, 204 are C, M, Y, K = 0, 128, 255, 51
        // inverted: nk = 204; R = 204, G = 204 - 102, B = 0; stored blue
        // first.
        let mut cmyk = [255, 127, 0, 204];
        swap_jpeg_channels(&mut cmyk, 4);
        assert_eq!(cmyk, [0, 102, 204, 255]);
    }
}

//! Header fixes for images that Pillow reads past and the `image` crate
//! rejects. Each rewrites only a header field, and only when the file is
//! otherwise as its format requires; the pixels are decoded as stored.
//!
//! - A GIF declares a logical screen (its canvas) and places each frame on
//!   it. Writers in the wild leave the screen at 0x0, or smaller than the
//!   first frame; the `image` crate then rejects the file as empty, or
//!   crops the frame. Pillow grows the screen to cover the first frame, and
//!   so does spdl-io; the grown size is what the pixel limits check.
//! - A GIF without a global colour table (and a first frame without a
//!   local one) is a grayscale image to Pillow, its indices the levels;
//!   the `image` crate finds no colour table. A gray ramp becomes the
//!   global table.
//! - A lossy WebP whose extended header (VP8X) flags alpha but that has no
//!   alpha chunk (ALPH) is opaque to libwebp and Pillow; the `image` crate
//!   reports a missing chunk. The flag is cleared.
//! - A Windows cursor (CUR) is an icon whose directory has type 2 and hot
//!   spot coordinates where an icon's entries have planes and bit counts.
//!   Pillow shows its largest image; the `image` crate reads only icons.
//!   It becomes an icon (type 1, planes and bit counts 0).
//! - A BMP whose header declares a plane count other than 1 (a field
//!   that has always been 1) is read by Pillow; the `image` crate rejects
//!   it. The count becomes 1.
//! - An icon entry whose directory size disagrees with its BMP's header
//!   (writers put the BMP's doubled height, image plus mask, there) is
//!   read by Pillow at the BMP's size; the `image` crate rejects it. The
//!   directory takes the BMP's size.
//! - A QOI file whose writer left out the 8-byte end marker, with all its
//!   pixels, is read by Pillow; the `image` crate reports a short file. The
//!   marker is added.
//! - A DIB (a BMP without its 14-byte file header, as the clipboard and
//!   resources hold it; recognised by its `.dib` name) gets that header.

use bytes::Bytes;

/// Header (6) plus logical screen descriptor (7).
const SCREEN_END: usize = 13;

/// `data` with its logical screen grown to cover the first frame. `data`
/// itself when the screen already covers it, or when the first frame's
/// descriptor cannot be found (the decoder then reports the file).
pub(crate) fn gif_screen_covering_first_frame(data: Bytes) -> Bytes {
    let Some((right, bottom)) = first_frame_extent(&data) else {
        return data;
    };
    let (width, height) = (le16(&data, 6), le16(&data, 8));
    if right <= width && bottom <= height {
        return data;
    }
    let mut grown = data.to_vec();
    grown[6..8].copy_from_slice(&width.max(right).to_le_bytes());
    grown[8..10].copy_from_slice(&height.max(bottom).to_le_bytes());
    Bytes::from(grown)
}

/// `data` with a 256-level gray ramp as its global colour table when it
/// has none; `data` itself otherwise.
pub(crate) fn gif_with_gray_palette(data: Bytes) -> Bytes {
    match data.get(10) {
        Some(flags) if flags & 0x80 == 0 && data.len() >= SCREEN_END => {
            let mut gray = data[..SCREEN_END].to_vec();
            // Global table present, 2^(7 + 1) entries; the colour
            // resolution and sort bits are kept.
            gray[10] = flags | 0x87;
            gray.extend((0..=255u8).flat_map(|v| [v; 3]));
            gray.extend_from_slice(&data[SCREEN_END..]);
            Bytes::from(gray)
        }
        _ => data,
    }
}

/// The right and bottom edges (offset plus size) of the first frame.
fn first_frame_extent(data: &[u8]) -> Option<(u16, u16)> {
    let pos = first_frame_descriptor(data)?;
    // Image descriptor: separator, left, top, width, height.
    let at = |i| le16(data, pos + 1 + i);
    Some((at(0).checked_add(at(4))?, at(2).checked_add(at(6))?))
}

/// Where the first frame's (complete) image descriptor starts.
fn first_frame_descriptor(data: &[u8]) -> Option<usize> {
    if data.len() < SCREEN_END {
        return None;
    }
    let mut pos = SCREEN_END + color_table_len(data[10]);
    loop {
        match *data.get(pos)? {
            0x2C => return (data.len() >= pos + 9).then_some(pos),
            // Extension: introducer, label, then data sub-blocks.
            0x21 => pos = after_sub_blocks(data, pos + 2)?,
            _ => return None,
        }
    }
}

/// The size of the colour table a packed-fields byte declares.
fn color_table_len(flags: u8) -> usize {
    if flags & 0x80 == 0 {
        return 0;
    }
    3 << ((flags & 7) + 1)
}

/// The position after the sub-blocks starting at `pos`: each is a length
/// byte and that many bytes, and a zero length ends them.
fn after_sub_blocks(data: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = usize::from(*data.get(pos)?);
        pos += 1 + len;
        if len == 0 {
            return Some(pos);
        }
    }
}

/// `data` without the VP8X alpha flag when no ALPH chunk backs it in a
/// still, lossy WebP; `data` itself otherwise.
pub(crate) fn webp_without_false_alpha(data: Bytes) -> Bytes {
    const ALPHA: u8 = 0x10;
    const ANIMATION: u8 = 0x02;
    let chunks = riff_chunks(&data);
    let flags_at = match chunks.first() {
        Some((b"VP8X", at, _)) if data[*at] & (ALPHA | ANIMATION) == ALPHA => *at,
        _ => return data,
    };
    let has = |name: &[u8; 4]| chunks.iter().any(|(id, ..)| *id == name);
    if has(b"ALPH") || !has(b"VP8 ") {
        return data;
    }
    let mut fixed = data.to_vec();
    fixed[flags_at] &= !ALPHA;
    Bytes::from(fixed)
}

/// The chunks of a RIFF WEBP file: (id, data offset, data length), up to
/// the first chunk that does not fit.
fn riff_chunks(data: &[u8]) -> Vec<(&[u8; 4], usize, usize)> {
    let mut chunks = Vec::new();
    if data.get(..4) != Some(b"RIFF") || data.get(8..12) != Some(b"WEBP") {
        return chunks;
    }
    let mut pos = 12;
    while let Some(header) = data.get(pos..pos + 8) {
        let id: &[u8; 4] = header[..4].try_into().expect("4 bytes");
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if data.len() - (pos + 8) < len {
            break;
        }
        chunks.push((id, pos + 8, len));
        pos += 8 + len + (len & 1);
    }
    chunks
}

/// A cursor file as the icon file it is laid out like; `None` when
/// `data` is not a cursor or its directory does not fit.
pub(crate) fn cur_as_ico(data: &[u8]) -> Option<Bytes> {
    if data.get(..4)? != [0, 0, 2, 0] {
        return None;
    }
    let count = usize::from(le16(data.get(..6)?, 4));
    if count == 0 || data.len() < 6 + 16 * count {
        return None;
    }
    let mut ico = data.to_vec();
    ico[2] = 1;
    for entry in ico[6..6 + 16 * count].chunks_exact_mut(16) {
        entry[4..8].fill(0);
    }
    Some(Bytes::from(ico))
}

/// `data` with its BMP plane count set to 1 when it declares another;
/// `data` itself otherwise.
pub(crate) fn bmp_with_one_plane(data: Bytes) -> Bytes {
    // File header (14), then the info header: its size, then width and
    // height (2 bytes each in the 12-byte core header, 4 in the others).
    let Some(header) = data.get(14..18) else {
        return data;
    };
    let at = match u32::from_le_bytes(header.try_into().expect("4 bytes")) {
        12 => 22,
        _ => 26,
    };
    if data.len() < at + 2 || le16(&data, at) == 1 {
        return data;
    }
    let mut fixed = data.to_vec();
    fixed[at..at + 2].copy_from_slice(&1u16.to_le_bytes());
    Bytes::from(fixed)
}

/// `data` with its pixel offset moved past the palette when the offset
/// points at the palette itself (right after the info header, as a
/// writer that forgot the palette sets it), which Pillow reads past;
/// `data` itself otherwise.
pub(crate) fn bmp_offset_past_palette(data: Bytes) -> Bytes {
    let (Some(header), Some(offset)) = (data.get(14..18), data.get(10..14)) else {
        return data;
    };
    let header = u32::from_le_bytes(header.try_into().expect("4 bytes"));
    let offset = u32::from_le_bytes(offset.try_into().expect("4 bytes"));
    let (bits_at, entry) = if header == 12 { (24, 3) } else { (28, 4) };
    if offset != 14 + header || data.len() < 50 {
        return data;
    }
    let bits = u32::from(le16(&data, bits_at));
    let colours = match (header, le32(&data, 46)) {
        (12, _) | (_, 0) => 1u32.checked_shl(bits).unwrap_or(0),
        (_, n) => n,
    };
    if !(1..=8).contains(&bits) || colours > 256 {
        return data;
    }
    let mut fixed = data.to_vec();
    fixed[10..14].copy_from_slice(&(offset + entry * colours).to_le_bytes());
    Bytes::from(fixed)
}

/// `data` with the padding of its last stored row added when only that
/// padding is missing from an uncompressed BMP (Pillow reads the row
/// without it; the `image` crate wants it); `data` itself otherwise.
pub(crate) fn bmp_with_last_row_padding(data: Bytes) -> Bytes {
    if data.len() < 34 || le32(&data, 14) < 40 || le32(&data, 30) != 0 {
        return data;
    }
    let (width, height) = (le32(&data, 18) as i32, le32(&data, 22) as i32);
    let (offset, bits) = (le32(&data, 10) as u64, u64::from(le16(&data, 28)));
    let row = (u64::from(width.unsigned_abs()) * bits).div_ceil(8);
    let stride = row.next_multiple_of(4);
    let rows = u64::from(height.unsigned_abs());
    let full = offset + stride * rows;
    let least = (offset + stride * rows.saturating_sub(1) + row).min(full);
    let len = data.len() as u64;
    if rows == 0 || len < least || len >= full {
        return data;
    }
    // bounded: less than one row's padding (3 bytes).
    Bytes::from([&data[..], &vec![0; (full - len) as usize]].concat())
}

/// `data` with each BMP entry's directory size set to its BMP header's
/// (height halved: an icon's BMP stacks the image and its mask).
pub(crate) fn ico_sizes_from_bmp_headers(data: Bytes) -> Bytes {
    let count = match data.get(4..6) {
        Some(c) => usize::from(le16(c, 0)),
        None => return data,
    };
    let mut fixed: Option<Vec<u8>> = None;
    for i in 0..count {
        let entry = 6 + 16 * i;
        let Some(offset) = data.get(entry + 12..entry + 16).map(|b| le32(b, 0) as usize) else {
            break;
        };
        let Some(bmp) = data.get(offset..offset.saturating_add(12)) else {
            continue;
        };
        if le32(bmp, 0) < 40 {
            continue; // a PNG entry, or a header too small to carry a size
        }
        let (w, h) = (le32(bmp, 4), le32(bmp, 8) as i32 / 2);
        let side = |v: u32| {
            if v == 256 {
                Some(0)
            } else {
                u8::try_from(v).ok().filter(|&b| b > 0)
            }
        };
        let (Some(w), Some(h)) = (side(w), side(h.unsigned_abs())) else {
            continue;
        };
        if data[entry] != w || data[entry + 1] != h {
            let out = fixed.get_or_insert_with(|| data.to_vec());
            out[entry] = w;
            out[entry + 1] = h;
        }
    }
    fixed.map_or(data, Bytes::from)
}

/// The QOI end marker: seven zero bytes and a one.
const QOI_END: &[u8; 8] = b"\0\0\0\0\0\0\0\x01";

/// `data` with the QOI end marker added when it does not end with one.
pub(crate) fn qoi_with_end_marker(data: Bytes) -> Bytes {
    if data.ends_with(QOI_END) {
        return data;
    }
    Bytes::from([&data[..], QOI_END].concat())
}

/// A DIB with the BMP file header prepended (its pixels start after the
/// info header, the colour masks and the palette); `None` when `data` does
/// not start with a known info header.
pub(crate) fn dib_as_bmp(data: &[u8]) -> Option<Bytes> {
    let header = le32(data.get(..4)?, 0);
    if !matches!(header, 12 | 40 | 52 | 56 | 64 | 108 | 124) || data.len() < header as usize {
        return None;
    }
    let (bits, colours, entry) = match header {
        12 => (u32::from(le16(data, 10)), 0, 3),
        _ => (u32::from(le16(data, 14)), le32(data.get(32..36)?, 0), 4),
    };
    let masks = match (header, le32(data.get(16..20).unwrap_or(&[0; 4]), 0)) {
        (40, 3) => 12,
        (40, 6) => 16,
        _ => 0,
    };
    let palette = match (colours, bits) {
        (0, 1..=8) => 1 << bits,
        (n, _) => n.min(256),
    };
    let offset = 14 + header + masks + palette * entry;
    let size = u32::try_from(data.len() + 14).ok()?;
    let file_header = [b"BM".as_slice(), &size.to_le_bytes(), &[0; 4], &offset.to_le_bytes()].concat();
    Some(Bytes::from([file_header.as_slice(), data].concat()))
}

pub(super) fn le32(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

fn le16(data: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([data[at], data[at + 1]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{load_image, probe_image, ImageConfig};
    use crate::source::Source;
    use image::codecs::gif::GifEncoder;
    use image::{Frame, RgbaImage};

    /// A 20x10 GIF: one frame at offset (0, 0) on a 20x10 screen.
    fn gif_20x10() -> Vec<u8> {
        let pixels = RgbaImage::from_fn(20, 10, |x, y| image::Rgba([x as u8 * 12, y as u8 * 25, 90, 255]));
        let mut out = Vec::new();
        GifEncoder::new(&mut out).encode_frame(Frame::new(pixels)).unwrap();
        out
    }

    fn with_screen(mut gif: Vec<u8>, width: u16, height: u16) -> Bytes {
        gif[6..8].copy_from_slice(&width.to_le_bytes());
        gif[8..10].copy_from_slice(&height.to_le_bytes());
        Bytes::from(gif)
    }

    #[test]
    fn a_cursor_cut_inside_its_header_is_not_rewritten() {
        // Found by the fuzzer: 5 bytes of a cursor header panicked.
        assert_eq!(cur_as_ico(&[0, 0, 2, 0, 1]), None);
        assert_eq!(cur_as_ico(&[0, 0, 2, 0, 1, 0]), None);
    }

    #[test]
    fn a_gif_without_colour_tables_is_read_as_gray_levels() {
        // Pillow's no_palette.gif: 1x1 GIF87a, no global or local table,
        // LZW code size 8, the pixel index 0; Pillow gives L = 0.
        let mut gif = b"GIF87a\x02\x00\x01\x00\x00\x00\x00".to_vec();
        // Image descriptor 2x1, no local table; LZW (code size 8): clear,
        // 0x40, 0x80, end as 9-bit codes (256, 64, 128, 257).
        gif.extend_from_slice(b",\x00\x00\x00\x00\x02\x00\x01\x00\x00\x08\x05\x00\x81\x00\x0a\x08\x00;");
        let img = decode(Bytes::from(gif)).unwrap();
        assert_eq!(img.as_slice().unwrap(), &[64, 64, 64, 128, 128, 128]);
    }

    #[test]
    fn a_gif_cut_inside_its_screen_descriptor_gets_no_palette_and_no_panic() {
        // Found by the fuzzer: 12 bytes, no global table flag, panicked.
        let cut = Bytes::from_static(b"GIF87a\x02\x00\x01\x00\x00\x00");
        assert_eq!(gif_with_gray_palette(cut.clone()), cut);
        assert!(decode(cut).is_err());
    }

    fn decode(gif: Bytes) -> crate::error::Result<ndarray::Array3<u8>> {
        load_image(Source::from_bytes(gif, "screen.gif"), &ImageConfig::default())
    }

    #[test]
    fn a_screen_smaller_than_the_first_frame_grows_to_cover_it() {
        let reference = decode(Bytes::from(gif_20x10())).unwrap();
        assert_eq!(reference.dim(), (10, 20, 3));
        for (w, h) in [(0, 0), (5, 5), (20, 0), (0, 10)] {
            let grown = gif_screen_covering_first_frame(with_screen(gif_20x10(), w, h));
            assert_eq!((le16(&grown, 6), le16(&grown, 8)), (20, 10), "screen {w}x{h}");
            assert_eq!(decode(grown).unwrap(), reference, "screen {w}x{h}");
        }
    }

    /// `webp_lossy.webp` (a plain VP8 file) rewrapped with a VP8X header
    /// carrying `flags`, and the canvas size of the original.
    fn extended_webp(flags: u8) -> (Bytes, Bytes) {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/images/webp_lossy.webp");
        let simple = Bytes::from(std::fs::read(path).unwrap());
        let (w, h) = probe_size(&simple);
        let mut vp8x = vec![flags, 0, 0, 0];
        vp8x.extend(&(w - 1).to_le_bytes()[..3]);
        vp8x.extend(&(h - 1).to_le_bytes()[..3]);
        let body = [b"WEBP".as_slice(), b"VP8X", &10u32.to_le_bytes(), &vp8x, &simple[12..]].concat();
        let file = [b"RIFF".as_slice(), &(body.len() as u32).to_le_bytes(), &body].concat();
        (simple, Bytes::from(file))
    }

    fn probe_size(webp: &[u8]) -> (u32, u32) {
        let info = probe_image(Source::from_bytes(webp.to_vec(), "probe.webp")).unwrap();
        (info.width, info.height)
    }

    #[test]
    fn a_lossy_webp_flagged_with_alpha_it_lacks_decodes_opaque() {
        let (simple, flagged) = extended_webp(0x10);
        let fixed = webp_without_false_alpha(flagged.clone());
        assert_ne!(fixed, flagged);
        assert_eq!(decode(fixed).unwrap(), decode(simple).unwrap());
        // Without the alpha flag (or with animation) nothing changes.
        for flags in [0x00, 0x12] {
            let (_, other) = extended_webp(flags);
            assert_eq!(webp_without_false_alpha(other.clone()), other);
        }
    }

    #[test]
    fn a_screen_that_covers_the_frame_is_kept() {
        let wide = with_screen(gif_20x10(), 30, 12);
        assert_eq!(gif_screen_covering_first_frame(wide.clone()), wide);
        assert_eq!(decode(wide).unwrap().dim(), (12, 30, 3));
    }

    #[test]
    fn files_cut_before_the_first_frame_are_left_to_the_decoder() {
        let gif = with_screen(gif_20x10(), 0, 0);
        let descriptor = first_frame_descriptor(&gif).unwrap();
        for len in [0, 5, 12, 13, descriptor, descriptor + 4] {
            let cut = gif.slice(..len.min(gif.len()));
            assert_eq!(gif_screen_covering_first_frame(cut.clone()), cut, "cut at {len}");
            assert!(decode(cut).is_err(), "cut at {len}");
        }
    }
}

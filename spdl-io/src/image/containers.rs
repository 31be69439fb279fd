//! Image containers whose entries are images in other formats, unwrapped
//! as Pillow picks the entry: an icon's (ICO) largest entry when it is a
//! PNG (the `image` crate reads only RGBA PNG entries; Pillow writes RGB
//! ones), an Apple icon's (ICNS) largest entry when it is a PNG or JPEG
//! 2000, the first page of a DCX file (a PCX), and a cursor's bitmap when
//! Pillow reads it as gray under an AND mask. The entry is then decoded
//! as the image it is.

use std::ops::Range;

use bytes::Bytes;

use super::repair::{self, le32};

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The byte range of an ICO's largest entry (by pixels, then bits per
/// pixel, as Pillow and the image crate pick it) if that entry is a PNG.
pub(super) fn largest_png_entry(data: &[u8]) -> Option<Range<usize>> {
    let count = usize::from(u16::from_le_bytes(data.get(4..6)?.try_into().ok()?));
    let side = |b: u8| if b == 0 { 256 } else { usize::from(b) };
    let best = (0..count)
        .filter_map(|i| data.get(6 + 16 * i..22 + 16 * i))
        .max_by_key(|e| (side(e[0]) * side(e[1]), u16::from_le_bytes([e[6], e[7]])))?;
    let (size, offset) = (le32(best, 8) as usize, le32(best, 12) as usize);
    let range = offset..offset.checked_add(size)?;
    data.get(range.clone())?.starts_with(PNG_MAGIC).then_some(range)
}

/// ICNS entry types holding a PNG or JPEG 2000 image, by Pillow's size
/// key (side, scale), largest first.
const ICNS_IMAGES: &[(&[u8; 4], (u32, u32))] = &[
    (b"ic10", (512, 2)),
    (b"ic09", (512, 1)),
    (b"ic14", (256, 2)),
    (b"ic08", (256, 1)),
    (b"ic13", (128, 2)),
    (b"ic07", (128, 1)),
    (b"icp6", (64, 1)),
    (b"ic12", (32, 2)),
    (b"icp5", (32, 1)),
    (b"ic11", (16, 2)),
    (b"icp4", (16, 1)),
];

/// Run-length ICNS entries (Pillow reads them; spdl-io does not), with
/// the same size keys.
const ICNS_RUN_LENGTH: &[(&[u8; 4], (u32, u32))] = &[
    (b"it32", (128, 1)),
    (b"ih32", (48, 1)),
    (b"il32", (32, 1)),
    (b"is32", (16, 1)),
];

/// The byte range of an Apple icon's largest image, if it is a PNG or a
/// JPEG 2000 (`None` when a larger run-length image would be Pillow's).
pub(super) fn icns_largest_entry(data: &[u8]) -> Option<Range<usize>> {
    if !data.starts_with(b"icns") {
        return None;
    }
    let mut best: Option<((u32, u32), Range<usize>)> = None;
    let mut largest_run_length = None;
    let mut at = 8;
    while let Some(header) = data.get(at..at + 8) {
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let body = at + 8..at.checked_add(len)?;
        if len < 8 || body.end > data.len() {
            break;
        }
        let kind = &header[..4];
        if let Some(&(_, key)) = ICNS_IMAGES.iter().find(|(k, _)| k.as_slice() == kind) {
            if best.as_ref().is_none_or(|(b, _)| key > *b) {
                best = Some((key, body));
            }
        } else if let Some(&(_, key)) = ICNS_RUN_LENGTH.iter().find(|(k, _)| k.as_slice() == kind) {
            largest_run_length = largest_run_length.max(Some(key));
        }
        at = at.checked_add(len)?;
    }
    let (key, range) = best?;
    let image = &data[range.clone()];
    let readable =
        image.starts_with(PNG_MAGIC) || image.starts_with(b"\0\0\0\x0cjP  ") || image.starts_with(b"\xff\x4f\xff\x51");
    (readable && largest_run_length.is_none_or(|r| r <= key)).then_some(range)
}

/// The byte range of a DCX file's first page (a PCX image).
pub(super) fn dcx_first_page(data: &[u8]) -> Option<Range<usize>> {
    if le32(data.get(..12)?, 0) != 0x3ADE_68B1 {
        return None;
    }
    let (first, next) = (le32(data, 4) as usize, le32(data, 8) as usize);
    let end = if next > first { next.min(data.len()) } else { data.len() };
    (first >= 8 && first < end).then_some(first..end)
}

/// The bitmap of the cursor (CUR) entry Pillow picks, as a BMP of twice
/// the cursor's height, when it is 1- or 8-bit with a gray palette (black
/// and white, or each index its own level): Pillow reads those as gray,
/// the top half of the decoded bitmap being the AND mask and the bottom
/// half the image ([`apply_cursor_mask`]); with the cursor's width and
/// height. `None` for any other file.
pub(super) fn masked_cursor_bitmap(data: &[u8]) -> Option<(Bytes, usize, usize)> {
    if data.get(..4)? != [0, 0, 2, 0] {
        return None;
    }
    let count = usize::from(u16::from_le_bytes([*data.get(4)?, *data.get(5)?]));
    let mut picked: Option<&[u8]> = None;
    for n in 0..count {
        let e = data.get(6 + 16 * n..22 + 16 * n)?;
        if picked.is_none_or(|m| e[0] > m[0] && e[1] > m[1]) {
            picked = Some(e);
        }
    }
    let dib = data.get(le32(picked?, 12) as usize..)?;
    if dib.len() < 40 || le32(dib, 0) != 40 {
        return None;
    }
    let bits = u16::from_le_bytes([dib[14], dib[15]]);
    let colours = match (le32(dib, 32), bits) {
        (0, 1 | 8) => 1usize << bits,
        (n @ 1..=256, 1 | 8) => n as usize,
        _ => return None,
    };
    let palette = dib.get(40..40 + 4 * colours)?;
    let gray = palette.chunks_exact(4).enumerate().all(|(i, e)| {
        let level = if colours == 2 { [0, 255][i] } else { i };
        e[..3].iter().all(|&c| usize::from(c) == level)
    });
    let (width, height) = (le32(dib, 4) as i32, le32(dib, 8) as i32);
    if !gray || width <= 0 || height < 2 {
        return None;
    }
    Some((repair::dib_as_bmp(dib)?, width as usize, height as usize / 2))
}

/// Pillow's masked cursor from its decoded bitmap (`rows` of gray, twice
/// the cursor's height): the bottom half pasted through the inverted top
/// half onto black, with Pillow's rounding.
pub(super) fn apply_cursor_mask(rows: &[u8], width: usize) -> Vec<u8> {
    let (mask, image) = rows.split_at(rows.len() / 2 / width * width);
    image
        .iter()
        .zip(mask)
        .map(|(&v, &and)| {
            let t = u32::from(v) * u32::from(255 - and) + 128;
            (((t >> 8) + t) >> 8) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        [&kind[..], &(body.len() as u32 + 8).to_be_bytes(), body].concat()
    }

    fn icns(entries: &[Vec<u8>]) -> Vec<u8> {
        let body = entries.concat();
        [&b"icns"[..], &(body.len() as u32 + 8).to_be_bytes(), &body].concat()
    }

    #[test]
    fn icns_gives_its_largest_png_by_pillows_size_key() {
        let small = [PNG_MAGIC, b"small"].concat();
        let large = [PNG_MAGIC, b"large"].concat();
        // ic14 (256 @2x) and ic09 (512 @1x) have as many pixels; Pillow's
        // key ranks the 512 first.
        let file = icns(&[entry(b"TOC ", &[0; 8]), entry(b"ic14", &small), entry(b"ic09", &large)]);
        let r = icns_largest_entry(&file).unwrap();
        assert_eq!(&file[r], &large[..]);
    }

    #[test]
    fn icns_whose_largest_image_is_run_length_is_not_unwrapped() {
        let png = [PNG_MAGIC, b"x"].concat();
        let file = icns(&[entry(b"icp4", &png), entry(b"it32", &[0; 16])]);
        assert_eq!(icns_largest_entry(&file), None);
        // A truncated entry ends the scan without reading past the data.
        let mut cut = icns(&[entry(b"ic07", &png)]);
        cut.truncate(cut.len() - 2);
        assert_eq!(icns_largest_entry(&cut), None);
    }

    #[test]
    fn dcx_first_page_runs_to_the_second() {
        let mut file = 0x3ADE_68B1u32.to_le_bytes().to_vec();
        file.extend_from_slice(&16u32.to_le_bytes());
        file.extend_from_slice(&20u32.to_le_bytes());
        file.extend_from_slice(&0u32.to_le_bytes());
        file.extend_from_slice(b"pcx1pcx2");
        assert_eq!(dcx_first_page(&file), Some(16..20));
        assert_eq!(dcx_first_page(b"\xb1\x68\xde\x3a\x00\x00\x00\x00"), None);
    }
}

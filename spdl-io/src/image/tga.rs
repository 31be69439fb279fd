//! Gray + alpha TGA (image type 3, or 11 run-length encoded, at 16 bits
//! per pixel): the image crate refuses it and FFmpeg reads it as RGB555,
//! so it is decoded here (it is a header, two bytes per pixel and an
//! optional run-length code) into LA8 rows, top row first, as Pillow reads
//! it. Every other TGA goes to FFmpeg; [`is_rgb555`] tells the caller
//! which of them need Pillow's levels.

/// The TGA header's length.
const HEADER: usize = 18;

/// Width and height of a gray + alpha TGA (`None` for any other file).
pub(super) fn gray_alpha_size(data: &[u8]) -> Option<(usize, usize)> {
    let h = data.get(..HEADER)?;
    let gray_alpha = h[1] == 0 && matches!(h[2], 3 | 11) && h[16] == 16 && h[17] & 0x0f == 8;
    let (w, ht) = (u16::from_le_bytes([h[12], h[13]]), u16::from_le_bytes([h[14], h[15]]));
    (gray_alpha && w > 0 && ht > 0).then_some((usize::from(w), usize::from(ht)))
}

/// Whether a TGA is true colour (image type 2, or 10 run-length encoded)
/// in 16 bits per pixel: 5 bits per colour, which FFmpeg expands by
/// repeating their high bits and Pillow by `v * 255 / 31`.
pub(super) fn is_rgb555(data: &[u8]) -> bool {
    data.get(..HEADER)
        .is_some_and(|h| h[1] == 0 && matches!(h[2], 2 | 10) && h[16] == 16)
}

/// Decodes the image into `out` (width x height x 2 bytes, the size
/// [`gray_alpha_size`] gave, checked against the limits by the caller).
pub(super) fn decode_gray_alpha(data: &[u8], out: &mut [u8]) -> Result<(), String> {
    let (w, h) = gray_alpha_size(data).ok_or("not a gray + alpha TGA")?;
    if out.len() != w * h * 2 {
        return Err("output buffer of the wrong size".into());
    }
    let pixels = data.get(HEADER + usize::from(data[0])..).ok_or("truncated header")?;
    match data[2] {
        3 => out.copy_from_slice(pixels.get(..out.len()).ok_or("truncated pixel data")?),
        _ => unpack_rle(pixels, out)?,
    }
    let descriptor = data[17];
    if descriptor & 0x10 != 0 {
        out.chunks_exact_mut(w * 2).for_each(|row| {
            row.reverse();
            row.chunks_exact_mut(2).for_each(|p| p.swap(0, 1));
        });
    }
    if descriptor & 0x20 == 0 {
        // Bottom-left origin: the first row stored is the bottom one.
        let rows = w * 2;
        for y in 0..h / 2 {
            let (top, bottom) = out.split_at_mut((h - 1 - y) * rows);
            top[y * rows..(y + 1) * rows].swap_with_slice(&mut bottom[..rows]);
        }
    }
    Ok(())
}

/// TGA run-length packets of 2-byte pixels: a count byte (high bit set:
/// one pixel repeated, else that many literal pixels; low 7 bits + 1).
fn unpack_rle(mut src: &[u8], out: &mut [u8]) -> Result<(), String> {
    let mut at = 0;
    while at < out.len() {
        let (&count, rest) = src.split_first().ok_or("truncated run-length data")?;
        let n = (usize::from(count & 0x7f) + 1) * 2;
        let end = (at + n).min(out.len());
        if count & 0x80 != 0 {
            let pixel = rest.get(..2).ok_or("truncated run-length data")?;
            out[at..end].chunks_exact_mut(2).for_each(|p| p.copy_from_slice(pixel));
            src = &rest[2..];
        } else {
            let literal = rest.get(..n).ok_or("truncated run-length data")?;
            out[at..end].copy_from_slice(&literal[..end - at]);
            src = &rest[n..];
        }
        at = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tga(kind: u8, descriptor: u8, body: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; HEADER];
        h[2] = kind;
        h[12] = 2; // 2 x 2
        h[14] = 2;
        h[16] = 16;
        h[17] = descriptor;
        [h, body.to_vec()].concat()
    }

    #[test]
    fn raw_and_rle_bottom_up_and_top_down() {
        let rows_bottom_up = [5, 6, 7, 8, 1, 2, 3, 4];
        let mut out = [0u8; 8];
        decode_gray_alpha(&tga(3, 8, &rows_bottom_up), &mut out).unwrap();
        assert_eq!(out, [1, 2, 3, 4, 5, 6, 7, 8]);
        // A run of two (1, 2), then two literal pixels.
        decode_gray_alpha(&tga(11, 0x28, &[0x81, 1, 2, 0x01, 5, 6, 7, 8]), &mut out).unwrap();
        assert_eq!(out, [1, 2, 1, 2, 5, 6, 7, 8]);
        assert!(decode_gray_alpha(&tga(11, 0x28, &[0x81, 1]), &mut out).is_err());
        assert_eq!(gray_alpha_size(&tga(2, 8, &[])), None);
    }
}

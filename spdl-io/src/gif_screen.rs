//! GIF logical screens that do not cover the first frame.
//!
//! A GIF declares a logical screen (its canvas) and places each frame on
//! it. Writers in the wild leave the screen at 0x0, or smaller than the
//! first frame; the `image` crate then rejects the file as empty, or crops
//! the frame. Pillow grows the screen to cover the first frame, and so does
//! spdl-io: the screen size in the header is rewritten before decoding, and
//! the grown size is what the pixel limits are checked against.

use bytes::Bytes;

/// Header (6) plus logical screen descriptor (7).
const SCREEN_END: usize = 13;

/// `data` with its logical screen grown to cover the first frame. `data`
/// itself when the screen already covers it, or when the first frame's
/// descriptor cannot be found (the decoder then reports the file).
pub(crate) fn cover_first_frame(data: Bytes) -> Bytes {
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

fn le16(data: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([data[at], data[at + 1]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{load_image, ImageConfig, Source};
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

    fn decode(gif: Bytes) -> crate::Result<ndarray::Array3<u8>> {
        load_image(Source::from_bytes(gif, "screen.gif"), &ImageConfig::default())
    }

    #[test]
    fn a_screen_smaller_than_the_first_frame_grows_to_cover_it() {
        let reference = decode(Bytes::from(gif_20x10())).unwrap();
        assert_eq!(reference.dim(), (10, 20, 3));
        for (w, h) in [(0, 0), (5, 5), (20, 0), (0, 10)] {
            let grown = cover_first_frame(with_screen(gif_20x10(), w, h));
            assert_eq!((le16(&grown, 6), le16(&grown, 8)), (20, 10), "screen {w}x{h}");
            assert_eq!(decode(grown).unwrap(), reference, "screen {w}x{h}");
        }
    }

    #[test]
    fn a_screen_that_covers_the_frame_is_kept() {
        let wide = with_screen(gif_20x10(), 30, 12);
        assert_eq!(cover_first_frame(wide.clone()), wide);
        assert_eq!(decode(wide).unwrap().dim(), (12, 30, 3));
    }

    #[test]
    fn files_cut_before_the_first_frame_are_left_to_the_decoder() {
        let gif = with_screen(gif_20x10(), 0, 0);
        let descriptor = first_frame_descriptor(&gif).unwrap();
        for len in [0, 5, 12, 13, descriptor, descriptor + 4] {
            let cut = gif.slice(..len.min(gif.len()));
            assert_eq!(cover_first_frame(cut.clone()), cut, "cut at {len}");
            assert!(decode(cut).is_err(), "cut at {len}");
        }
    }
}

//! The display transform of an AVIF (HEIF) image: the `irot` (rotation)
//! and `imir` (mirror) properties of its primary item, read from the
//! `meta` box, as the [`Orientation`] to apply after decoding. FFmpeg 5.1
//! demuxes an AVIF as an MP4 track and ignores both; libavif, and Pillow
//! through it, apply them.

use crate::media::sample_table::{boxes, child};
use crate::orientation::Orientation;

/// The orientation the primary item's `irot`/`imir` properties give
/// (`None` when the file has neither, or its boxes cannot be read).
pub(super) fn heif_orientation(data: &[u8]) -> Option<Orientation> {
    let meta = full_box_children(child(data, b"meta")?)?;
    let primary = match child(meta, b"pitm")? {
        [0, _, _, _, a, b, ..] => u32::from(u16::from_be_bytes([*a, *b])),
        [_, _, _, _, a, b, c, d, ..] => u32::from_be_bytes([*a, *b, *c, *d]),
        _ => return None,
    };
    let iprp = child(meta, b"iprp")?;
    let properties: Vec<_> = boxes(child(iprp, b"ipco")?).collect();
    let (mut angle, mut axis) = (None, None);
    for index in item_properties(child(iprp, b"ipma")?, primary)? {
        let Some(property) = index.checked_sub(1).and_then(|i| properties.get(i)) else {
            continue;
        };
        match (&property.kind, property.body.first()) {
            (b"irot", Some(v)) => angle = Some(v & 3),
            (b"imir", Some(v)) => axis = Some(v & 1),
            _ => {}
        }
    }
    Some(exif_orientation(angle.unwrap_or(0), axis))
}

/// libavif's mapping (as Pillow reads AVIF): `irot` turns the image
/// `angle` quarter turns anti-clockwise, then `imir` mirrors it.
fn exif_orientation(angle: u8, axis: Option<u8>) -> Orientation {
    let value = match (angle, axis) {
        (0, None) => 1,
        (0, Some(a)) => [4, 2][usize::from(a)],
        (1, None) => 8,
        (1, Some(a)) => [5, 7][usize::from(a)],
        (2, None) => 3,
        (2, Some(a)) => [2, 4][usize::from(a)],
        (_, None) => 6,
        (_, Some(a)) => [7, 5][usize::from(a)],
    };
    Orientation::from_exif(value)
}

/// The children of a full box (after its version and flags).
fn full_box_children(body: &[u8]) -> Option<&[u8]> {
    body.get(4..)
}

/// The 1-based property indices `ipma` associates with `item`, in order.
fn item_properties(ipma: &[u8], item: u32) -> Option<Vec<usize>> {
    let (version, wide) = (*ipma.first()?, ipma.get(3)? & 1 == 1);
    let mut at = 4;
    let mut take = |n: usize| {
        let bytes = ipma.get(at..at + n)?;
        at += n;
        Some(bytes.iter().fold(0u32, |v, b| (v << 8) | u32::from(*b)))
    };
    let entries = take(4)?;
    for _ in 0..entries {
        let id = take(if version < 1 { 2 } else { 4 })?;
        let count = take(1)?;
        let mut indices = Vec::new();
        for _ in 0..count {
            let index = match wide {
                true => take(2)? & 0x7fff,
                false => take(1)? & 0x7f,
            };
            indices.push(index as usize);
        }
        if id == item {
            return Some(indices);
        }
    }
    Some(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        [&(8 + body.len() as u32).to_be_bytes()[..], kind, body].concat()
    }

    fn avif(properties: &[(&[u8; 4], u8)]) -> Vec<u8> {
        let ipco: Vec<u8> = properties.iter().flat_map(|(k, v)| mp4_box(k, &[*v])).collect();
        let mut ipma = vec![0, 0, 0, 0, 0, 0, 0, 1, 0, 1, properties.len() as u8];
        ipma.extend((1..=properties.len() as u8).map(|i| 0x80 | i));
        let iprp = mp4_box(b"iprp", &[mp4_box(b"ipco", &ipco), mp4_box(b"ipma", &ipma)].concat());
        let meta = [vec![0, 0, 0, 0], mp4_box(b"pitm", &[0, 0, 0, 0, 0, 1]), iprp].concat();
        [mp4_box(b"ftyp", b"avifmif1"), mp4_box(b"meta", &meta)].concat()
    }

    #[test]
    fn irot_and_imir_map_as_libavif_does() {
        assert_eq!(heif_orientation(&avif(&[])), Some(Orientation::Normal));
        assert_eq!(heif_orientation(&avif(&[(b"irot", 1)])), Some(Orientation::Rotate270));
        assert_eq!(heif_orientation(&avif(&[(b"irot", 3)])), Some(Orientation::Rotate90));
        assert_eq!(
            heif_orientation(&avif(&[(b"imir", 1)])),
            Some(Orientation::FlipHorizontal)
        );
        assert_eq!(
            heif_orientation(&avif(&[(b"irot", 1), (b"imir", 0)])),
            Some(Orientation::Transpose)
        );
        assert_eq!(heif_orientation(b"not a heif file"), None);
    }
}

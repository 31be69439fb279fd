//! EXIF and TIFF tag parsing: the orientation an EXIF block declares and
//! single IFD0 tags of a TIFF structure, read defensively (every offset is
//! checked; a block that cannot be read declares nothing).

use crate::orientation::Orientation;

/// The orientation an EXIF block (a TIFF header and IFD0, as in a JPEG's
/// APP1 after `Exif\0\0`, a PNG's eXIf or a WebP's EXIF chunk) declares;
/// [`Orientation::Normal`] when it declares none or cannot be read. The
/// tag is read as SHORT or LONG, as Pillow reads it (some writers store a
/// LONG).
pub(crate) fn exif_orientation(exif: &[u8]) -> Orientation {
    let exif = exif.strip_prefix(b"Exif\0\0").unwrap_or(exif);
    ifd0_tag(exif, 0x0112)
        .and_then(|v| u16::try_from(v).ok())
        .map_or(Orientation::Normal, Orientation::from_exif)
}

/// The first value of `tag` in IFD0 of a TIFF structure (a TIFF file, or
/// an EXIF block), when it is a SHORT or a LONG.
pub(crate) fn ifd0_tag(tiff: &[u8], tag: u16) -> Option<u32> {
    let big_endian = match tiff.get(..2)? {
        b"II" => false,
        b"MM" => true,
        _ => return None,
    };
    let u16_at = |b: &[u8]| {
        if big_endian {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        }
    };
    let u32_at = |b: &[u8]| {
        let b = [b[0], b[1], b[2], b[3]];
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let ifd = usize::try_from(u32_at(tiff.get(4..8)?)).ok()?;
    let count = usize::from(u16_at(tiff.get(ifd..ifd.checked_add(2)?)?));
    (0..count).find_map(|i| {
        let at = ifd + 2 + 12 * i;
        let entry = tiff.get(at..at + 12)?;
        match (u16_at(&entry[0..2]) == tag, u16_at(&entry[2..4])) {
            (true, 3) => Some(u32::from(u16_at(&entry[8..10]))),
            (true, 4) => Some(u32_at(&entry[8..12])),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little- or big-endian IFD0 with a dummy tag, then the orientation
    /// as SHORT or LONG.
    fn exif_block(big_endian: bool, field_type: u16, value: u32) -> Vec<u8> {
        let u16b = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
        let u32b = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut b = Vec::from(*b"Exif\0\0");
        b.extend(if big_endian { *b"MM" } else { *b"II" });
        b.extend(u16b(42));
        b.extend(u32b(8));
        b.extend(u16b(2));
        b.extend(u16b(0x010f).into_iter().chain(u16b(2)).chain(u32b(4)).chain(*b"Cam\0"));
        let value = match field_type {
            3 => [u16b(value as u16), [0, 0]].concat(),
            _ => u32b(value).to_vec(),
        };
        b.extend(
            u16b(0x0112)
                .into_iter()
                .chain(u16b(field_type))
                .chain(u32b(1))
                .chain(value),
        );
        b
    }

    #[test]
    fn exif_orientation_is_read_as_short_or_long_in_either_byte_order() {
        for big_endian in [false, true] {
            for field_type in [3, 4] {
                let block = exif_block(big_endian, field_type, 6);
                assert_eq!(
                    exif_orientation(&block),
                    Orientation::Rotate90,
                    "{big_endian} {field_type}"
                );
                assert_eq!(
                    exif_orientation(&block[6..]),
                    Orientation::Rotate90,
                    "without the Exif prefix"
                );
                for cut in 0..block.len() - 1 {
                    assert_eq!(exif_orientation(&block[..cut]), Orientation::Normal, "cut at {cut}");
                }
            }
            assert_eq!(
                exif_orientation(&exif_block(big_endian, 4, 70_000)),
                Orientation::Normal
            );
            assert_eq!(
                exif_orientation(&exif_block(big_endian, 2, 6)),
                Orientation::Normal,
                "ASCII is no number"
            );
        }
    }
}

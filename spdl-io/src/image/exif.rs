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

/// The orientation an XMP packet declares (`tiff:Orientation="6"` or
/// `<tiff:Orientation>6</tiff:Orientation>`, as Pillow reads it when the
/// EXIF block has none).
pub(crate) fn xmp_orientation(xmp: &[u8]) -> Option<Orientation> {
    const TAG: &[u8] = b"tiff:Orientation";
    let at = xmp.windows(TAG.len()).position(|w| w == TAG)? + TAG.len();
    let value = match xmp.get(at..)? {
        [b'=', b'"' | b'\'', v, ..] | [b'>', v, ..] => *v,
        _ => return None,
    };
    value
        .is_ascii_digit()
        .then(|| Orientation::from_exif(u16::from(value - b'0')))
}

/// The orientation a PNG declares outside an `eXIf` chunk, as Pillow reads
/// it: ImageMagick's `Raw profile type exif` text chunk (hex-encoded EXIF
/// after three header lines), else an XMP packet in an `iTXt` chunk
/// (uncompressed; a compressed one is not read).
pub(crate) fn png_text_orientation(png: &[u8]) -> Option<Orientation> {
    let mut at = 8;
    let mut xmp = None;
    while let Some(header) = png.get(at..at + 8) {
        let len = u32::from_be_bytes(header[..4].try_into().ok()?) as usize;
        let body = png.get(at + 8..(at + 8).checked_add(len)?)?;
        match &header[4..] {
            b"tEXt" => {
                if let Some(hex) = body.strip_prefix(b"Raw profile type exif\0") {
                    let exif = decode_raw_profile(hex)?;
                    let o = ifd0_tag(exif.strip_prefix(b"Exif\0\0").unwrap_or(&exif), 0x0112);
                    if let Some(v) = o.and_then(|v| u16::try_from(v).ok()) {
                        return Some(Orientation::from_exif(v));
                    }
                }
            }
            b"iTXt" if body.starts_with(b"XML:com.adobe.xmp\0\0") => xmp = xmp_orientation(body),
            b"IEND" => break,
            _ => {}
        }
        at += 12 + len;
    }
    xmp
}

/// ImageMagick's raw profile text: a blank line, the profile name, its
/// length, then hex digits over many lines.
fn decode_raw_profile(text: &[u8]) -> Option<Vec<u8>> {
    let mut lines = text.split(|&b| b == b'\n');
    lines.by_ref().take(3).for_each(drop);
    let digits: Vec<u8> = lines.flatten().copied().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks_exact(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

/// The first value of `tag` in IFD0 of a TIFF structure (a TIFF file, or
/// an EXIF block), when it is a SHORT or a LONG (inline, or at the
/// entry's offset when there are more values than its 4 bytes hold).
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
        // Values that do not fit in the entry's 4 bytes are at an offset.
        let values = |size: u32| match u32_at(&entry[4..8]).checked_mul(size)? {
            0 => None,
            1..=4 => Some(&entry[8..12]),
            _ => tiff.get(usize::try_from(u32_at(&entry[8..12])).ok()?..),
        };
        match (u16_at(&entry[0..2]) == tag, u16_at(&entry[2..4])) {
            (true, 3) => Some(u32::from(u16_at(values(2)?.get(..2)?))),
            (true, 4) => Some(u32_at(values(4)?.get(..4)?)),
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

#[cfg(test)]
mod text_tests {
    use super::*;

    #[test]
    fn xmp_orientation_in_attribute_and_element_form() {
        assert_eq!(
            xmp_orientation(br#"<d tiff:Orientation="6"/>"#),
            Some(Orientation::Rotate90)
        );
        assert_eq!(
            xmp_orientation(b"<d tiff:Orientation='8'/>"),
            Some(Orientation::Rotate270)
        );
        assert_eq!(
            xmp_orientation(b"<tiff:Orientation>3</tiff:Orientation>"),
            Some(Orientation::Rotate180)
        );
        assert_eq!(xmp_orientation(b"<x/>"), None);
        assert_eq!(xmp_orientation(b"tiff:Orientation"), None);
    }

    #[test]
    fn raw_profiles_decode_hex_after_three_lines() {
        assert_eq!(decode_raw_profile(b"\nexif\n  3\n4578\n69\n"), Some(b"Exi".to_vec()));
        assert_eq!(decode_raw_profile(b"\nexif\n  1\n4"), Some(Vec::new()));
    }
}

//! Orientation transforms: the eight EXIF orientations, used for image
//! EXIF tags and for video rotation metadata alike.

/// How stored pixels map to the displayed image (EXIF tag 0x0112).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Orientation {
    /// 1: stored as displayed.
    #[default]
    Normal,
    /// 2: mirrored left-right.
    FlipHorizontal,
    /// 3: rotated 180 degrees.
    Rotate180,
    /// 4: mirrored top-bottom.
    FlipVertical,
    /// 5: transposed (mirror across the main diagonal).
    Transpose,
    /// 6: must be rotated 90 degrees clockwise to display.
    Rotate90,
    /// 7: transversed (mirror across the anti-diagonal).
    Transverse,
    /// 8: must be rotated 270 degrees clockwise to display.
    Rotate270,
}

impl Orientation {
    /// From the EXIF value 1-8; anything else is [`Orientation::Normal`].
    pub fn from_exif(value: u16) -> Self {
        match value {
            2 => Orientation::FlipHorizontal,
            3 => Orientation::Rotate180,
            4 => Orientation::FlipVertical,
            5 => Orientation::Transpose,
            6 => Orientation::Rotate90,
            7 => Orientation::Transverse,
            8 => Orientation::Rotate270,
            _ => Orientation::Normal,
        }
    }

    /// From a clockwise rotation of 0, 90, 180 or 270 degrees.
    pub fn from_rotation(clockwise_degrees: u32) -> Self {
        match clockwise_degrees % 360 {
            90 => Orientation::Rotate90,
            180 => Orientation::Rotate180,
            270 => Orientation::Rotate270,
            _ => Orientation::Normal,
        }
    }

    /// Whether displaying swaps width and height.
    pub fn swaps_axes(self) -> bool {
        matches!(
            self,
            Orientation::Transpose | Orientation::Rotate90 | Orientation::Transverse | Orientation::Rotate270
        )
    }

    /// Where stored pixel (row `r`, column `c`) of a `w` x `h` image lands
    /// in the displayed image, as (row, column).
    fn map(self, r: usize, c: usize, w: usize, h: usize) -> (usize, usize) {
        match self {
            Orientation::Normal => (r, c),
            Orientation::FlipHorizontal => (r, w - 1 - c),
            Orientation::Rotate180 => (h - 1 - r, w - 1 - c),
            Orientation::FlipVertical => (h - 1 - r, c),
            Orientation::Transpose => (c, r),
            Orientation::Rotate90 => (c, h - 1 - r),
            Orientation::Transverse => (w - 1 - c, h - 1 - r),
            Orientation::Rotate270 => (w - 1 - c, r),
        }
    }
}

/// Writes the displayed form of a stored `w` x `h` image of `px`-byte
/// pixels into `dst` (width and height swapped when
/// [`Orientation::swaps_axes`]). Rows start every `src_stride` and
/// `dst_stride` bytes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn orient(
    src: &[u8],
    src_stride: usize,
    w: usize,
    h: usize,
    px: usize,
    o: Orientation,
    dst: &mut [u8],
    dst_stride: usize,
) {
    for r in 0..h {
        let row = &src[r * src_stride..r * src_stride + w * px];
        for (c, pixel) in row.chunks_exact(px).enumerate() {
            let (dr, dc) = o.map(r, c, w, h);
            let d = dr * dst_stride + dc * px;
            dst[d..d + px].copy_from_slice(pixel);
        }
    }
}

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

    /// A 3x2 image (w=3, h=2) with one byte per pixel:
    /// 1 2 3
    /// 4 5 6
    const IMG: [u8; 6] = [1, 2, 3, 4, 5, 6];

    fn run(o: Orientation) -> [u8; 6] {
        let mut out = [0u8; 6];
        let dst_stride = if o.swaps_axes() { 2 } else { 3 };
        orient(&IMG, 3, 3, 2, 1, o, &mut out, dst_stride);
        out
    }

    #[test]
    fn each_orientation_matches_pillows_exif_transpose() {
        assert_eq!(run(Orientation::Normal), IMG);
        assert_eq!(run(Orientation::FlipHorizontal), [3, 2, 1, 6, 5, 4]);
        assert_eq!(run(Orientation::Rotate180), [6, 5, 4, 3, 2, 1]);
        assert_eq!(run(Orientation::FlipVertical), [4, 5, 6, 1, 2, 3]);
        // 2 columns, 3 rows from here on.
        assert_eq!(run(Orientation::Transpose), [1, 4, 2, 5, 3, 6]);
        assert_eq!(run(Orientation::Rotate90), [4, 1, 5, 2, 6, 3]);
        assert_eq!(run(Orientation::Transverse), [6, 3, 5, 2, 4, 1]);
        assert_eq!(run(Orientation::Rotate270), [3, 6, 2, 5, 1, 4]);
    }

    #[test]
    fn multibyte_pixels_move_together() {
        let src = [1, 10, 2, 20]; // w=2, h=1, 2 bytes per pixel
        let mut out = [0u8; 4];
        orient(&src, 4, 2, 1, 2, Orientation::Rotate90, &mut out, 2);
        assert_eq!(out, [1, 10, 2, 20]);
    }

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

    #[test]
    fn exif_values_and_rotations_agree() {
        assert_eq!(Orientation::from_exif(6), Orientation::from_rotation(90));
        assert_eq!(Orientation::from_exif(3), Orientation::from_rotation(180));
        assert_eq!(Orientation::from_exif(8), Orientation::from_rotation(270));
        assert_eq!(Orientation::from_exif(0), Orientation::Normal);
        assert!(Orientation::Transverse.swaps_axes() && !Orientation::FlipVertical.swaps_axes());
    }
}

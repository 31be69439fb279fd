//! Orientation transforms: the eight EXIF orientations, used for image
//! EXIF tags and for video rotation metadata alike. Part of the ground
//! floor (the FFmpeg layer reads a stream's display matrix into one; the
//! EXIF parsing that reads an image's is in `image::exif`).

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

    /// The FFmpeg filter chain that displays a stored frame (what the
    /// `ffmpeg` CLI inserts before a user's `-vf` when it autorotates);
    /// `None` for [`Orientation::Normal`].
    pub(crate) fn ffmpeg_filter(self) -> Option<&'static str> {
        Some(match self {
            Orientation::Normal => return None,
            Orientation::FlipHorizontal => "hflip",
            Orientation::Rotate180 => "hflip,vflip",
            Orientation::FlipVertical => "vflip",
            Orientation::Transpose => "transpose=cclock_flip",
            Orientation::Rotate90 => "transpose=clock",
            Orientation::Transverse => "transpose=clock_flip",
            Orientation::Rotate270 => "transpose=cclock",
        })
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

    #[test]
    fn exif_values_and_rotations_agree() {
        assert_eq!(Orientation::from_exif(6), Orientation::from_rotation(90));
        assert_eq!(Orientation::from_exif(3), Orientation::from_rotation(180));
        assert_eq!(Orientation::from_exif(8), Orientation::from_rotation(270));
        assert_eq!(Orientation::from_exif(0), Orientation::Normal);
        assert!(Orientation::Transverse.swaps_axes() && !Orientation::FlipVertical.swaps_axes());
    }
}

//! Gray images of numbers rather than 8- or 16-bit levels: TIFFs of one
//! 32-bit integer or floating-point sample (Pillow's modes `I` and `F`)
//! and gray PFM files (`Pf`, 32-bit floats). There is no single 8-bit
//! answer for them; spdl-io returns these:
//! - integers are 16-bit levels, clipped to 0..=65535 (16-bit output) and
//!   then, for 8-bit output, their high byte, as 16-bit gray is read
//!   everywhere (Pillow opens 16-bit data as mode `I` too);
//! - floats are Pillow's answer: each value is a level of the output
//!   type, clipped to its range and truncated (8-bit output is Pillow's
//!   `convert("L")`: 0.7 -> 0, 300 -> 255). Data in 0..1 is to be scaled
//!   by the caller.
//!
//! TIFFs go through the `tiff` crate (the `image` crate refuses these
//! sample formats; libtiff's RGBA reader and FFmpeg 5.1 read floats as
//! integers), and libtiff's raw sample reader where the `tiff` crate
//! fails; the PFM reader is a header and rows of floats, written here
//! because FFmpeg's scales 0..1 to the output range where Pillow does not.

use std::io::Cursor;

use tiff::decoder::{Decoder, DecodingResult};

use super::exif::ifd0_tag;
use super::tiff::{max_alloc, SAMPLE_FORMAT};
use crate::error::catch_panic;
use crate::libtiff::TiffReader;
use crate::limits::Limits;
use crate::memory;

/// Where the numbers come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Levels {
    Tiff,
    /// A PFM whose first float is at `offset`, little-endian when `le`.
    Pfm {
        offset: usize,
        le: bool,
    },
}

const BITS_PER_SAMPLE: u16 = 258;
const SAMPLES_PER_PIXEL: u16 = 277;

/// Whether a TIFF holds one 32- or 64-bit sample per pixel (integers or
/// floats), which the `image` crate refuses.
pub(super) fn is_number_tiff(data: &[u8]) -> bool {
    matches!(ifd0_tag(data, BITS_PER_SAMPLE), Some(32 | 64))
        && matches!(ifd0_tag(data, SAMPLES_PER_PIXEL), None | Some(1))
}

fn tiff_decoder<'a>(data: &'a [u8], limits: &Limits) -> Result<Decoder<Cursor<&'a [u8]>>, String> {
    let mut l = tiff::decoder::Limits::default();
    l.decoding_buffer_size = usize::try_from(limits.max_pixels.saturating_mul(8)).unwrap_or(usize::MAX);
    Ok(Decoder::new(Cursor::new(data))
        .map_err(|e| e.to_string())?
        .with_limits(l))
}

/// Runs a call into the `tiff` crate, a panic in it becoming an error.
fn guarded<T>(run: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    catch_panic(run).unwrap_or_else(|panic| Err(format!("the tiff crate panicked ({panic})")))
}

/// Width and height of a number TIFF or a gray PFM, and its [`Levels`].
pub(super) fn header(data: &[u8], limits: &Limits) -> Result<(usize, usize, Levels), String> {
    if data.starts_with(b"Pf") {
        return pfm_header(data);
    }
    let (w, h) = guarded(|| tiff_decoder(data, limits)?.dimensions().map_err(|e| e.to_string())).or_else(|e| {
        TiffReader::open_for_samples(data, max_alloc(limits))
            .map(|r| (r.width, r.height))
            .map_err(|_| e)
    })?;
    Ok((w as usize, h as usize, Levels::Tiff))
}

/// A gray PFM's header: `Pf`, width, height and scale (negative for
/// little-endian floats) separated by whitespace, one whitespace byte
/// before the floats.
fn pfm_header(data: &[u8]) -> Result<(usize, usize, Levels), String> {
    let mut fields = [""; 3];
    let mut at = 2;
    for field in &mut fields {
        let start = at
            + data
                .get(at..)
                .unwrap_or_default()
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
        let len = data
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(|b| !b.is_ascii_whitespace())
            .count();
        if len == 0 || start == at {
            return Err("malformed PFM header".into());
        }
        *field = std::str::from_utf8(&data[start..start + len]).unwrap_or_default();
        at = start + len;
    }
    let number = |s: &str| s.parse::<usize>().map_err(|_| format!("bad PFM size {s:?}"));
    let scale: f64 = fields[2]
        .parse()
        .map_err(|_| format!("bad PFM scale {:?}", fields[2]))?;
    if scale == 0.0 || !scale.is_finite() {
        return Err(format!("bad PFM scale {scale}"));
    }
    let le = scale < 0.0;
    Ok((
        number(fields[0])?,
        number(fields[1])?,
        Levels::Pfm { offset: at + 1, le },
    ))
}

/// Decoded values, top row first, and whether they are integers.
pub(super) struct Values {
    pub(super) values: Vec<f64>,
    pub(super) integers: bool,
}

/// The image's values (`width * height` of them). Call after the
/// header's size passed the limits.
pub(super) fn decode(data: &[u8], levels: Levels, (w, h): (usize, usize), limits: &Limits) -> Result<Values, String> {
    let mut out: Vec<f64> = memory::zeroed(w * h).map_err(|n| format!("cannot allocate {n} bytes"))?;
    let mut integers = false;
    match levels {
        Levels::Pfm { offset, le } => {
            let rows = data.get(offset..offset + 4 * w * h).ok_or("truncated PFM data")?;
            // Rows are stored bottom row first.
            for (row, src) in out.chunks_exact_mut(w).rev().zip(rows.chunks_exact(4 * w)) {
                for (o, b) in row.iter_mut().zip(src.chunks_exact(4)) {
                    let b = [b[0], b[1], b[2], b[3]];
                    *o = f64::from(if le {
                        f32::from_le_bytes(b)
                    } else {
                        f32::from_be_bytes(b)
                    });
                }
            }
        }
        Levels::Tiff => {
            // libtiff reads what the `tiff` crate refuses (no photometric
            // interpretation tag, ...); the first error if both fail.
            integers = tiff_crate_values(data, limits, &mut out)
                .or_else(|e| libtiff_values(data, limits, &mut out).map_err(|_| e))?;
        }
    }
    Ok(Values { values: out, integers })
}

/// Fills `out` through the `tiff` crate; whether the values are integers.
fn tiff_crate_values(data: &[u8], limits: &Limits, out: &mut [f64]) -> Result<bool, String> {
    let image = guarded(|| tiff_decoder(data, limits)?.read_image().map_err(|e| e.to_string()))?;
    let integers = matches!(image, DecodingResult::I32(_) | DecodingResult::U32(_));
    let values: Box<dyn Iterator<Item = f64>> = match image {
        DecodingResult::F32(v) => Box::new(v.into_iter().map(f64::from)),
        DecodingResult::F64(v) => Box::new(v.into_iter()),
        DecodingResult::I32(v) => Box::new(v.into_iter().map(f64::from)),
        DecodingResult::U32(v) => Box::new(v.into_iter().map(f64::from)),
        _ => return Err("unsupported sample type for a gray number image".into()),
    };
    let mut n = 0;
    for (o, v) in out.iter_mut().zip(values) {
        (*o, n) = (v, n + 1);
    }
    if n != out.len() {
        return Err(format!("{n} values decoded for {} pixels", out.len()));
    }
    Ok(integers)
}

/// Fills `out` with libtiff's samples as stored (one 32- or 64-bit
/// sample per pixel, the sample format tag saying integer or float);
/// whether the values are integers.
fn libtiff_values(data: &[u8], limits: &Limits, out: &mut [f64]) -> Result<bool, String> {
    let mut r = TiffReader::open_for_samples(data, max_alloc(limits))?;
    let layout = r.sample_layout();
    let bytes = usize::from(layout.bits_per_sample / 8);
    if layout.samples_per_pixel != 1 || !matches!(layout.bits_per_sample, 32 | 64) {
        return Err("not one 32- or 64-bit sample per pixel".into());
    }
    let format = ifd0_tag(data, SAMPLE_FORMAT).unwrap_or(1);
    let mut raw: Vec<u8> = memory::zeroed(out.len() * bytes).map_err(|n| format!("cannot allocate {n} bytes"))?;
    r.read_samples(&mut raw)?;
    for (o, b) in out.iter_mut().zip(raw.chunks_exact(bytes)) {
        *o = match (format, b.len()) {
            (3, 4) => f64::from(f32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
            (3, _) => f64::from_ne_bytes(b.try_into().unwrap_or_default()),
            (2, 4) => f64::from(i32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
            (_, 4) => f64::from(u32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
            (2, _) => i64::from_ne_bytes(b.try_into().unwrap_or_default()) as f64,
            _ => u64::from_ne_bytes(b.try_into().unwrap_or_default()) as f64,
        };
    }
    Ok(format != 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pfm_rows_are_flipped_and_the_scale_sign_picks_the_byte_order() {
        let mut le = b"Pf\n2 2\n-1.0\n".to_vec();
        for v in [1.0f32, 2.0, 3.0, 4.0] {
            le.extend_from_slice(&v.to_le_bytes());
        }
        let (w, h, levels) = header(&le, &Limits::default()).unwrap();
        assert_eq!((w, h), (2, 2));
        assert_eq!(
            decode(&le, levels, (w, h), &Limits::default()).unwrap().values,
            [3.0, 4.0, 1.0, 2.0]
        );
        let mut be = b"Pf 1 1 1.0 ".to_vec();
        be.extend_from_slice(&7.5f32.to_be_bytes());
        let (w, h, levels) = header(&be, &Limits::default()).unwrap();
        assert_eq!(decode(&be, levels, (w, h), &Limits::default()).unwrap().values, [7.5]);
    }

    #[test]
    fn broken_pfm_headers_and_short_data_are_errors() {
        assert!(header(b"Pf\n2\n", &Limits::default()).is_err());
        assert!(header(b"Pf\nx 2 -1\n", &Limits::default()).is_err());
        assert!(header(b"Pf\n1 1 0\n", &Limits::default()).is_err());
        let (w, h, levels) = header(b"Pf\n2 2\n-1\n\0\0", &Limits::default()).unwrap();
        assert!(
            decode(b"Pf\n2 2\n-1\n\0\0", levels, (w, h), &Limits::default()).is_err_and(|e| e.contains("truncated"))
        );
    }
}

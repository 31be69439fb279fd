//! TIFF through libtiff: which TIFFs go to libtiff's RGBA reader rather
//! than the `tiff` crate, and the calls (header, samples, RGBA pixels) on them.
//!
//! Pillow decodes compressed TIFFs with libtiff; the `tiff` crate leaves
//! YCbCr unconverted (JPEG-compressed or not), reads old-style JPEG,
//! 2/4-bit gray and reversed bit order wrongly, lacks CIELab and palette
//! images, and panics on some tiled planar layouts. Those go to libtiff
//! first; any other TIFF the `tiff` crate fails on goes to libtiff next.
//! 8- and 16-bit RGB and gray stay with the `tiff` crate; when it fails on
//! them (tiled separate planes), libtiff's strip and tile reader gives
//! their samples as stored ([`decode_samples`]), since its RGBA reader
//! rounds 16-bit samples where Pillow keeps their high byte. CIELab and
//! 16-bit CMYK are read as samples too and converted as Pillow converts
//! them (Little CMS for Lab, `cmyk2rgb` for CMYK): libtiff's RGBA reader
//! uses its own formulas.

use super::exif::ifd0_tag;
use super::pixels;
use crate::libtiff::TiffReader;
use crate::limits::Limits;
use crate::memory;
use crate::orientation::Orientation;

const COMPRESSION: u16 = 259;
const PHOTOMETRIC: u16 = 262;
const BITS_PER_SAMPLE: u16 = 258;
const FILL_ORDER: u16 = 266;
pub(super) const SAMPLE_FORMAT: u16 = 339;

/// Whether libtiff reads this TIFF as Pillow does where the `tiff` crate
/// does not: JPEG or old-style JPEG compression; palette, YCbCr or
/// CIELab photometric interpretation; samples under 8 bits; bits stored
/// least significant first (FillOrder 2).
pub(super) fn prefers_libtiff(data: &[u8]) -> bool {
    let tag = |t| ifd0_tag(data, t);
    matches!(tag(COMPRESSION), Some(6 | 7))
        || matches!(tag(PHOTOMETRIC), Some(3 | 6 | 8 | 9 | 10))
        || (tag(PHOTOMETRIC) == Some(5) && tag(BITS_PER_SAMPLE) == Some(16))
        || matches!(tag(BITS_PER_SAMPLE), Some(1..=7))
        || tag(FILL_ORDER) == Some(2)
}

/// libtiff's cap on each of its own allocations.
pub(super) fn max_alloc(limits: &Limits) -> usize {
    usize::try_from(limits.max_pixels.saturating_mul(8).max(64 << 20)).unwrap_or(usize::MAX)
}

/// Width, height and orientation of the first image, if libtiff's RGBA
/// reader can convert it.
pub(super) fn header(data: &[u8], limits: &Limits) -> Result<(usize, usize, Orientation), String> {
    let r = TiffReader::open(data, max_alloc(limits))?;
    Ok((
        r.width as usize,
        r.height as usize,
        Orientation::from_exif(r.orientation),
    ))
}

/// Decoded samples as stored: 8- or 16-bit.
pub(super) enum Samples {
    U8(Vec<u8>),
    U16(Vec<u16>),
}

/// The colour model of a TIFF read as stored samples.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Model {
    Gray,
    Rgb,
    Cmyk,
    /// CIE L*a*b* with signed a* and b* (photometric 8).
    Lab,
}

/// The first image's samples as stored, with their count per pixel (1
/// gray, 2 gray + alpha, 3 RGB, 4 RGBA), when it is gray or RGB of 8- or
/// 16-bit unsigned samples; CMYK of 8 or 16 bits as RGB, converted as
/// Pillow converts it (the high byte of 16-bit samples, then `cmyk2rgb`).
/// `None` for any other layout: the RGBA reader's then. Call after
/// [`header`]'s size passed the limits.
pub(super) fn decode_samples(data: &[u8], limits: &Limits) -> Option<Result<(Samples, usize, usize, usize), String>> {
    // The tags first: most TIFFs that get here are not read this way.
    let model = match ifd0_tag(data, PHOTOMETRIC) {
        Some(1) => Model::Gray,
        Some(2) => Model::Rgb,
        Some(5) => Model::Cmyk,
        Some(8) => Model::Lab,
        _ => return None,
    };
    if !matches!(ifd0_tag(data, SAMPLE_FORMAT), None | Some(1)) {
        return None;
    }
    let mut r = TiffReader::open(data, max_alloc(limits)).ok()?;
    let layout = r.sample_layout();
    let spp = usize::from(layout.samples_per_pixel);
    let samples_fit = match model {
        Model::Gray => matches!(spp, 1 | 2),
        Model::Rgb => matches!(spp, 3 | 4),
        Model::Cmyk => spp == 4,
        Model::Lab => spp == 3 && layout.bits_per_sample == 8,
    };
    if !samples_fit || !matches!(layout.bits_per_sample, 8 | 16) {
        return None;
    }
    let (w, h) = (r.width as usize, r.height as usize);
    let len = w * h * spp;
    let mut read = || -> Result<Samples, String> {
        let alloc = |n| format!("cannot allocate {n} bytes");
        Ok(match layout.bits_per_sample {
            8 => {
                let mut v: Vec<u8> = memory::zeroed(len).map_err(alloc)?;
                r.read_samples(&mut v)?;
                Samples::U8(v)
            }
            _ => {
                let mut v: Vec<u16> = memory::zeroed(len).map_err(alloc)?;
                r.read_samples(bytemuck::cast_slice_mut(&mut v))?;
                Samples::U16(v)
            }
        })
    };
    Some(read().and_then(|s| {
        Ok(match (model, s) {
            (Model::Cmyk, s) => (Samples::U8(cmyk_as_rgb(s)), 3, w, h),
            (Model::Lab, Samples::U8(lab)) => (Samples::U8(lab_as_srgb(lab)?), 3, w, h),
            (_, s) => (s, spp, w, h),
        })
    }))
}

/// CMYK samples as RGB, Pillow's way: 16-bit samples by their high byte.
fn cmyk_as_rgb(samples: Samples) -> Vec<u8> {
    let cmyk = match samples {
        Samples::U8(v) => v,
        Samples::U16(v) => v.iter().map(|s| (s >> 8) as u8).collect(),
    };
    let mut rgb = vec![0; cmyk.len() / 4 * 3]; // bounded: as the samples read
    pixels::cmyk_to_rgb(&cmyk, false, &mut rgb);
    rgb
}

/// CIE L*a*b* samples (a* and b* signed) as sRGB the way Pillow's
/// `convert("RGB")` of its LAB mode makes them: Little CMS from its D50
/// Lab profile to its sRGB profile, perceptual intent.
fn lab_as_srgb(mut lab: Vec<u8>) -> Result<Vec<u8>, String> {
    use lcms2::{CIExyY, GlobalContext, Intent, PixelFormat, Profile, Transform};
    for px in lab.chunks_exact_mut(3) {
        px[1] ^= 0x80;
        px[2] ^= 0x80;
    }
    let profile = Profile::new_lab2_context(GlobalContext::new(), CIExyY::d50()).map_err(|e| e.to_string())?;
    let transform = Transform::new(
        &profile,
        PixelFormat::Lab_8,
        &Profile::new_srgb(),
        PixelFormat::RGB_8,
        Intent::Perceptual,
    )
    .map_err(|e| format!("no Lab to sRGB transform: {e}"))?;
    transform.transform_in_place(&mut lab);
    Ok(lab)
}

/// The first image as RGBA pixels whose little-endian bytes are R, G, B
/// and A (view them with `bytemuck::cast_slice`), rows as stored (the
/// orientation is the caller's). Call after [`header`]'s size passed the
/// limits.
pub(super) fn decode_rgba(data: &[u8], limits: &Limits) -> Result<(Vec<u32>, usize, usize), String> {
    let mut r = TiffReader::open(data, max_alloc(limits))?;
    let (w, h) = (r.width as usize, r.height as usize);
    let mut raster: Vec<u32> = memory::zeroed(w * h).map_err(|n| format!("cannot allocate {n} bytes"))?;
    r.read_rgba(&mut raster)?;
    // R is the low byte of each pixel, on any host.
    for px in &mut raster {
        *px = px.to_le();
    }
    Ok((raster, w, h))
}

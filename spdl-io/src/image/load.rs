//! Image loading: probe the header (dimensions, EXIF orientation) and
//! check limits before allocating, decode (libjpeg-turbo for JPEG with
//! DCT-domain downscaling; the `image` crate for PNG, WebP, GIF, BMP, PNM,
//! QOI and TIFF, libtiff for the TIFFs it lacks; FFmpeg for any other
//! image format it reads), convert to the output pixel format, crop/resize
//! and orient straight into the output.
//!
//! Damage that Pillow reads past is read past here too: a PNG without its
//! IEND chunk, a JPEG without EOI (both only when the image data is
//! complete), a GIF whose logical screen does not cover its first frame
//! (grown to cover it), and a lossy WebP flagged as having alpha that it
//! does not have (see `repair`).

use image::{ColorType, ImageDecoder, ImageError, ImageFormat};
use ndarray::Array3;

use super::config::ImageConfig;
use super::containers;
use super::dds;
use super::exif::ifd0_tag;
use super::ffmpeg::{self, FirstFrame};
use super::jpeg;
use super::levels::{self, Values};
use super::pixels::{self, Sample};
use super::probe::{guarded, image_decoder, read_source, Codec, Encoded};
use super::rasters::{self, Pixels};
use super::resize::{self, Fit, Rect};
use super::tga;
use super::tiff;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::media::convert::PixelFormat;
use crate::memory;
use crate::orientation::{orient, Orientation};
use crate::source::Source;

/// Where the output comes from: the stored-image region to sample and the
/// output size, in stored orientation and as displayed.
struct Plan {
    orientation: Orientation,
    /// Region of the stored image (full-resolution pixels).
    region: Rect,
    /// Output size in stored orientation.
    stored: (usize, usize),
    /// Output size as displayed: (width, height).
    displayed: (usize, usize),
    channels: usize,
    /// Whether any resampling is needed (crop or resize).
    resample: bool,
}

impl Plan {
    fn new(img: &Encoded, cfg: &ImageConfig) -> Result<Plan> {
        let channels = cfg.pix_fmt.packed_channels().ok_or_else(|| {
            Error::InvalidConfig(format!(
                "{} is not an image output format (rgb24, bgr24, rgba, gray8)",
                cfg.pix_fmt.name()
            ))
        })?;
        let orientation = if cfg.ignore_orientation {
            Orientation::Normal
        } else {
            img.orientation
        };
        let (dw, dh) = if orientation.swaps_axes() {
            (img.height, img.width)
        } else {
            (img.width, img.height)
        };
        let mut region = Rect::full(dw, dh);
        if let Some(c) = cfg.crop {
            if c.width == 0 || c.height == 0 || (c.left + c.width) as usize > dw || (c.top + c.height) as usize > dh {
                return Err(img.fail(format!("crop {c:?} does not fit the {dw}x{dh} image")));
            }
            region = Rect::from_crop(c);
        }
        let (rw, rh) = (region.w, region.h);
        let side = |v: f64| v.round().max(1.0) as u32;
        let (tw, th) = match (cfg.width, cfg.height) {
            (Some(w), Some(h)) => (w, h),
            (Some(w), None) => (w, side(rh * f64::from(w) / rw)),
            (None, Some(h)) => (side(rw * f64::from(h) / rh), h),
            (None, None) => (side(rw), side(rh)),
        };
        check_output_size(tw, th)?;
        Limits::check(
            &img.name,
            "output pixels per image",
            u64::from(tw) * u64::from(th),
            cfg.limits.max_pixels,
        )?;
        if cfg.fit == Fit::Cover {
            region = region.cover(tw, th);
        }
        let resample = cfg.crop.is_some() || (tw as f64, th as f64) != (rw, rh) || region != Rect::full(dw, dh);
        let stored = if orientation.swaps_axes() {
            (th as usize, tw as usize)
        } else {
            (tw as usize, th as usize)
        };
        Ok(Plan {
            orientation,
            region: region.to_stored(orientation, img.width as f64, img.height as f64),
            stored,
            displayed: (tw as usize, th as usize),
            channels,
            resample,
        })
    }

    fn len(&self) -> usize {
        self.displayed.0 * self.displayed.1 * self.channels
    }
}

/// A decoded image in the output pixel format, possibly DCT-downscaled.
struct Decoded<T> {
    pixels: Vec<T>,
    width: usize,
    height: usize,
    /// Decoded size / stored size (n/8).
    scale: f64,
}

fn decode<T: Sample>(img: &Encoded, plan: &Plan, cfg: &ImageConfig) -> Result<Decoded<T>> {
    match img.codec {
        Codec::Jpeg(h) => {
            let eighths = if plan.resample && cfg.dct_scaling {
                jpeg::dct_eighths(plan.region.w, plan.region.h, plan.stored.0 as u32, plan.stored.1 as u32)
            } else {
                8
            };
            let (w, h2) = jpeg::scaled_size(&h, eighths);
            let mut bytes =
                memory::zeroed(w * h2 * plan.channels).map_err(|n| img.fail(format!("cannot allocate {n} bytes")))?;
            jpeg::decode_into(&img.data, &h, eighths, cfg.pix_fmt, &mut bytes).map_err(|e| img.fail(e))?;
            Ok(Decoded {
                pixels: widen(bytes),
                width: w,
                height: h2,
                scale: eighths as f64 / 8.0,
            })
        }
        Codec::Image(f, color) => match guarded(f, || decode_with_image_crate(&img.data, f, color, plan, cfg)) {
            Ok(d) => Ok(d),
            Err(e @ ImageError::Unsupported(_)) => from_ffmpeg(img, plan, cfg).map_err(|_| img.fail(e)),
            // A PNG whose writer never added the IEND chunk, with all its
            // image data: decoded with the chunk added, as FFmpeg and Pillow
            // decode it. A truncated PNG still fails (its data is short).
            Err(e) if f == ImageFormat::Png && !img.data.ends_with(PNG_IEND) => {
                let closed = [&img.data[..], PNG_IEND].concat();
                guarded(f, || decode_with_image_crate(&closed, f, color, plan, cfg)).map_err(|_| img.fail(e))
            }
            // A TIFF the `tiff` crate fails on (a panic in a tiled planar
            // layout, ...): libtiff, then the first error if it fails too.
            Err(e) if f == ImageFormat::Tiff => from_libtiff(img, plan, cfg).map_err(|_| img.fail(e)),
            Err(e) => Err(img.fail(e)),
        },
        Codec::GrayAlphaTga => {
            let mut la = memory::zeroed(img.width * img.height * 2)
                .map_err(|n| img.fail(format!("cannot allocate {n} bytes")))?;
            tga::decode_gray_alpha(&img.data, &mut la).map_err(|e| img.fail(e))?;
            from_interleaved(img, (&la, 2, false), (img.width, img.height), plan, cfg, T::from_u8)
        }
        Codec::Dds(h) => {
            let channels = h.layout.channels();
            let mut px = memory::zeroed(img.width * img.height * channels)
                .map_err(|n| img.fail(format!("cannot allocate {n} bytes")))?;
            dds::decode(&img.data, &h, &mut px).map_err(|e| img.fail(e))?;
            from_interleaved(
                img,
                (&px, channels, false),
                (img.width, img.height),
                plan,
                cfg,
                T::from_u8,
            )
        }
        Codec::Levels(l) => {
            let size = (img.width, img.height);
            let v = levels::decode(&img.data, l, size, &cfg.limits).map_err(|e| img.fail(e))?;
            from_values(img, &v, plan, cfg)
        }
        Codec::MaskedCursor => {
            let bitmap = guarded(ImageFormat::Bmp, || {
                image::load_from_memory_with_format(&img.data, ImageFormat::Bmp).map(|i| i.into_rgb8())
            })
            .map_err(|e| img.fail(e))?;
            let gray: Vec<u8> = bitmap.pixels().map(|p| p.0[0]).collect();
            if bitmap.dimensions() != (img.width as u32, 2 * img.height as u32) {
                return Err(img.fail("the cursor's bitmap is not twice the cursor's height"));
            }
            let cursor = containers::apply_cursor_mask(&gray, img.width);
            from_interleaved(img, (&cursor, 1, false), (img.width, img.height), plan, cfg, T::from_u8)
        }
        Codec::Raster(r) => {
            let size = (img.width, img.height);
            match rasters::decode(&img.data, &r, &cfg.limits).map_err(|e| img.fail(e))? {
                Pixels::U8(v, channels) => from_interleaved(img, (&v, channels, false), size, plan, cfg, T::from_u8),
                Pixels::U16(v) => from_interleaved(img, (&v, 1, false), size, plan, cfg, T::from_u16),
                Pixels::Numbers(v) => from_values(img, &v, plan, cfg),
            }
        }
        Codec::Libtiff => from_libtiff(img, plan, cfg),
        Codec::Ffmpeg => from_ffmpeg(img, plan, cfg),
    }
}

/// Gray numbers: integers as 16-bit levels, floats as levels of the
/// output type (see `levels`).
fn from_values<T: Sample>(img: &Encoded, v: &Values, plan: &Plan, cfg: &ImageConfig) -> Result<Decoded<T>> {
    let level = |x: f64| match v.integers {
        true => T::from_u16(x.clamp(0.0, 65535.0) as u16),
        false => T::from_level(x),
    };
    from_interleaved(img, (&v.values, 1, false), (img.width, img.height), plan, cfg, level)
}

/// Interleaved pixels of `channels` samples (gray, gray + alpha, RGB,
/// RGBA) of a `size` image, each read through `sample`, converted to the
/// output format; colour `premultiplied` by alpha is made straight first.
fn from_interleaved<S: Copy, T: Sample>(
    img: &Encoded,
    (src, channels, premultiplied): (&[S], usize, bool),
    (width, height): (usize, usize),
    plan: &Plan,
    cfg: &ImageConfig,
    sample: impl Fn(S) -> T,
) -> Result<Decoded<T>> {
    let mut out =
        memory::zeroed(width * height * plan.channels).map_err(|n| img.fail(format!("cannot allocate {n} bytes")))?;
    convert_straight(src, channels, premultiplied, cfg, &mut out, sample).map_err(|e| img.fail(e))?;
    Ok(Decoded {
        pixels: out,
        width,
        height,
        scale: 1.0,
    })
}

/// A TIFF through libtiff: its samples as stored when it is gray or RGB
/// of 8 or 16 bits, else through its RGBA reader.
fn from_libtiff<T: Sample>(img: &Encoded, plan: &Plan, cfg: &ImageConfig) -> Result<Decoded<T>> {
    if let Some(read) = tiff::decode_samples(&img.data, &cfg.limits) {
        let (samples, channels, width, height) = read.map_err(|e| img.fail(e))?;
        let premultiplied = channels == 4 && ifd0_tag(&img.data, EXTRA_SAMPLES) == Some(1);
        let size = (width, height);
        return match samples {
            tiff::Samples::U8(v) => from_interleaved(img, (&v, channels, premultiplied), size, plan, cfg, T::from_u8),
            tiff::Samples::U16(v) => from_interleaved(img, (&v, channels, premultiplied), size, plan, cfg, T::from_u16),
        };
    }
    from_libtiff_rgba(img, plan, cfg)
}

/// A TIFF through libtiff's RGBA reader.
fn from_libtiff_rgba<T: Sample>(img: &Encoded, plan: &Plan, cfg: &ImageConfig) -> Result<Decoded<T>> {
    let (mut rgba, w, h) = tiff::decode_rgba(&img.data, &cfg.limits).map_err(|e| img.fail(e))?;
    // libtiff premultiplies straight alpha and keeps premultiplied alpha.
    if matches!(ifd0_tag(&img.data, EXTRA_SAMPLES), Some(1 | 2)) {
        pixels::unpremultiply(bytemuck::cast_slice_mut::<u32, u8>(&mut rgba));
    }
    from_interleaved(
        img,
        (bytemuck::cast_slice(&rgba), 4, false),
        (w, h),
        plan,
        cfg,
        T::from_u8,
    )
}

/// An output size is 1..=65536 on each side.
pub(crate) fn check_output_size(width: u32, height: u32) -> Result<()> {
    match (1..=1 << 16).contains(&width) && (1..=1 << 16).contains(&height) {
        true => Ok(()),
        false => Err(Error::InvalidConfig(format!(
            "output size {width}x{height} is out of range (1..=65536)"
        ))),
    }
}

/// The PNG end chunk: length 0, `IEND`, its CRC.
const PNG_IEND: &[u8] = &[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82];

/// A zeroed buffer for the image crate's path, its failure as the image
/// crate's out-of-memory error.
fn buffer<T: memory::Pooled>(len: usize) -> image::ImageResult<Vec<T>> {
    memory::zeroed(len).map_err(|_| {
        ImageError::Limits(image::error::LimitError::from_kind(
            image::error::LimitErrorKind::InsufficientMemory,
        ))
    })
}

/// A GIF's first frame is a palette image in Pillow, whose RGB shows a
/// transparent pixel as its palette colour; the image crate gives (0, 0,
/// 0, 0). Transparent pixels of `rgba` get that colour (alpha stays 0).
fn show_transparent_as_pillow(gif_data: &[u8], rgba: &mut [u8]) {
    let Some(colour) = first_frame_transparent_colour(gif_data) else {
        return;
    };
    for px in rgba.chunks_exact_mut(4).filter(|px| px[3] == 0) {
        px[..3].copy_from_slice(&colour);
    }
}

/// The palette colour of a GIF's first frame's transparent index (its
/// local palette, else the global one); headers only, no pixel is decoded.
fn first_frame_transparent_colour(data: &[u8]) -> Option<[u8; 3]> {
    let mut decoder = gif::DecodeOptions::new().read_info(data).ok()?;
    let (index, local) = {
        let frame = decoder.next_frame_info().ok()??;
        (usize::from(frame.transparent?), frame.palette.clone())
    };
    let palette = local.as_deref().or(decoder.global_palette())?;
    palette.get(3 * index..3 * index + 3)?.try_into().ok()
}

/// The red, green and blue bit counts of a 16-bit BMP with the 5:5:5 or
/// 5:6:5 layouts Pillow reads (`None` for any other BMP).
fn bmp_16_bit_channels(data: &[u8]) -> Option<[u32; 3]> {
    let u32_at = |at: usize| {
        data.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if u32_at(14)? < 40 || data.get(28..30)? != [16, 0] {
        return None;
    }
    match (u32_at(30)?, u32_at(54), u32_at(58), u32_at(62)) {
        (0, ..) | (3, Some(0x7c00), Some(0x3e0), Some(0x1f)) => Some([5, 5, 5]),
        (3, Some(0xf800), Some(0x7e0), Some(0x1f)) => Some([5, 6, 5]),
        _ => None,
    }
}

fn decode_with_image_crate<T: Sample>(
    data: &[u8],
    f: ImageFormat,
    color: ColorType,
    plan: &Plan,
    cfg: &ImageConfig,
) -> image::ImageResult<Decoded<T>> {
    let decoder = image_decoder(data, f, &cfg.limits)?;
    let (w, h) = decoder.dimensions();
    let (w, h) = (w as usize, h as usize);
    let mut out = buffer(w * h * plan.channels)?;
    let in_channels = usize::from(color.channel_count());
    let premultiplied = f == ImageFormat::Tiff && in_channels == 4 && ifd0_tag(data, EXTRA_SAMPLES) == Some(1);
    match color {
        ColorType::L8 | ColorType::La8 | ColorType::Rgb8 | ColorType::Rgba8 => {
            let mut buf = buffer::<u8>(decoder.total_bytes() as usize)?;
            decoder.read_image(&mut buf)?;
            match (f, color) {
                (ImageFormat::Gif, ColorType::Rgba8) => show_transparent_as_pillow(data, &mut buf),
                (ImageFormat::Bmp, ColorType::Rgb8 | ColorType::Rgba8) => {
                    if let Some(bits) = bmp_16_bit_channels(data) {
                        pixels::truncated_levels(&mut buf, in_channels, bits);
                    }
                }
                _ => {}
            }
            convert_straight(&buf, in_channels, premultiplied, cfg, &mut out, T::from_u8)?;
        }
        ColorType::L16 | ColorType::La16 | ColorType::Rgb16 | ColorType::Rgba16 => {
            let mut buf = buffer::<u16>(decoder.total_bytes() as usize / 2)?;
            decoder.read_image(bytemuck::cast_slice_mut(&mut buf))?;
            convert_straight(&buf, in_channels, premultiplied, cfg, &mut out, T::from_u16)?;
        }
        _ => {
            let rgba = image::DynamicImage::from_decoder(decoder)?.into_rgba16();
            pixels::convert(rgba.as_raw(), 4, cfg.pix_fmt, &mut out, T::from_u16);
        }
    }
    Ok(Decoded {
        pixels: out,
        width: w,
        height: h,
        scale: 1.0,
    })
}

/// The TIFF tag saying what a fourth sample is (1: alpha premultiplied
/// into the colour, 2: straight alpha).
const EXTRA_SAMPLES: u16 = 338;

/// Pixels of `channels` samples into the output format; colour
/// `premultiplied` by alpha is divided by it first, in the output's
/// sample type (for 8-bit output after taking the high byte, as Pillow).
fn convert_straight<S: Copy, T: Sample>(
    src: &[S],
    channels: usize,
    premultiplied: bool,
    cfg: &ImageConfig,
    out: &mut [T],
    sample: impl Fn(S) -> T,
) -> image::ImageResult<()> {
    if !premultiplied {
        pixels::convert(src, channels, cfg.pix_fmt, out, sample);
        return Ok(());
    }
    let mut rgba = buffer::<T>(src.len())?;
    pixels::convert(src, 4, PixelFormat::Rgba, &mut rgba, sample);
    pixels::unpremultiply(&mut rgba);
    pixels::convert(&rgba, 4, cfg.pix_fmt, out, |v| v);
    Ok(())
}

/// Decodes `img` into `out` (exactly the plan's output size).
fn decode_into<T: Sample>(img: &Encoded, plan: &Plan, cfg: &ImageConfig, out: &mut [T]) -> Result<()> {
    // Fast path: a JPEG shown as stored, at its own size, in 8 bits is
    // decoded straight into the output.
    if let (Codec::Jpeg(h), false, Orientation::Normal, 1) =
        (img.codec, plan.resample, plan.orientation, std::mem::size_of::<T>())
    {
        let bytes = bytemuck::cast_slice_mut(out);
        return jpeg::decode_into(&img.data, &h, 8, cfg.pix_fmt, bytes).map_err(|e| img.fail(e));
    }
    let d = decode::<T>(img, plan, cfg)?;
    let (sw, sh) = plan.stored;
    let mut scratch = Vec::new();
    let resampled: &[T] = if plan.resample {
        let target: &mut [T] = if plan.orientation == Orientation::Normal {
            &mut *out
        } else {
            scratch.resize(out.len(), T::default());
            &mut scratch
        };
        let region = plan.region.scaled(d.scale);
        resize::resize(
            &d.pixels,
            (d.width, d.height),
            region,
            target,
            (sw, sh),
            plan.channels,
            cfg.interpolation,
        )
        .map_err(|e| img.fail(format!("resize failed: {e}")))?;
        if plan.orientation == Orientation::Normal {
            return Ok(());
        }
        &scratch
    } else {
        &d.pixels
    };
    if resampled.len() != out.len() {
        return Err(img.fail("decoded size differs from the header"));
    }
    let px = plan.channels * std::mem::size_of::<T>();
    let (src, dst) = (bytemuck::cast_slice(resampled), bytemuck::cast_slice_mut(out));
    if plan.orientation == Orientation::Normal {
        dst.copy_from_slice(src);
    } else {
        let dst_stride = plan.displayed.0 * px;
        orient(src, sw * px, sw, sh, px, plan.orientation, dst, dst_stride);
    }
    Ok(())
}

fn load<T: Sample>(src: Source, cfg: &ImageConfig) -> Result<Array3<T>> {
    cfg.validate()?;
    let (data, name) = read_source(src, &cfg.limits)?;
    let img = Encoded::probe(data, name, &cfg.limits)?;
    let plan = Plan::new(&img, cfg)?;
    let mut out =
        memory::zeroed::<T>(plan.len()).map_err(|n| img.fail(format!("cannot allocate {n} bytes for the output")))?;
    decode_into(&img, &plan, cfg, &mut out)?;
    let (w, h) = plan.displayed;
    Array3::from_shape_vec((h, w, plan.channels), out).map_err(|e| img.fail(e))
}

/// Decodes an image into an (H, W, C) `u8` array (16-bit sources keep
/// their high byte).
///
/// ```no_run
/// use spdl_io::{load_image, ImageConfig};
/// let img = load_image("photo.jpg", &ImageConfig::default().with_size(224, 224))?;
/// assert_eq!(img.shape(), [224, 224, 3]);
/// # Ok::<(), spdl_io::Error>(())
/// ```
///
/// # Errors
/// [`Error::NotFound`], [`Error::Image`] (not an image, corrupt data),
/// [`Error::Limit`] (declared size over [`ImageConfig::limits`]),
/// [`Error::InvalidConfig`].
pub fn load_image(src: impl Into<Source>, config: &ImageConfig) -> Result<Array3<u8>> {
    load(src.into(), config)
}

/// As [`load_image`], into `u16` samples: 16-bit sources keep full
/// precision, 8-bit sources are scaled by 257.
///
/// # Errors
/// As [`load_image`].
pub fn load_image_u16(src: impl Into<Source>, config: &ImageConfig) -> Result<Array3<u16>> {
    load(src.into(), config)
}

/// Decodes one source into a batch slot of the configured output size.
pub(crate) fn load_into(src: Source, cfg: &ImageConfig, out: &mut [u8]) -> Result<()> {
    let (data, name) = read_source(src, &cfg.limits)?;
    let img = Encoded::probe(data, name, &cfg.limits)?;
    let plan = Plan::new(&img, cfg)?;
    if plan.len() != out.len() {
        return Err(img.fail("output size differs from the batch's slot size"));
    }
    decode_into(&img, &plan, cfg, out)
}

/// The first frame as FFmpeg decodes it, in the output pixel format.
fn from_ffmpeg<T: Sample>(img: &Encoded, plan: &Plan, cfg: &ImageConfig) -> Result<Decoded<T>> {
    let (frame, width, height) = ffmpeg::first_frame(img.data.clone(), &img.name, cfg.pix_fmt, cfg.limits)?;
    let mut bytes = match frame {
        FirstFrame::Converted(bytes) => bytes,
        // 16-bit samples: kept for 16-bit output, their high byte for 8-bit.
        FirstFrame::Wide { samples, channels } => {
            return from_interleaved(
                img,
                (&samples, channels, false),
                (width, height),
                plan,
                cfg,
                T::from_u16,
            );
        }
    };
    let channels = plan.channels;
    if img.format == "targa" && tga::is_rgb555(&img.data) {
        pixels::truncated_levels(&mut bytes, channels, [5, 5, 5]);
    }
    if img.format == "xbm" {
        // Pillow reads an XBM's set bits as white, FFmpeg as black.
        for px in bytes.chunks_exact_mut(channels) {
            px[..channels.min(3)].iter_mut().for_each(|v| *v = !*v);
        }
    }
    Ok(Decoded {
        pixels: widen(bytes),
        width,
        height,
        scale: 1.0,
    })
}

/// 8-bit samples as `T` (no copy for `u8`).
fn widen<T: Sample>(bytes: Vec<u8>) -> Vec<T> {
    if std::mem::size_of::<T>() == 1 {
        return bytemuck::allocation::cast_vec(bytes);
    }
    bytes.into_iter().map(T::from_u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian gray TIFF (BigTIFF when `big`) with one
    /// uncompressed strip of `bits`-bit samples of `sample_format` (1:
    /// unsigned integers, 3: IEEE floats).
    fn gray_tiff(big: bool, (width, height): (u16, u16), bits: u16, sample_format: u16, pixels: &[u8]) -> Vec<u8> {
        let entries: [(u16, u64); 9] = [
            (256, u64::from(width)),         // ImageWidth
            (257, u64::from(height)),        // ImageLength
            (258, u64::from(bits)),          // BitsPerSample
            (259, 1),                        // Compression: none
            (262, 1),                        // Photometric: black is zero
            (273, 0),                        // StripOffsets (set below)
            (278, u64::from(height)),        // RowsPerStrip
            (279, pixels.len() as u64),      // StripByteCounts
            (339, u64::from(sample_format)), // SampleFormat
        ];
        let (offset_bytes, count_bytes, entry_bytes) = if big { (8, 8, 20) } else { (4, 2, 12) };
        let header = if big { 16 } else { 8 };
        let data_at = (header + count_bytes + entry_bytes * entries.len() + offset_bytes) as u64;
        let mut b = Vec::new();
        let mut put = |v: u64, n: usize| b.extend(&v.to_le_bytes()[..n]);
        if big {
            [0x4949, 43, 8, 0].into_iter().for_each(|v| put(v, 2));
        } else {
            [0x4949, 42].into_iter().for_each(|v| put(v, 2));
        }
        put(header as u64, offset_bytes);
        put(entries.len() as u64, count_bytes);
        for (tag, value) in entries {
            let long = tag == 273 || tag == 279;
            put(u64::from(tag), 2);
            put(
                if long {
                    if big {
                        16
                    } else {
                        4
                    }
                } else {
                    3
                },
                2,
            ); // LONG8 / LONG / SHORT
            put(1, offset_bytes);
            put(if tag == 273 { data_at } else { value }, offset_bytes);
        }
        put(0, offset_bytes); // no next IFD
        b.extend(pixels);
        b
    }

    #[test]
    fn float_tiff_samples_are_an_error_not_garbage() {
        let ones = 0x3C00u16.to_le_bytes().repeat(8); // 1.0 as IEEE half floats
        let tiff = gray_tiff(false, (4, 2), 16, 3, &ones);
        let err = load_image(Source::from_bytes(tiff, "f16.tif"), &ImageConfig::default()).unwrap_err();
        assert!(err.to_string().contains("floating-point samples"), "{err}");
        // The same layout with integer samples decodes.
        let tiff = gray_tiff(false, (4, 2), 8, 1, &[7; 8]);
        let image = load_image(Source::from_bytes(tiff, "u8.tif"), &ImageConfig::default()).unwrap();
        assert!(image.iter().all(|&v| v == 7));
    }

    #[test]
    fn gray_number_tiffs_are_clipped_levels_floats_as_pillow_integers_as_16_bits() {
        let floats: Vec<u8> = [-1.5f32, 0.7, 3.9, 300.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let ints: Vec<u8> = [-7i32, 0, 200, 70000].iter().flat_map(|v| v.to_le_bytes()).collect();
        for (format, data, u8s, u16s) in [
            (3, floats, [0, 0, 3, 255], [0, 0, 3, 300]),
            (2, ints, [0, 0, 0, 255], [0, 0, 200, 65535]),
        ] {
            let tiff = bytes::Bytes::from(gray_tiff(false, (2, 2), 32, format, &data));
            let cfg = ImageConfig::default();
            let image = load_image(Source::from_bytes(tiff.clone(), "n.tif"), &cfg).unwrap();
            let gray: Vec<u8> = image.as_slice().unwrap().chunks(3).map(|p| p[0]).collect();
            assert_eq!(gray, u8s, "sample format {format}");
            let wide = load_image_u16(Source::from_bytes(tiff, "n.tif"), &cfg).unwrap();
            let gray: Vec<u16> = wide.as_slice().unwrap().chunks(3).map(|p| p[0]).collect();
            assert_eq!(gray, u16s, "sample format {format}");
        }
    }

    #[test]
    fn a_pfm_header_declaring_a_huge_size_is_a_limit_error() {
        for header in ["Pf\n4294967296 4294967296\n-1\n", "Pf\n18446744073709551615 2\n-1\n"] {
            let err = load_image(
                Source::from_bytes(header.as_bytes().to_vec(), "h.pfm"),
                &ImageConfig::default(),
            )
            .unwrap_err();
            assert!(matches!(err, Error::Limit { .. }), "{header:?}: {err}");
        }
    }

    #[test]
    fn bigtiff_decodes_like_classic_tiff() {
        let pixels: Vec<u8> = (0..12u8 * 7).map(|v| v * 3).collect();
        let tiff = gray_tiff(true, (12, 7), 8, 1, &pixels);
        let image = load_image(Source::from_bytes(tiff, "big.tif"), &ImageConfig::default()).unwrap();
        assert_eq!(image.dim(), (7, 12, 3));
        let gray: Vec<u8> = image.as_slice().unwrap().chunks(3).map(|p| p[0]).collect();
        assert_eq!(gray, pixels);
        assert!(image
            .as_slice()
            .unwrap()
            .chunks(3)
            .all(|p| p[0] == p[1] && p[1] == p[2]));
    }
}

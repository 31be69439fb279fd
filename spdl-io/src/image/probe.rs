//! Image headers: the format (from the first bytes), the declared size
//! and EXIF orientation, checked against the limits before anything is
//! decoded, and the decoder that will handle the image.

use std::io::Cursor;

use bytes::Bytes;
use image::error::{DecodingError, ImageFormatHint};
use image::{ColorType, ImageDecoder, ImageError, ImageFormat, ImageReader};

use super::config::ImageConfig;
use super::containers;
use super::dds;
use super::exif::{exif_orientation, ifd0_tag, png_text_orientation, xmp_orientation};
use super::ffmpeg::ffmpeg_probe;
use super::heif::heif_orientation;
use super::jpeg::{self, JpegHeader};
use super::levels::{self, Levels};
use super::rasters;
use super::repair;
use super::tga::gray_alpha_size;
use super::tiff;
use crate::error::{catch_panic, Error, Result};
use crate::limits::Limits;
use crate::orientation::Orientation;
use crate::source::Source;

/// What an image's header declares.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct ImageInfo {
    /// The source name.
    pub source: String,
    /// Format (`jpeg`, `png`, `webp`, `gif`, `bmp`, `tiff`, or FFmpeg's
    /// demuxer name for other formats).
    pub format: String,
    /// Stored width in pixels (before orientation).
    pub width: u32,
    /// Stored height in pixels.
    pub height: u32,
    /// EXIF orientation (1-8 as the EXIF tag numbers them).
    pub orientation: u16,
    /// Colour layout, e.g. `rgb8`, `la16`, `cmyk8`, `ycck8`.
    pub color: String,
}

/// Which decoder handles an image.
#[derive(Debug, Clone, Copy)]
pub(super) enum Codec {
    Jpeg(JpegHeader),
    Image(ImageFormat, ColorType),
    /// Gray + alpha TGA, decoded by `tga`.
    GrayAlphaTga,
    /// A DDS texture's first surface, decoded by `dds`.
    Dds(dds::Header),
    /// Gray 32-bit integers or floats (TIFF, PFM), decoded by `levels`.
    Levels(Levels),
    /// A gray cursor under its AND mask, as a BMP of twice its height
    /// (`containers::masked_cursor_bitmap`).
    MaskedCursor,
    /// A raster format read as Pillow reads it (`rasters`).
    Raster(rasters::Raster),
    /// TIFF through libtiff's RGBA reader (`tiff`).
    Libtiff,
    Ffmpeg,
}

/// An image in memory with what its header says.
pub(super) struct Encoded {
    pub(super) data: Bytes,
    pub(super) name: String,
    pub(super) codec: Codec,
    pub(super) width: usize,
    pub(super) height: usize,
    pub(super) orientation: Orientation,
    pub(super) format: String,
}

pub(super) fn read_source(src: Source, limits: &Limits) -> Result<(Bytes, String)> {
    Ok((src.read_all(limits)?, src.name()))
}

fn image_limits(limits: &Limits) -> image::Limits {
    let mut l = image::Limits::default();
    l.max_alloc = Some(limits.max_pixels.saturating_mul(8).max(64 << 20));
    l
}

impl Encoded {
    /// Reads the header and checks the declared size against the limits.
    pub(super) fn probe(data: Bytes, name: String, limits: &Limits) -> Result<Self> {
        // Cursors and DIBs are read as the icon and BMP they are laid out
        // like; `label` is the format's name when it differs from the
        // decoder's format.
        if let Some((bmp, w, h)) = containers::masked_cursor_bitmap(&data) {
            return Encoded::checked(
                bmp,
                name,
                (Codec::MaskedCursor, w, h, Orientation::Normal),
                "cur",
                limits,
            );
        }
        let dib = || named(&name, ".dib").then(|| repair::dib_as_bmp(&data)).flatten();
        let (data, mut label) = match (repair::cur_as_ico(&data), dib()) {
            (Some(ico), _) => (ico, Some("cur")),
            (None, Some(bmp)) => (bmp, Some("dib")),
            (None, None) => match (containers::icns_largest_entry(&data), containers::dcx_first_page(&data)) {
                (Some(entry), _) => (data.slice(entry), Some("icns")),
                (None, Some(page)) => (data.slice(page), Some("dcx")),
                (None, None) => (data, None),
            },
        };
        let mut format = image::guess_format(&data)
            .ok()
            .or_else(|| is_bigtiff(&data).then_some(ImageFormat::Tiff));
        // Formats only Pillow reads (an XV thumbnail starts like a PAM),
        // and run-length BMPs, read as Pillow reads them.
        let raster = match format {
            None | Some(ImageFormat::Pnm) => rasters::header(&data),
            Some(ImageFormat::Bmp) => rasters::rle_bmp(&data),
            _ => None,
        };
        if let Some(raster) = raster {
            let r = raster.map_err(|e| Error::image(&name, "raster", e))?;
            let (codec, size) = (Codec::Raster(r), (r.width, r.height));
            let format = r.format.to_lowercase();
            return Encoded::checked(
                data,
                name,
                (codec, size.0, size.1, Orientation::Normal),
                &format,
                limits,
            );
        }
        let data = match format {
            Some(ImageFormat::Gif) => repair::gif_with_gray_palette(repair::gif_screen_covering_first_frame(data)),
            Some(ImageFormat::WebP) => repair::webp_without_false_alpha(data),
            Some(ImageFormat::Bmp) => {
                repair::bmp_with_last_row_padding(repair::bmp_offset_past_palette(repair::bmp_with_one_plane(data)))
            }
            Some(ImageFormat::Qoi) => repair::qoi_with_end_marker(data),
            // The image crate reads only RGBA PNG entries; Pillow writes RGB.
            Some(ImageFormat::Ico) => match containers::largest_png_entry(&data) {
                Some(png) => {
                    (format, label) = (Some(ImageFormat::Png), label.or(Some("ico")));
                    data.slice(png)
                }
                None => repair::ico_sizes_from_bmp_headers(data),
            },
            _ => data,
        };
        let (codec, width, height, orientation, format) = match format {
            // TGA has no signature: by its extension and a strict header.
            None if named(&name, ".tga") && gray_alpha_size(&data).is_some() => {
                let (w, h) = gray_alpha_size(&data).unwrap_or_default();
                (Codec::GrayAlphaTga, w, h, Orientation::Normal, "tga".to_string())
            }
            // DDS as Pillow reads it; FFmpeg for variants Pillow refuses.
            Some(ImageFormat::Dds) => match dds::header(&data) {
                Ok(h) => (Codec::Dds(h), h.width, h.height, Orientation::Normal, "dds".to_string()),
                Err(_) => {
                    let (w, h, fmt) = ffmpeg_probe(&data, &name, limits)?;
                    (Codec::Ffmpeg, w, h, Orientation::Normal, fmt)
                }
            },
            Some(ImageFormat::Jpeg) => {
                let h = jpeg::read_header(&data).map_err(|e| Error::image(&name, "jpeg", e))?;
                if h.lossless {
                    let (w, h, _) = ffmpeg_probe(&data, &name, limits)?;
                    (Codec::Ffmpeg, w, h, Orientation::Normal, "jpeg-lossless".to_string())
                } else {
                    (Codec::Jpeg(h), h.width, h.height, h.orientation, "jpeg".to_string())
                }
            }
            None if data.starts_with(b"Pf") => {
                let (w, h, l) = levels::header(&data, limits).map_err(|e| Error::image(&name, "pfm", e))?;
                (Codec::Levels(l), w, h, Orientation::Normal, "pfm".to_string())
            }
            Some(ImageFormat::Tiff) if levels::is_number_tiff(&data) => match levels::header(&data, limits) {
                Ok((w, h, l)) => (Codec::Levels(l), w, h, tiff_orientation(&data), "tiff".to_string()),
                Err(_) => image_crate_probe(&data, &name, ImageFormat::Tiff, label, limits)?,
            },
            Some(ImageFormat::Tiff) if tiff::prefers_libtiff(&data) => match libtiff_probe(&data, limits) {
                Some(probed) => probed,
                None => image_crate_probe(&data, &name, ImageFormat::Tiff, label, limits)?,
            },
            Some(f) if f.reading_enabled() => image_crate_probe(&data, &name, f, label, limits)?,
            _ => {
                let (w, h, fmt) = ffmpeg_probe(&data, &name, limits)?;
                // FFmpeg ignores an AVIF's irot/imir; libavif applies them.
                // Without them, Pillow takes an XMP packet's orientation.
                let o = match fmt.as_str() {
                    "avif" => heif_orientation(&data)
                        .filter(|o| *o != Orientation::Normal)
                        .or_else(|| xmp_packet(&data).and_then(xmp_orientation))
                        .unwrap_or_default(),
                    _ => Orientation::Normal,
                };
                (Codec::Ffmpeg, w, h, o, fmt)
            }
        };
        Encoded::checked(data, name, (codec, width, height, orientation), &format, limits)
    }

    /// The probed image, once its declared size is within the limits.
    fn checked(
        data: Bytes,
        name: String,
        (codec, width, height, orientation): (Codec, usize, usize, Orientation),
        format: &str,
        limits: &Limits,
    ) -> Result<Self> {
        let pixels = (width as u64).saturating_mul(height as u64);
        Limits::check(&name, "pixels per image", pixels, limits.max_pixels)?;
        if pixels == 0 {
            return Err(Error::image(&name, format, "the header declares an empty image"));
        }
        Ok(Encoded {
            data,
            name,
            codec,
            width,
            height,
            orientation,
            format: format.to_string(),
        })
    }

    fn info(&self) -> ImageInfo {
        let color = match self.codec {
            Codec::Jpeg(h) => format!("{:?}8", h.colorspace).to_lowercase(),
            Codec::Image(_, c) => format!("{c:?}").to_lowercase(),
            Codec::GrayAlphaTga => "la8".into(),
            Codec::Levels(_) => "f64".into(),
            Codec::Dds(h) => ["l8", "la8", "rgb8", "rgba8"][h.layout.channels() - 1].into(),
            Codec::Raster(r) => r.color().into(),
            Codec::MaskedCursor => "l8".into(),
            Codec::Libtiff => "rgba8".into(),
            Codec::Ffmpeg => "rgb8".into(),
        };
        ImageInfo {
            source: self.name.clone(),
            format: self.format.clone(),
            width: self.width as u32,
            height: self.height as u32,
            orientation: orientation_number(self.orientation),
            color,
        }
    }

    pub(super) fn fail(&self, reason: impl ToString) -> Error {
        Error::image(&self.name, &self.format, reason)
    }
}

/// What probing found: the decoder, stored width and height, orientation
/// and the format's name.
type Probed = (Codec, usize, usize, Orientation, String);

/// The header as the `image` crate reads it; for what it cannot read, the
/// TIFFs libtiff reads, then whatever FFmpeg reads.
fn image_crate_probe(data: &Bytes, name: &str, f: ImageFormat, label: Option<&str>, limits: &Limits) -> Result<Probed> {
    let fname = label
        .or_else(|| (f == ImageFormat::Pnm).then(|| pnm_name(data)))
        .or(f.extensions_str().first().copied())
        .unwrap_or("image");
    let header = guarded(f, || image_decoder(data, f, limits)).map(|mut d| {
        // An EXIF block (PNG eXIf, WebP EXIF) is read here; TIFF keeps its
        // orientation as a tag of its own.
        let o = match d.exif_metadata().ok().flatten() {
            Some(exif) => exif_orientation(&exif),
            None if f == ImageFormat::Png => png_text_orientation(data).unwrap_or_default(),
            None => d
                .orientation()
                .map_or(Orientation::Normal, |o| Orientation::from_exif(u16::from(o.to_exif()))),
        };
        (d.dimensions(), o, d.color_type())
    });
    let tiff = f == ImageFormat::Tiff;
    match header {
        Ok(((w, h), o, color)) => Ok((Codec::Image(f, color), w as usize, h as usize, o, fname.to_string())),
        // libtiff and FFmpeg 5.1 read float TIFF samples as integers: garbage.
        Err(e @ ImageError::Unsupported(_)) if tiff && ifd0_tag(data, 339) == Some(3) => {
            Err(Error::image(name, fname, format!("floating-point samples: {e}")))
        }
        Err(e) => match tiff.then(|| libtiff_probe(data, limits)).flatten() {
            Some(probed) => Ok(probed),
            // A variant neither reads: FFmpeg's decoder, if it reads the file.
            None if matches!(e, ImageError::Unsupported(_)) => {
                let (w, h, _) = ffmpeg_probe(data, name, limits).map_err(|_| Error::image(name, fname, e))?;
                Ok((Codec::Ffmpeg, w, h, Orientation::Normal, fname.to_string()))
            }
            None => Err(Error::image(name, fname, e)),
        },
    }
}

/// An XMP packet stored in the file (from its `<x:xmpmeta` start tag on).
fn xmp_packet(data: &[u8]) -> Option<&[u8]> {
    const START: &[u8] = b"<x:xmpmeta";
    data.windows(START.len()).position(|w| w == START).map(|at| &data[at..])
}

/// Whether the source's name ends with `ext` (in any case), for formats
/// without a signature.
fn named(name: &str, ext: &str) -> bool {
    name.to_ascii_lowercase().ends_with(ext)
}

/// A Netpbm file's format by its magic number.
fn pnm_name(data: &[u8]) -> &'static str {
    match data.get(1) {
        Some(b'1' | b'4') => "pbm",
        Some(b'2' | b'5') => "pgm",
        Some(b'7') => "pam",
        _ => "ppm",
    }
}

/// The TIFF's header if libtiff's RGBA reader can convert it.
fn libtiff_probe(data: &[u8], limits: &Limits) -> Option<Probed> {
    let (w, h, o) = tiff::header(data, limits).ok()?;
    Some((Codec::Libtiff, w, h, o, "tiff".to_string()))
}

/// A TIFF's Orientation tag (274).
fn tiff_orientation(data: &[u8]) -> Orientation {
    ifd0_tag(data, 274).map_or(Orientation::Normal, |o| Orientation::from_exif(o as u16))
}

fn orientation_number(o: Orientation) -> u16 {
    (1..=8).find(|&n| Orientation::from_exif(n) == o).unwrap_or(1)
}

/// Runs a call into the `image` crate for format `f`, a panic inside it
/// (the `tiff` crate asserts on some tiled layouts) becoming a decoding
/// error that says so. It is not handed to FFmpeg: for the layouts seen
/// panicking, FFmpeg's decoder returns black pixels without an error.
pub(super) fn guarded<T>(f: ImageFormat, run: impl FnOnce() -> image::ImageResult<T>) -> image::ImageResult<T> {
    catch_panic(run).unwrap_or_else(|panic| {
        let reason = format!("its decoder panicked ({panic})");
        Err(ImageError::Decoding(DecodingError::new(
            ImageFormatHint::Exact(f),
            reason,
        )))
    })
}

pub(super) fn image_decoder<'a>(
    data: &'a [u8],
    f: ImageFormat,
    limits: &Limits,
) -> image::ImageResult<impl ImageDecoder + 'a> {
    let mut reader = ImageReader::with_format(Cursor::new(data), f);
    reader.limits(image_limits(limits));
    reader.into_decoder()
}

/// Reads the header of an image without decoding it.
///
/// ```no_run
/// let info = spdl_io::probe_image("photo.jpg")?;
/// println!("{} {}x{} orientation {}", info.format, info.width, info.height, info.orientation);
/// # Ok::<(), spdl_io::Error>(())
/// ```
///
/// # Errors
/// [`Error::NotFound`], [`Error::Image`] for non-images and broken headers,
/// [`Error::Limit`] for declared sizes over the limits.
pub fn probe_image(src: impl Into<Source>) -> Result<ImageInfo> {
    let limits = ImageConfig::default().limits;
    let (data, name) = read_source(src.into(), &limits)?;
    Ok(Encoded::probe(data, name, &limits)?.info())
}

/// BigTIFF (64-bit offsets; the `tiff` crate reads it), whose magic
/// `image::guess_format` does not know.
fn is_bigtiff(data: &[u8]) -> bool {
    data.starts_with(b"II\x2b\x00") || data.starts_with(b"MM\x00\x2b")
}

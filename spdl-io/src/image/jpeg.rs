//! JPEG decoding through libjpeg-turbo (TurboJPEG): header probing, EXIF
//! orientation and Adobe markers, DCT-domain downscaling by 1/2, 1/4 or
//! 1/8, and decoding straight into the caller's buffer in the output
//! pixel format. CMYK and YCCK images are converted to RGB the way Pillow
//! does.

use std::borrow::Cow;
use std::cell::RefCell;

use turbojpeg::{Colorspace, Decompressor, Image, PixelFormat as TjFormat, ScalingFactor};

use super::exif::exif_orientation;
use super::pixels;
use crate::media::convert::PixelFormat;
use crate::memory;
use crate::orientation::Orientation;

/// Progressive scans allowed before a JPEG is rejected (a guard against
/// files crafted to take minutes to decode).
const MAX_SCANS: u32 = 500;

/// What the JPEG headers declare.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JpegHeader {
    pub width: usize,
    pub height: usize,
    pub colorspace: Colorspace,
    pub orientation: Orientation,
    /// An Adobe APP14 marker is present (CMYK data is then stored inverted).
    pub adobe: bool,
    /// A lossless frame (SOF3, SOF7, SOF11, SOF15), which libjpeg-turbo's
    /// TurboJPEG API does not decode.
    pub lossless: bool,
    /// The marker segments must be rewritten before decoding
    /// ([`without_stray_bytes`]).
    pub rewrite: bool,
}

impl JpegHeader {
    pub(crate) fn is_cmyk(&self) -> bool {
        matches!(self.colorspace, Colorspace::CMYK | Colorspace::YCCK)
    }
}

thread_local! {
    /// One decompressor per thread: creating one costs an allocation and a
    /// libjpeg setup that a batch would otherwise repeat for every image.
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's decompressor. After any failure the
/// decompressor is dropped: libjpeg can be left in a failed state (a
/// JPEG-LS marker, a zero dimension), and a reused one then failed every
/// later image on the thread with the earlier image's error.
fn with_decompressor<R>(f: impl FnOnce(&mut Decompressor) -> Result<R, String>) -> Result<R, String> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut d = Decompressor::new().map_err(|e| e.to_string())?;
            d.set_scan_limit(MAX_SCANS).map_err(|e| e.to_string())?;
            *slot = Some(d);
        }
        let result = f(slot.as_mut().expect("set above"));
        if result.is_err() {
            *slot = None;
        }
        result
    })
}

/// Reads the frame header and the APP1 (EXIF) and APP14 (Adobe) markers.
pub(crate) fn read_header(data: &[u8]) -> Result<JpegHeader, String> {
    let markers = scan_markers(data);
    if !markers.frame {
        // Without a frame header libjpeg reads a tables-only stream, and a
        // reused decompressor then reports the previous image's size.
        DECOMPRESSOR.with(|cell| cell.borrow_mut().take());
    }
    let read = |data: &[u8]| with_decompressor(|d| d.read_header(data).map_err(|e| e.to_string()));
    let mut rewrite = false;
    let h = match read(data) {
        // libjpeg only warns about stray bytes before a marker or a bad ICC
        // segment and reads on (so do Pillow and djpeg), but TurboJPEG's
        // header call stops at the warning: the segments are read again
        // without them.
        Err(e) if e.contains("Corrupt JPEG data") => {
            let retried = without_stray_bytes(data).map(|clean| read(&clean));
            rewrite = matches!(retried, Some(Ok(_)));
            if rewrite {
                tracing::warn!(target: "spdl_io::jpeg", "{e}");
            }
            retried.unwrap_or(Err(e))
        }
        h => h,
    };
    let h = match h {
        Ok(h) if markers.frame || (h.width > 0 && h.height > 0) => h,
        other => {
            let detail = other.err().map_or(String::new(), |e| format!(" ({e})"));
            return Err(format!(
                "the data ends before the frame header (SOF): truncated, or not a JPEG{detail}"
            ));
        }
    };
    Ok(JpegHeader {
        width: h.width,
        height: h.height,
        colorspace: h.colorspace,
        orientation: markers.exif.map_or(Orientation::Normal, exif_orientation),
        adobe: markers.adobe,
        lossless: markers.lossless,
        rewrite,
    })
}

/// What the marker segments before the first scan say.
#[derive(Default)]
struct Markers<'a> {
    /// The first APP1 EXIF block, after `Exif\0\0`.
    exif: Option<&'a [u8]>,
    /// An APP14 Adobe segment (CMYK/YCCK transform).
    adobe: bool,
    /// A lossless (SOF3/7/11/15) frame header.
    lossless: bool,
    /// A complete frame header (any SOF).
    frame: bool,
}

/// Reads the marker segments up to the first scan as libjpeg does: fill
/// bytes (`FF FF ...`) before a marker and stray bytes between segments
/// (which libjpeg skips with a warning) do not end the scan, so an EXIF
/// segment after them is still found.
fn scan_markers(data: &[u8]) -> Markers<'_> {
    let mut m = Markers::default();
    let mut i = 2; // after SOI
    while i + 4 <= data.len() {
        if data[i] != 0xFF || data[i + 1] == 0xFF {
            i += 1; // a stray byte, or a fill byte before the marker
            continue;
        }
        let marker = data[i + 1];
        if marker == 0xDA || marker == 0xD9 {
            break; // start of scan / end of image
        }
        if matches!(marker, 0x00 | 0x01 | 0xD0..=0xD7) {
            i += 2; // no length: a stuffed byte, TEM or a restart marker
            continue;
        }
        let len = usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]]));
        let Some(body) = data.get(i + 4..i + 2 + len.max(2)) else {
            break;
        };
        match marker {
            0xE1 if m.exif.is_none() && body.starts_with(b"Exif\0\0") => m.exif = Some(&body[6..]),
            0xEE if body.starts_with(b"Adobe") => m.adobe = true,
            0xC0..=0xCF if ![0xC4, 0xC8, 0xCC].contains(&marker) => {
                m.frame = true;
                m.lossless |= [0xC3, 0xC7, 0xCB, 0xCF].contains(&marker);
            }
            _ => {}
        }
        i += 2 + len.max(2);
    }
    m
}

/// The JPEG with its marker segments (up to the first scan) copied one by
/// one: without stray bytes between them (libjpeg's "extraneous bytes
/// before marker" warning), without fill bytes, and without ICC profile
/// segments (a misplaced or broken one is another warning, and colours are
/// not managed here). `None` when no scan is found.
fn without_stray_bytes(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = data.get(..2)?.to_vec(); // SOI
    let mut i = 2;
    while i + 4 <= data.len() {
        if data[i] != 0xFF || data[i + 1] == 0xFF {
            i += 1;
            continue;
        }
        let marker = data[i + 1];
        if marker == 0xDA {
            out.extend_from_slice(&data[i..]);
            return Some(out);
        }
        if matches!(marker, 0x00 | 0x01 | 0xD0..=0xD7) {
            i += 2;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]])).max(2);
        let segment = data.get(i..i + 2 + len)?;
        if !(marker == 0xE2 && segment[4..].starts_with(b"ICC_PROFILE")) {
            out.extend_from_slice(segment);
        }
        i += 2 + len;
    }
    None
}

/// The smallest DCT-domain scale `n/8` (n = 1, 2, 4 or 8) that keeps a
/// `w` x `h` region at least `tw` x `th`: libjpeg-turbo then runs a reduced
/// `n x n` IDCT, which also low-pass filters like an area resize. Scales
/// that are not powers of two (3/8, 5/8, ...) use libjpeg-turbo's non-SIMD
/// IDCTs and measured no faster (BENCHMARKS.md).
pub(crate) fn dct_eighths(w: f64, h: f64, tw: u32, th: u32) -> usize {
    [1usize, 2, 4, 8]
        .into_iter()
        .find(|&n| w * n as f64 / 8.0 >= f64::from(tw) && h * n as f64 / 8.0 >= f64::from(th))
        .unwrap_or(8)
}

/// The size of the image decoded at scale `eighths/8`.
pub(crate) fn scaled_size(header: &JpegHeader, eighths: usize) -> (usize, usize) {
    let f = ScalingFactor::new(eighths, 8);
    (f.scale(header.width), f.scale(header.height))
}

fn tj_format(fmt: PixelFormat) -> Option<(TjFormat, usize)> {
    let tj = match fmt {
        PixelFormat::Rgb24 => TjFormat::RGB,
        PixelFormat::Bgr24 => TjFormat::BGR,
        PixelFormat::Rgba => TjFormat::RGBA,
        PixelFormat::Gray8 => TjFormat::GRAY,
        _ => return None,
    };
    Some((tj, fmt.packed_channels()?))
}

/// Decodes at scale `eighths/8` into `out` (exactly the scaled size in
/// `fmt`). CMYK/YCCK images are decoded to CMYK and converted to RGB first.
///
/// A file that ends without its EOI marker but with every scan complete (a
/// writer that never closed the file) is decoded with the marker added,
/// as libjpeg's `djpeg` and FFmpeg decode it; it is accepted only if that
/// decode is clean, so a truncated file stays an error.
pub(crate) fn decode_into(
    data: &[u8],
    header: &JpegHeader,
    eighths: usize,
    fmt: PixelFormat,
    out: &mut [u8],
) -> Result<(), String> {
    let data = readable(data, header)?;
    let data = &data[..];
    match decode_data(data, header, eighths, fmt, out, true) {
        Err(e) if e.contains("Premature end of JPEG file") && !data.ends_with(&[0xFF, 0xD9]) => {
            let closed = [data, &[0xFF, 0xD9]].concat();
            decode_data(&closed, header, eighths, fmt, out, false).map_err(|_| e)
        }
        done => done,
    }
}

/// [`decode_into`] of `data` as it is; `tolerant` accepts libjpeg's
/// "Corrupt JPEG data" warnings ([`tolerate_corrupt_data`]).
fn decode_data(
    data: &[u8],
    header: &JpegHeader,
    eighths: usize,
    fmt: PixelFormat,
    out: &mut [u8],
    tolerant: bool,
) -> Result<(), String> {
    let (w, h) = scaled_size(header, eighths);
    let (tj, channels) = tj_format(fmt).ok_or_else(|| format!("{} output is not supported for images", fmt.name()))?;
    if out.len() != w * h * channels {
        return Err("output buffer does not match the decoded size".into());
    }
    let decompress = |format: TjFormat, channels: usize, pixels: &mut [u8]| {
        decompress(data, (w, h, eighths), (format, channels), pixels, tolerant)
    };
    if !header.is_cmyk() {
        return decompress(tj, channels, out);
    }
    let buffer = |len: usize| memory::zeroed(len).map_err(|n| format!("cannot allocate {n} bytes"));
    let mut cmyk = buffer(w * h * 4)?;
    decompress(TjFormat::CMYK, 4, &mut cmyk)?;
    let mut rgb = buffer(w * h * 3)?;
    pixels::cmyk_to_rgb(&cmyk, header.adobe, &mut rgb);
    pixels::convert_u8(&rgb, 3, fmt, out);
    Ok(())
}

/// `data` with its marker segments rewritten when the header says they
/// must be ([`without_stray_bytes`]), else `data` itself.
fn readable<'a>(data: &'a [u8], header: &JpegHeader) -> Result<Cow<'a, [u8]>, String> {
    match header.rewrite {
        true => Ok(Cow::Owned(
            without_stray_bytes(data).ok_or("the marker segments cannot be read")?,
        )),
        false => Ok(Cow::Borrowed(data)),
    }
}

/// Decodes `data` at `eighths/8` of its size (`w` x `h` once scaled) into
/// `pixels` in TurboJPEG's `format` of `channels` samples.
fn decompress(
    data: &[u8],
    (w, h, eighths): (usize, usize, usize),
    (format, channels): (TjFormat, usize),
    pixels: &mut [u8],
    tolerant: bool,
) -> Result<(), String> {
    with_decompressor(|d| {
        d.set_scaling_factor(ScalingFactor::new(eighths, 8))
            .map_err(|e| e.to_string())?;
        let image = Image {
            pixels,
            width: w,
            pitch: w * channels,
            height: h,
            format,
        };
        match d.decompress(data, image) {
            Err(e) if tolerant => tolerate_corrupt_data(e),
            done => done.map_err(|e| e.to_string()),
        }
    })
}

/// The samples of a JPEG at full size as libjpeg gives them, with their
/// count per pixel: RGB (gray repeated), or a CMYK JPEG's samples as
/// stored (not inverted, not converted); YCCK is refused (libjpeg would
/// convert it). What a texture holding JPEG data (`blp`) needs. Call after
/// the header's size passed the limits.
pub(crate) fn decode_samples(data: &[u8], header: &JpegHeader) -> Result<(Vec<u8>, usize), String> {
    let (format, channels) = match header.colorspace {
        Colorspace::YCCK => return Err("YCCK JPEG data is not read as stored samples".into()),
        Colorspace::CMYK => (TjFormat::CMYK, 4),
        _ => (TjFormat::RGB, 3),
    };
    let data = readable(data, header)?;
    let data = &data[..];
    let (w, h) = (header.width, header.height);
    let mut pixels = memory::zeroed(w * h * channels).map_err(|n| format!("cannot allocate {n} bytes"))?;
    decompress(data, (w, h, 8), (format, channels), &mut pixels, true)?;
    Ok((pixels, channels))
}

/// libjpeg's "Corrupt JPEG data: ..." warnings (extraneous bytes before a
/// marker, a bad Huffman code) come after the whole image was decoded, with
/// the damaged blocks filled in; Pillow and OpenCV accept such images, and
/// so do we (the warning goes to `tracing`). Every other failure, including
/// "Premature end of JPEG file" (truncation, which Pillow also refuses), is
/// an error.
fn tolerate_corrupt_data(e: turbojpeg::Error) -> Result<(), String> {
    match e {
        turbojpeg::Error::TurboJpegError(msg) if msg.starts_with("Corrupt JPEG data") => {
            tracing::warn!(target: "spdl_io::jpeg", "{msg}");
            Ok(())
        }
        e => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_before_the_scan() {
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend([0xFF, 0xEE, 0x00, 0x07]);
        jpeg.extend(b"Adobe");
        jpeg.extend([0xFF, 0xE1, 0x00, 0x0A]);
        jpeg.extend(b"Exif\0\0MM");
        jpeg.extend([0xFF, 0xC3, 0x00, 0x02]); // a lossless frame header
        jpeg.extend([0xFF, 0xDA, 0x00, 0x02]);
        let m = scan_markers(&jpeg);
        assert!(m.adobe && m.lossless && m.frame);
        assert_eq!(m.exif, Some(&b"MM"[..]));
    }

    /// EXIF after a comment, fill bytes and stray bytes (which libjpeg
    /// skips with a warning) is still read: Pillow applies it.
    #[test]
    fn exif_after_fill_and_stray_bytes_is_found() {
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend([0xFF, 0xFE, 0x00, 0x05, b'h', b'i', b'!']); // COM
        jpeg.extend([0x00, 0x17]); // stray bytes
        jpeg.extend([0xFF, 0xFF, 0xFF]); // fill bytes
        jpeg.extend([0xFF, 0xE1, 0x00, 0x0A]);
        jpeg.extend(b"Exif\0\0II");
        jpeg.extend([0xFF, 0xC0, 0x00, 0x02]);
        jpeg.extend([0xFF, 0xDA, 0x00, 0x02]);
        let m = scan_markers(&jpeg);
        assert_eq!(m.exif, Some(&b"II"[..]));
        assert!(m.frame && !m.lossless);
    }

    #[test]
    fn truncated_markers_stop_the_scan() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, b'E'];
        let m = scan_markers(&jpeg);
        assert!((m.exif, m.adobe, m.lossless, m.frame) == (None, false, false, false));
    }

    #[test]
    fn a_file_cut_before_its_frame_header_says_so() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/images/jpeg_baseline_420.jpg");
        let jpeg = std::fs::read(path).unwrap();
        assert!(scan_markers(&jpeg).frame && read_header(&jpeg).is_ok());
        let err = read_header(&jpeg[..20]).unwrap_err();
        assert!(err.starts_with("the data ends before the frame header (SOF)"), "{err}");
    }

    #[test]
    fn dct_scale_keeps_the_target_covered() {
        assert_eq!(dct_eighths(500.0, 375.0, 224, 224), 8);
        assert_eq!(dct_eighths(1000.0, 800.0, 224, 224), 4);
        assert_eq!(dct_eighths(1920.0, 1080.0, 224, 224), 2);
        assert_eq!(dct_eighths(4000.0, 3000.0, 100, 100), 1);
        assert_eq!(dct_eighths(200.0, 200.0, 224, 224), 8);
    }
}

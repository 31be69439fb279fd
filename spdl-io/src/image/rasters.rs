//! Raster formats that Pillow reads and neither the `image` crate nor
//! FFmpeg does (or not as Pillow does): a small header and the pixels
//! stored as they are. GIMP brushes (GBR), IFUNC Image Memory (IM), IM
//! Tools (IMT), McIDAS areas, PIXAR rasters, XV thumbnails, FTEX
//! textures, FITS images (gzip-compressed tiles included), the first
//! frame of FLI/FLC animations (decoded by `fli`) and BLP textures
//! (decoded by `blp`).
//!
//! Hand-written because no maintained crate reads these, and written
//! after Pillow's plugins so that the pixels are Pillow's: FFmpeg reads
//! FITS but stretches the values between the image's minimum and maximum
//! (29.9 dB from Pillow on its test image), where Pillow keeps them as
//! stored. Every header field is checked against the data before
//! anything is allocated; sizes are checked against the limits by the
//! caller.

use std::collections::HashMap;
use std::io::Read;

use flate2::read::MultiGzDecoder;

use super::blp;
use super::dds::{self, BlockFormat};
use super::fli;
use super::jpeg;
use super::levels::Values;
use crate::limits::Limits;
use crate::memory;

/// A raster's header: what it is, its size and where its pixels are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Raster {
    /// Pillow's name for the format (`GBR`, `IM`, `FITS`, ...).
    pub(super) format: &'static str,
    pub(super) width: usize,
    pub(super) height: usize,
    body: Body,
}

impl Raster {
    /// The colour layout of the decoded pixels, as `ImageInfo` names it.
    pub(super) fn color(&self) -> &'static str {
        let rows = match self.body {
            Body::Rows(rows) | Body::FitsGzip { rows, .. } => rows,
            Body::Dxt1 { .. } => return "rgba8",
            Body::Fli | Body::BmpRle(_) => return "rgb8",
            Body::Blp(h) => return if h.alpha { "rgba8" } else { "rgb8" },
        };
        match (rows.sample, rows.channels) {
            (SampleType::U8, 1) => "l8",
            (SampleType::U8, 2) => "la8",
            (SampleType::U8, 4) => "rgba8",
            (SampleType::U8 | SampleType::Rgb332, _) => "rgb8",
            (SampleType::U16Be, _) => "l16",
            _ => "f64",
        }
    }
}

/// How the pixels are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    Rows(Rows),
    /// A run-length encoded BMP (4 or 8 bits per index), decoded as
    /// Pillow's `BmpRleDecoder` decodes it.
    BmpRle(BmpRle),
    /// An FLI/FLC animation's first frame (`fli`).
    Fli,
    /// A BLP texture's first mip level (`blp`).
    Blp(blp::Header),
    /// DXT1 (BC1) blocks at `offset`, read as RGBA.
    Dxt1 {
        offset: usize,
    },
    /// FITS GZIP_1 tiles: gzip members from `offset`, each pixel a
    /// big-endian 32-bit word whose low bytes hold a sample of `rows`
    /// (Pillow's reading of them), rows bottom first.
    FitsGzip {
        offset: usize,
        rows: Rows,
    },
}

/// Where a run-length BMP's palette and codes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BmpRle {
    palette: usize,
    colours: usize,
    codes: usize,
    rle4: bool,
    top_down: bool,
}

/// Rows of samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rows {
    offset: usize,
    sample: SampleType,
    channels: usize,
    /// Bytes from one stored row to the next.
    stride: usize,
    /// Each row holds its channels one after another (a plane per line).
    planar: bool,
    bottom_up: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SampleType {
    U8,
    /// Indices into XV's 3-3-2 RGB palette.
    Rgb332,
    U16Be,
    I32Be,
    F32Be,
    F64Be,
}

impl SampleType {
    fn bytes(self) -> usize {
        match self {
            SampleType::U8 | SampleType::Rgb332 => 1,
            SampleType::U16Be => 2,
            SampleType::I32Be | SampleType::F32Be => 4,
            SampleType::F64Be => 8,
        }
    }
}

impl Rows {
    fn new(offset: usize, sample: SampleType, channels: usize, width: usize) -> Self {
        Rows {
            offset,
            sample,
            channels,
            stride: width * channels * sample.bytes(),
            planar: false,
            bottom_up: false,
        }
    }
}

/// Decoded pixels, top row first.
pub(super) enum Pixels {
    /// 8-bit samples, interleaved, with their count per pixel.
    U8(Vec<u8>, usize),
    /// 16-bit gray.
    U16(Vec<u16>),
    /// Gray 32-bit integers or floats.
    Numbers(Values),
}

/// A format's header reader: `None` when the data is not that format.
type Reader = fn(&[u8]) -> Option<Result<Raster, String>>;

/// The header when `data` is one of these formats (checked in Pillow's
/// order), an error when it is one Pillow would refuse, `None` when it is
/// none of them.
pub(super) fn header(data: &[u8]) -> Option<Result<Raster, String>> {
    let readers: [Reader; 10] = [blp_texture, fits, flic, ftex, gbr, im, imt, mcidas, pixar, xv_thumbnail];
    readers.iter().find_map(|read| read(data))
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

fn le32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

fn le16(d: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_le_bytes(d.get(at..at + 2)?.try_into().ok()?)))
}

fn to_usize(v: impl TryInto<usize>, what: &str) -> Result<usize, String> {
    v.try_into().map_err(|_| format!("{what} out of range"))
}

/// The raster, once its size is not empty.
fn sized(format: &'static str, (width, height): (usize, usize), body: Body) -> Result<Raster, String> {
    if width == 0 || height == 0 {
        return Err(format!("{format}: the header declares an empty image"));
    }
    Ok(Raster {
        format,
        width,
        height,
        body,
    })
}

/// A run-length encoded BMP (compression 1 or 2 with 8 or 4 bits): FFmpeg
/// and the `image` crate read broken runs (a row overflowing, a delta
/// past the end) otherwise than Pillow. `None` for any other BMP.
pub(super) fn rle_bmp(d: &[u8]) -> Option<Result<Raster, String>> {
    let (header, compression, bits) = (le32(d, 14)?, le32(d, 30)?, le16(d, 28)?);
    if !d.starts_with(b"BM") || header < 40 || !matches!((compression, bits), (1, 8) | (2, 4)) {
        return None;
    }
    Some((|| {
        let field = |at| le32(d, at).ok_or("BMP: truncated header");
        let (w, h) = (field(18)? as i32, field(22)? as i32);
        let colours = match field(46)? {
            0 => 1 << bits,
            n @ 1..=256 => n as usize,
            n => return Err(format!("BMP: {n} palette entries")),
        };
        let rle = BmpRle {
            palette: 14 + to_usize(header, "BMP header size")?,
            colours,
            codes: to_usize(field(10)?, "BMP data offset")?,
            rle4: bits == 4,
            top_down: h < 0,
        };
        let size = (to_usize(w, "BMP width")?, h.unsigned_abs() as usize);
        sized("BMP", size, Body::BmpRle(rle))
    })())
}

/// The palette indices of a run-length BMP, stored row order (bottom
/// row first unless top-down), as Pillow's `BmpRleDecoder` reads the
/// codes: runs clipped at the row's end, end-of-line padding with 0,
/// deltas as zeros, absolute runs word-aligned in the file; indices the
/// codes never reach stay 0.
fn rle_indices(d: &[u8], rle: &BmpRle, (w, h): (usize, usize)) -> Result<Vec<u8>, String> {
    let total = w * h;
    let mut out: Vec<u8> = memory::with_capacity(total).map_err(|n| format!("cannot allocate {n} bytes"))?;
    let (mut at, mut x) = (rle.codes, 0);
    while out.len() < total {
        let (Some(&count), Some(&code)) = (d.get(at), d.get(at + 1)) else {
            break;
        };
        at += 2;
        let pair = |i: usize| match rle.rle4 {
            true => [code >> 4, code & 0x0f][i % 2],
            false => code,
        };
        match (count, code) {
            (1.., _) => {
                let n = usize::from(count).min(w.saturating_sub(x));
                out.extend((0..n).map(pair));
                x += n;
            }
            (0, 0) => {
                out.resize(out.len().next_multiple_of(w).min(total), 0);
                x = 0;
            }
            (0, 1) => break,
            (0, 2) => {
                let Some(&[right, up]) = d.get(at..at + 2).and_then(|b| <&[u8; 2]>::try_from(b).ok()) else {
                    break;
                };
                at += 2;
                let skip = usize::from(right) + usize::from(up) * w;
                out.resize(out.len() + skip.min(total - out.len()), 0);
                x = out.len() % w;
            }
            (0, n) => {
                let n = usize::from(n).min(total - out.len());
                let stored = if rle.rle4 { n.div_ceil(2) } else { n };
                let bytes = d.get(at..(at + stored).min(d.len())).unwrap_or_default();
                at += bytes.len();
                match rle.rle4 {
                    true => out.extend(bytes.iter().flat_map(|b| [b >> 4, b & 0x0f]).take(n)),
                    false => out.extend_from_slice(bytes),
                }
                if bytes.len() < stored || out.len() == total {
                    break;
                }
                x += usize::from(code);
                at += at % 2;
            }
        }
    }
    out.resize(total, 0);
    Ok(out)
}

/// BLP texture: its first mip level.
fn blp_texture(d: &[u8]) -> Option<Result<Raster, String>> {
    blp::header(d).map(|h| h.and_then(|h| sized("BLP", (h.width, h.height), Body::Blp(h))))
}

/// FLI/FLC animation: its first frame, when Pillow would open the file.
fn flic(d: &[u8]) -> Option<Result<Raster, String>> {
    fli::size(d).map(|size| sized("FLI", size, Body::Fli))
}

/// GIMP brush: big-endian header (size, version 1 or 2, width, height,
/// bytes per pixel 1 or 4), then gray or RGBA pixels.
fn gbr(d: &[u8]) -> Option<Result<Raster, String>> {
    let (header_size, version) = (be32(d, 0)?, be32(d, 4)?);
    if header_size < 20 || !matches!(version, 1 | 2) {
        return None;
    }
    Some((|| {
        let field = |at| be32(d, at).ok_or("GBR: truncated header");
        let (w, h, depth) = (field(8)?, field(12)?, field(16)?);
        let channels = match depth {
            1 => 1,
            4 => 4,
            _ => return Err(format!("GBR: unsupported colour depth {depth}")),
        };
        if version == 2 && d.get(20..24) != Some(b"GIMP") {
            return Err("GBR: bad magic number".into());
        }
        let (w, h) = (to_usize(w, "GBR width")?, to_usize(h, "GBR height")?);
        let rows = Rows::new(to_usize(header_size, "GBR header size")?, SampleType::U8, channels, w);
        sized("GBR", (w, h), Body::Rows(rows))
    })())
}

/// IFUNC Image Memory: text lines `Key: value` up to a NUL or ^Z, the
/// pixels after the ^Z, rows bottom first, one plane per line for
/// multi-channel images. Modes Pillow maps to 8-bit L, LA, RGB and RGBA
/// are read; palettes (`Lut`) are refused.
fn im(d: &[u8]) -> Option<Result<Raster, String>> {
    if !d.get(..100.min(d.len()))?.contains(&b'\n') {
        return None;
    }
    let mut fields = HashMap::new();
    let mut at = 0;
    while let Some(&c) = d.get(at) {
        if c == b'\r' {
            at += 1;
            continue;
        }
        if c == 0 || c == 0x1a {
            break;
        }
        let end = d[at..].iter().position(|&b| b == b'\n').map_or(d.len(), |n| at + n + 1);
        let line = d[at..end].strip_suffix(b"\n").unwrap_or(&d[at..end]);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if end - at > 100 || !line.first()?.is_ascii_alphabetic() {
            return None;
        }
        let colon = line.iter().position(|&b| b == b':')?;
        let value = line[colon + 1..].trim_ascii();
        fields.insert(&line[..colon], value);
        at = end;
    }
    const TAGS: [&[u8]; 9] = [
        b"Comment",
        b"Date",
        b"Digitalization equipment",
        b"File size (no of images)",
        b"Lut",
        b"Name",
        b"Scale (x,y)",
        b"Image size (x*y)",
        b"Image type",
    ];
    if !TAGS.iter().any(|t| fields.contains_key(t)) {
        return None;
    }
    Some((|| {
        let offset = at + d[at..].iter().position(|&b| b == 0x1a).ok_or("IM: truncated header")? + 1;
        if fields.contains_key(&b"Lut"[..]) {
            return Err("IM: images with a palette (Lut) are not read".into());
        }
        let (w, h) = match fields.get(&b"Image size (x*y)"[..]) {
            None => (512, 512),
            Some(v) => {
                let text = std::str::from_utf8(v).map_err(|_| "IM: bad image size")?;
                let (w, h) = text.split_once(['*', ',']).ok_or("IM: bad image size")?;
                let n = |s: &str| {
                    s.trim()
                        .parse::<usize>()
                        .map_err(|_| format!("IM: bad image size {text:?}"))
                };
                (n(w)?, n(h)?)
            }
        };
        let mode = fields.get(&b"Image type"[..]).copied().unwrap_or(b"Greyscale image");
        let (channels, planar) = match mode {
            b"Greyscale image" | b"Grayscale image" => (1, false),
            b"LA image" => (2, true),
            b"RGB image" => (3, true),
            b"RGBA image" => (4, true),
            b"X 24 image" => (3, false),
            other => {
                return Err(format!(
                    "IM: image type {:?} is not read",
                    String::from_utf8_lossy(other)
                ))
            }
        };
        let rows = Rows {
            planar,
            bottom_up: true,
            ..Rows::new(offset, SampleType::U8, channels, w)
        };
        sized("IM", (w, h), Body::Rows(rows))
    })())
}

/// IM Tools: `key value` lines (`width`, `height`, `pixel n8`), then a
/// form feed and 8-bit gray rows. No magic: only a header giving all
/// three is taken for one.
fn imt(d: &[u8]) -> Option<Result<Raster, String>> {
    if !d.get(..100.min(d.len()))?.contains(&b'\n') {
        return None;
    }
    let (mut w, mut h, mut gray, mut at) = (None, None, false, 0);
    loop {
        if *d.get(at)? == 0x0c {
            at += 1;
            break;
        }
        let end = at + d[at..].iter().position(|&b| b == b'\n')?;
        let line = &d[at..end];
        if line.is_empty() || line.len() > 100 {
            return None;
        }
        if line[0] != b'*' {
            let (key, value) = line.split_at(line.iter().position(|&b| b == b' ')?);
            let value = value[1..].split(|&b| b == b' ' || b == b'\r').next()?;
            let number = || std::str::from_utf8(value).ok()?.parse::<usize>().ok();
            match key {
                b"width" => w = Some(number()?),
                b"height" => h = Some(number()?),
                b"pixel" => gray = value == b"n8",
                _ if key.iter().all(u8::is_ascii_lowercase) => {}
                _ => return None,
            }
        }
        at = end + 1;
    }
    let size = (w?, h?);
    gray.then(|| sized("IMT", size, Body::Rows(Rows::new(at, SampleType::U8, 1, size.0))))
}

/// McIDAS area: a directory of 64 big-endian words (the first two 0 and
/// 4), then rows of 1-, 2- or 4-byte samples, each row after a prefix.
fn mcidas(d: &[u8]) -> Option<Result<Raster, String>> {
    if !d.starts_with(b"\0\0\0\0\0\0\0\x04") {
        return None;
    }
    Some((|| {
        let word = |n: usize| {
            be32(d, 4 * (n - 1))
                .map(|v| v as i32)
                .ok_or("McIDAS: truncated directory")
        };
        let field = |n: usize| to_usize(word(n)?, "McIDAS directory field");
        let (w, h, bytes, bands, prefix, data) =
            (field(10)?, field(9)?, field(11)?, field(14)?, field(15)?, field(34)?);
        let sample = match bytes {
            1 => SampleType::U8,
            2 => SampleType::U16Be,
            4 => SampleType::I32Be,
            _ => return Err(format!("McIDAS: unsupported sample size {bytes}")),
        };
        let stride = w
            .checked_mul(bytes * bands)
            .and_then(|n| n.checked_add(prefix))
            .ok_or("McIDAS: row size out of range")?;
        if stride < w * bytes {
            return Err("McIDAS: rows shorter than their pixels".into());
        }
        let offset = data.checked_add(prefix).ok_or("McIDAS: data offset out of range")?;
        let rows = Rows {
            stride,
            ..Rows::new(offset, sample, 1, w)
        };
        sized("MCIDAS", (w, h), Body::Rows(rows))
    })())
}

/// PIXAR raster: a 512-byte header, RGB pixels from byte 1024.
fn pixar(d: &[u8]) -> Option<Result<Raster, String>> {
    if !d.starts_with(b"\x80\xe8\0\0") {
        return None;
    }
    Some((|| {
        let field = |at| le16(d, at).ok_or("PIXAR: truncated header");
        let (w, h) = (field(418)?, field(416)?);
        if (field(424)?, field(426)?) != (14, 2) {
            return Err("PIXAR: only 8-bit RGB rasters are read".into());
        }
        sized("PIXAR", (w, h), Body::Rows(Rows::new(1024, SampleType::U8, 3, w)))
    })())
}

/// XV thumbnail: `P7 332`, comment lines, `width height`, then one byte
/// per pixel indexing XV's 3-3-2 palette.
fn xv_thumbnail(d: &[u8]) -> Option<Result<Raster, String>> {
    if !d.starts_with(b"P7 332") {
        return None;
    }
    Some((|| {
        let mut lines = d.split_inclusive(|&b| b == b'\n');
        let mut at = lines.next().map_or(0, <[u8]>::len);
        let size_line = lines
            .find(|line| {
                at += line.len();
                line.first() != Some(&b'#')
            })
            .ok_or("XVThumb: no size line")?;
        let mut fields = size_line.split(u8::is_ascii_whitespace).filter(|f| !f.is_empty());
        let mut number = || {
            let f = fields.next().ok_or("XVThumb: bad size line")?;
            std::str::from_utf8(f)
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
                .ok_or("XVThumb: bad size line")
        };
        let (w, h) = (number()?, number()?);
        sized("XVThumb", (w, h), Body::Rows(Rows::new(at, SampleType::Rgb332, 1, w)))
    })())
}

/// FTEX texture: a little-endian header with one format (DXT1 or RGB)
/// and its first mip level.
fn ftex(d: &[u8]) -> Option<Result<Raster, String>> {
    if !d.starts_with(b"FTEX") {
        return None;
    }
    Some((|| {
        let field = |at| le32(d, at).ok_or("FTEX: truncated header");
        let (w, h) = (
            to_usize(field(8)? as i32, "FTEX width")?,
            to_usize(field(12)? as i32, "FTEX height")?,
        );
        if field(20)? != 1 {
            return Err(format!("FTEX: unsupported number of texture formats: {}", field(20)?));
        }
        let (format, at) = (field(24)?, to_usize(field(28)?, "FTEX data offset")?);
        let offset = at.checked_add(4).ok_or("FTEX: data offset out of range")?;
        field(at)?;
        let body = match format {
            0 => Body::Dxt1 { offset },
            1 => Body::Rows(Rows::new(offset, SampleType::U8, 3, w)),
            _ => return Err(format!("FTEX: unsupported texture format {format}")),
        };
        sized("FTEX", (w, h), body)
    })())
}

/// FITS: 80-byte header cards in 2880-byte blocks, read as Pillow reads
/// them (cards of later headers override earlier ones); the first
/// header declaring an image gives its size and sample type; rows are
/// stored bottom first.
fn fits(d: &[u8]) -> Option<Result<Raster, String>> {
    if !d.starts_with(b"SIMPLE") {
        return None;
    }
    let mut cards: HashMap<&[u8], &[u8]> = HashMap::new();
    let (mut in_header, mut found, mut at) = (false, None, 0);
    loop {
        let Some(card) = d.get(at..(at + 80).min(d.len())).filter(|c| !c.is_empty()) else {
            return Some(Err("FITS: truncated header".into()));
        };
        let keyword = card[..8.min(card.len())].trim_ascii();
        if keyword == b"SIMPLE" || keyword == b"XTENSION" {
            in_header = true;
        } else if !cards.is_empty() && !in_header {
            break;
        } else if keyword == b"END" {
            at = (at + 80).div_ceil(2880) * 2880;
            if found.is_none() {
                found = match fits_image(&cards) {
                    Ok(image) => image,
                    Err(e) => return Some(Err(format!("FITS: {e}"))),
                };
            }
            in_header = false;
            continue;
        }
        at += 80;
        if found.is_some() {
            continue;
        }
        let value = card
            .get(8..)
            .unwrap_or_default()
            .split(|&b| b == b'/')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        let value = value.strip_prefix(b"=").map_or(value, <[u8]>::trim_ascii);
        if cards.is_empty() && value != b"T" {
            return None;
        }
        cards.insert(keyword, value);
    }
    let data = at;
    let Some((w, h, sample, table)) = found else {
        return Some(Err("FITS: no image data".into()));
    };
    let rows = |offset| Rows {
        bottom_up: true,
        ..Rows::new(offset, sample, 1, w)
    };
    let body = match table {
        None => Body::Rows(rows(data)),
        Some(bytes) => Body::FitsGzip {
            offset: data.saturating_add(bytes),
            rows: rows(0),
        },
    };
    Some(sized("FITS", (w, h), body))
}

/// The image a FITS header declares: width, height, sample type, and for
/// a GZIP_1-compressed image the size of the table before its tiles.
type FitsImage = (usize, usize, SampleType, Option<usize>);

fn fits_image(cards: &HashMap<&[u8], &[u8]>) -> Result<Option<FitsImage>, String> {
    let get = |key: &[u8]| -> Result<&[u8], String> {
        cards
            .get(key)
            .copied()
            .ok_or_else(|| format!("no {} card", String::from_utf8_lossy(key)))
    };
    let int = |key: &[u8]| -> Result<i64, String> {
        let v = get(key)?;
        std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad {} card", String::from_utf8_lossy(key)))
    };
    let size = |prefix: &str| -> Result<Option<(usize, usize)>, String> {
        let axis = |n: &str| int(format!("{prefix}NAXIS{n}").as_bytes()).and_then(|v| to_usize(v, "FITS axis"));
        Ok(match axis("")? {
            0 => None,
            1 => Some((1, axis("1")?)),
            _ => Some((axis("1")?, axis("2")?)),
        })
    };
    let gzip = cards.get(&b"XTENSION"[..]) == Some(&&b"'BINTABLE'"[..])
        && cards.get(&b"ZIMAGE"[..]) == Some(&&b"T"[..])
        && get(b"ZCMPTYPE")? == b"'GZIP_1  '";
    let (prefix, table) = match gzip {
        false => ("", None),
        true => {
            let (w, h) = size("")?.unwrap_or_default();
            let bytes = w
                .saturating_mul(h)
                .saturating_mul(to_usize(int(b"BITPIX")? / 8, "BITPIX")?);
            ("Z", Some(bytes))
        }
    };
    let Some((w, h)) = size(prefix)? else {
        return Ok(None);
    };
    let sample = match int(format!("{prefix}BITPIX").as_bytes())? {
        8 => SampleType::U8,
        16 => SampleType::U16Be,
        32 => SampleType::I32Be,
        -32 => SampleType::F32Be,
        -64 if !gzip => SampleType::F64Be,
        bits => return Err(format!("unsupported BITPIX {bits}")),
    };
    Ok(Some((w, h, sample, table)))
}

/// Decodes the pixels (call once the size passed the limits).
pub(super) fn decode(data: &[u8], r: &Raster, limits: &Limits) -> Result<Pixels, String> {
    let fail = |e: String| format!("{}: {e}", r.format);
    match r.body {
        Body::Blp(h) => match blp::decode(data, &h).map_err(fail)? {
            blp::Pixels::Decoded(v, channels) => Ok(Pixels::U8(v, channels)),
            blp::Pixels::Jpeg { stream, .. } => blp_jpeg(&stream, (r.width, r.height), limits).map_err(fail),
        },
        Body::Rows(rows) => decode_rows(data, rows, (r.width, r.height)).map_err(fail),
        Body::Dxt1 { offset } => {
            let blocks = r.width.div_ceil(4) * r.height.div_ceil(4) * 8;
            let src = data
                .get(offset..)
                .and_then(|d| d.get(..blocks))
                .ok_or_else(|| fail("truncated DXT1 data".into()))?;
            let mut out =
                memory::zeroed(r.width * r.height * 4).map_err(|n| fail(format!("cannot allocate {n} bytes")))?;
            dds::decode_block_image(src, BlockFormat::Bc1, r.width, &mut out).map_err(fail)?;
            Ok(Pixels::U8(out, 4))
        }
        Body::BmpRle(rle) => {
            let indices = rle_indices(data, &rle, (r.width, r.height)).map_err(fail)?;
            let palette = data.get(rle.palette..).unwrap_or_default();
            let colour = |i: u8| match palette.get(4 * usize::from(i)..4 * usize::from(i) + 3) {
                Some(bgr) if usize::from(i) < rle.colours => [bgr[2], bgr[1], bgr[0]],
                _ => [0; 3],
            };
            let rows = indices.chunks_exact(r.width);
            let ordered: Box<dyn Iterator<Item = &[u8]>> = match rle.top_down {
                true => Box::new(rows),
                false => Box::new(rows.rev()),
            };
            Ok(Pixels::U8(ordered.flatten().flat_map(|&i| colour(i)).collect(), 3))
        }
        Body::Fli => {
            let mut out =
                memory::zeroed(r.width * r.height * 3).map_err(|n| fail(format!("cannot allocate {n} bytes")))?;
            fli::decode_first_frame(data, &mut out).map_err(fail)?;
            Ok(Pixels::U8(out, 3))
        }
        Body::FitsGzip { offset, rows } => {
            let words = fits_gzip_words(data.get(offset..).unwrap_or_default(), r.width * r.height).map_err(fail)?;
            let n = rows.sample.bytes();
            let samples: Vec<u8> = words.chunks_exact(4).flat_map(|w| w[4 - n..].iter().copied()).collect();
            decode_rows(&samples, rows, (r.width, r.height)).map_err(fail)
        }
    }
}

/// A BLP1 texture's JPEG data as Pillow reads it: the JPEG's samples
/// with BLP's channel order, the first `width * height` of them whatever
/// the JPEG's own size.
fn blp_jpeg(stream: &[u8], (w, h): (usize, usize), limits: &Limits) -> Result<Pixels, String> {
    let header = jpeg::read_header(stream)?;
    let pixels = (header.width as u64).saturating_mul(header.height as u64);
    if pixels > limits.max_pixels {
        return Err(format!(
            "its JPEG data declares {pixels} pixels, over the limit of {}",
            limits.max_pixels
        ));
    }
    if pixels < (w * h) as u64 {
        return Err(format!(
            "its JPEG data holds {pixels} pixels, fewer than the texture's {w}x{h}"
        ));
    }
    let (mut samples, channels) = jpeg::decode_samples(stream, &header)?;
    samples.truncate(w * h * channels);
    blp::swap_jpeg_channels(&mut samples, channels);
    Ok(Pixels::U8(samples, channels))
}

/// The first `pixels` 4-byte words of concatenated gzip members.
fn fits_gzip_words(tiles: &[u8], pixels: usize) -> Result<Vec<u8>, String> {
    let want = pixels * 4;
    let mut words = Vec::new();
    MultiGzDecoder::new(tiles)
        .take(want as u64)
        .read_to_end(&mut words)
        .map_err(|e| format!("corrupt gzip data: {e}"))?;
    if words.len() < want {
        return Err(format!("truncated gzip data ({} of {want} bytes)", words.len()));
    }
    Ok(words)
}

/// Reads rows of samples into pixels, top row first.
fn decode_rows(data: &[u8], rows: Rows, (w, h): (usize, usize)) -> Result<Pixels, String> {
    let size = rows.sample.bytes();
    let row_bytes = w * rows.channels * size;
    let needed = rows
        .stride
        .checked_mul(h - 1)
        .and_then(|n| n.checked_add(row_bytes))
        .ok_or("rows out of range")?;
    let body = data.get(rows.offset..).and_then(|d| d.get(..needed)).ok_or_else(|| {
        format!(
            "truncated pixel data ({needed} bytes needed from offset {})",
            rows.offset
        )
    })?;
    let samples = |read: fn(&[u8]) -> f64| gather(body, rows, (w, h), read);
    Ok(match rows.sample {
        SampleType::U8 => Pixels::U8(gather(body, rows, (w, h), |b| b[0])?, rows.channels),
        SampleType::Rgb332 => {
            let indices = gather(body, rows, (w, h), |b| b[0])?;
            let level = |v: u8, max: u8| ((u16::from(v) * 255) / u16::from(max)) as u8;
            let rgb = indices
                .iter()
                .flat_map(|&i| [level(i >> 5, 7), level((i >> 2) & 7, 7), level(i & 3, 3)])
                .collect();
            Pixels::U8(rgb, 3)
        }
        SampleType::U16Be => Pixels::U16(gather(body, rows, (w, h), |b| u16::from_be_bytes([b[0], b[1]]))?),
        SampleType::I32Be => Pixels::Numbers(Values {
            values: samples(|b| f64::from(i32::from_be_bytes([b[0], b[1], b[2], b[3]])))?,
            integers: true,
        }),
        SampleType::F32Be => Pixels::Numbers(Values {
            values: samples(|b| f64::from(f32::from_be_bytes([b[0], b[1], b[2], b[3]])))?,
            integers: false,
        }),
        SampleType::F64Be => Pixels::Numbers(Values {
            values: samples(|b| f64::from_be_bytes(b[..8].try_into().unwrap_or_default()) as f32 as f64)?,
            integers: false,
        }),
    })
}

/// Every sample of `body`'s rows, read by `read`, interleaved and top
/// row first.
fn gather<T: memory::Pooled>(
    body: &[u8],
    rows: Rows,
    (w, h): (usize, usize),
    read: impl Fn(&[u8]) -> T,
) -> Result<Vec<T>, String> {
    let (channels, size) = (rows.channels, rows.sample.bytes());
    let mut out = memory::zeroed(w * h * channels).map_err(|n| format!("cannot allocate {n} bytes"))?;
    for (y, dst) in out.chunks_exact_mut(w * channels).enumerate() {
        let stored = if rows.bottom_up { h - 1 - y } else { y };
        let src = &body[stored * rows.stride..][..w * channels * size];
        for (i, o) in dst.iter_mut().enumerate() {
            let (x, c) = (i / channels, i % channels);
            let at = match rows.planar {
                true => (c * w + x) * size,
                false => i * size,
            };
            *o = read(&src[at..at + size]);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded_u8(data: &[u8]) -> (usize, usize, Vec<u8>, usize) {
        let r = header(data).expect("a raster").expect("a valid header");
        match decode(data, &r, &Limits::default()).unwrap() {
            Pixels::U8(v, c) => (r.width, r.height, v, c),
            _ => panic!("not 8-bit"),
        }
    }

    #[test]
    fn gbr_version_2_rgba() {
        let mut d = Vec::new();
        for v in [28u32, 2, 2, 1, 4] {
            d.extend_from_slice(&v.to_be_bytes());
        }
        d.extend_from_slice(b"GIMP\0\0\0\x05");
        d.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(decoded_u8(&d), (2, 1, vec![1, 2, 3, 4, 5, 6, 7, 8], 4));
        d.truncate(33);
        let r = header(&d).unwrap().unwrap();
        assert!(decode(&d, &r, &Limits::default()).is_err_and(|e| e.contains("truncated")));
    }

    #[test]
    fn im_rgb_is_planar_per_line_and_bottom_up() {
        let mut d = b"Image type: RGB image\r\nImage size (x*y): 2*2\r\n".to_vec();
        d.resize(511, 0);
        d.push(0x1a);
        // Stored bottom row first: R R G G B B per row.
        d.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let (w, h, px, c) = decoded_u8(&d);
        assert_eq!((w, h, c), (2, 2, 3));
        assert_eq!(px, [7, 9, 11, 8, 10, 12, 1, 3, 5, 2, 4, 6]);
    }

    #[test]
    fn imt_needs_width_height_and_gray_pixels() {
        let d = b"width 2\nheight 1\npixel n8\n\x0c\x07\x09";
        assert_eq!(decoded_u8(d), (2, 1, vec![7, 9], 1));
        assert!(header(b"width 2\nheight 1\n\x0c\x07\x09").is_none());
        assert!(header(b"hello world\nthis is text\n").is_none());
    }

    #[test]
    fn xv_thumbnail_expands_the_332_palette() {
        let d = b"P7 332\n#comment\n2 1 255\n\xff\x24";
        assert_eq!(decoded_u8(d), (2, 1, vec![255, 255, 255, 36, 36, 0], 3));
    }

    #[test]
    fn fits_16_bit_rows_are_flipped() {
        let mut d = Vec::new();
        for card in [
            "SIMPLE  = T",
            "BITPIX  = 16",
            "NAXIS   = 2",
            "NAXIS1  = 1",
            "NAXIS2  = 2",
            "END",
        ] {
            d.extend_from_slice(format!("{card:<80}").as_bytes());
        }
        d.resize(2880, b' ');
        d.extend_from_slice(&[0x01, 0x02, 0xff, 0x00]);
        let r = header(&d).unwrap().unwrap();
        assert_eq!((r.width, r.height), (1, 2));
        assert!(matches!(decode(&d, &r, &Limits::default()).unwrap(), Pixels::U16(v) if v == [0xff00, 0x0102]));
    }

    #[test]
    fn fits_without_an_image_or_with_a_bad_bitpix_is_an_error() {
        let header_of = |cards: &[&str]| {
            let mut d = Vec::new();
            for card in cards {
                d.extend_from_slice(format!("{card:<80}").as_bytes());
            }
            d.resize(2880 + 16, b' ');
            header(&d)
        };
        assert!(header_of(&["SIMPLE  = T", "NAXIS   = 0", "END"]).unwrap().is_err());
        let bad = header_of(&["SIMPLE  = T", "BITPIX  = 12", "NAXIS   = 1", "NAXIS1  = 2", "END"]);
        assert!(bad.unwrap().is_err_and(|e| e.contains("BITPIX")));
        assert!(header_of(&["SIMPLE  = F", "END"]).is_none());
    }

    #[test]
    fn mcidas_rows_skip_their_prefix() {
        let mut d = vec![0u8; 256];
        let mut set = |n: usize, v: u32| d[4 * (n - 1)..4 * n].copy_from_slice(&v.to_be_bytes());
        set(2, 4);
        set(9, 2);
        set(10, 2);
        set(11, 1);
        set(14, 1);
        set(15, 1);
        set(34, 256);
        d.extend_from_slice(&[0, 1, 2, 0, 3, 4]);
        assert_eq!(decoded_u8(&d), (2, 2, vec![1, 2, 3, 4], 1));
    }

    #[test]
    fn hostile_headers_are_errors_not_panics() {
        let mut ftex = b"FTEX".to_vec();
        for v in [0u32, 4, 4, 1, 1, 0, 0xffff_fff0] {
            ftex.extend_from_slice(&v.to_le_bytes());
        }
        assert!(header(&ftex).unwrap().is_err());
        let mut pixar = b"\x80\xe8\0\0".to_vec();
        pixar.resize(512, 0);
        assert!(header(&pixar).unwrap().is_err());
        assert!(header(b"P7 332\n").unwrap().is_err());
        let mut mcidas = b"\0\0\0\0\0\0\0\x04".to_vec();
        mcidas.resize(256, 0xff);
        assert!(header(&mcidas).unwrap().is_err());
    }
}

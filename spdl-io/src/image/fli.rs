//! First-frame decoder for Autodesk FLI/FLC animations, producing the same RGB bytes as
//! Pillow 13's `Image.open(f).convert("RGB")` (`FliImagePlugin.py` plus `libImaging/FliDecode.c`).
//!
//! It is hand-written rather than built on FFmpeg's flic decoder because FFmpeg refuses some
//! files Pillow reads and expands 6-bit COLOR_64 palette entries as `(v << 2) | (v >> 4)`,
//! whereas Pillow uses `v << 2`. Matching Pillow includes matching which malformed files it
//! rejects, so the checks below follow Pillow's, including its quirks:
//!
//! * the palette is looked up after an optional prefix chunk (0xF100), but decoding always
//!   starts at offset 128, so a file with a prefix chunk opens but fails to decode;
//! * chunk payloads are bounded by the end of the frame, not by their own declared size;
//! * depth (offset 12) is not checked.
//!
//! Pixels that the first frame's chunks do not write stay 0, as in Pillow's new image.

const HEADER_LEN: usize = 128;
const PREFIX_CHUNK: u16 = 0xF100;
const FRAME_CHUNK: u16 = 0xF1FA;

const COLOR_256: u16 = 4;
const SS2: u16 = 7;
const COLOR_64: u16 = 11;
const LC: u16 = 12;
const BLACK: u16 = 13;
const BRUN: u16 = 15;
const COPY: u16 = 16;
const PSTAMP: u16 = 18;

/// The most chunks read in the first frame.
const MAX_CHUNKS: u16 = 64;

type Palette = [[u8; 3]; 256];

/// Width and height from the 128-byte header when `data` is an FLI/FLC file Pillow accepts (magic 0xAF11/0xAF12 at
/// offset 4, the checks Pillow's `_accept`/`_open` make, including a readable first-frame palette), else None.
pub(super) fn size(data: &[u8]) -> Option<(usize, usize)> {
    open(data).ok().map(|opened| (opened.width, opened.height))
}

/// Decodes the first frame into `out`, RGB interleaved (width*height*3 bytes, size from `size`, already checked by
/// the caller against memory limits), palette applied the way Pillow's `convert("RGB")` of the P image gives it.
/// On error `out` holds unspecified bytes.
pub(super) fn decode_first_frame(data: &[u8], out: &mut [u8]) -> Result<(), String> {
    let opened = open(data)?;
    let pixels = opened
        .width
        .checked_mul(opened.height)
        .ok_or("FLI image size overflows")?;
    if pixels.checked_mul(3) != Some(out.len()) {
        return Err(format!(
            "FLI output buffer has {} bytes, expected {}x{}x3",
            out.len(),
            opened.width,
            opened.height
        ));
    }
    let indices = out.get_mut(..pixels).ok_or("FLI output buffer too small")?;
    indices.fill(0);
    let mut image = Indexed {
        pixels: indices,
        width: opened.width,
        height: opened.height,
    };
    decode_frame(first_frame(data)?, &mut image)?;
    expand_palette(out, pixels, &opened.palette);
    Ok(())
}

/// What Pillow's `_open` establishes: the image size and the palette of the first frame.
struct Opened {
    width: usize,
    height: usize,
    palette: Palette,
}

fn open(data: &[u8]) -> Result<Opened, String> {
    check_header(data)?;
    let palette = find_palette(data)?;
    if read_u16(data, 6) == Some(0) {
        return Err("FLI header says the file has no frames".into());
    }
    let width = usize::from(read_u16(data, 8).ok_or("FLI header truncated")?);
    let height = usize::from(read_u16(data, 10).ok_or("FLI header truncated")?);
    if width == 0 || height == 0 {
        return Err(format!("FLI image has empty size {width}x{height}"));
    }
    Ok(Opened { width, height, palette })
}

/// Pillow's `_accept` and the zero-padding checks of `_open`.
fn check_header(data: &[u8]) -> Result<(), String> {
    let header = data
        .get(..HEADER_LEN)
        .ok_or("file shorter than the 128-byte FLI header")?;
    let magic = read_u16(header, 4).unwrap_or(0);
    if magic != 0xAF11 && magic != 0xAF12 {
        return Err(format!("not an FLI/FLC file (magic {magic:#06x})"));
    }
    let flags = read_u16(header, 14).unwrap_or(0);
    if flags != 0 && flags != 3 {
        return Err(format!("FLI header flags {flags} are neither 0 nor 3"));
    }
    let reserved = [20..22, 42..80, 88..HEADER_LEN];
    if reserved
        .into_iter()
        .any(|range| header.get(range).is_none_or(|bytes| bytes.iter().any(|&b| b != 0)))
    {
        return Err("FLI header reserved bytes are not zero".into());
    }
    Ok(())
}

/// Pillow's palette lookup: skip a prefix chunk, then take the first COLOR_256/COLOR_64 chunk of the first frame,
/// falling back to a grayscale ramp.
fn find_palette(data: &[u8]) -> Result<Palette, String> {
    let mut palette = grayscale();
    let mut file = PyFile { data, pos: HEADER_LEN };
    let mut frame = file.read(16);
    if chunk_type(frame)? == PREFIX_CHUNK {
        let prefix_size = read_u32(frame, 0).ok_or("truncated FLI prefix chunk")?;
        file.pos = HEADER_LEN.saturating_add(to_usize(prefix_size));
        frame = file.read(16);
    }
    if chunk_type(frame)? != FRAME_CHUNK {
        return Ok(palette);
    }
    let subchunks = read_u16(frame, 6).ok_or("truncated FLI frame header")?;
    for _ in 0..subchunks {
        let start = file.pos;
        let chunk = file.read(6);
        let kind = chunk_type(chunk)?;
        if kind == COLOR_256 || kind == COLOR_64 {
            read_palette(&mut file, &mut palette, if kind == COLOR_64 { 2 } else { 0 })?;
            break;
        }
        let chunk_size = to_usize(read_u32(chunk, 0).ok_or("truncated FLI chunk header")?);
        if chunk_size == 0 {
            break;
        }
        file.pos = start.saturating_add(chunk_size);
    }
    Ok(palette)
}

/// Type field of a chunk header read by `_open`; Pillow fails to open the file when it is cut off.
fn chunk_type(header: &[u8]) -> Result<u16, String> {
    read_u16(header, 4).ok_or_else(|| "FLI file truncated in a chunk header".to_string())
}

/// Reads the packets of a COLOR_256 (`shift` 0) or COLOR_64 (`shift` 2) chunk into `palette`.
fn read_palette(file: &mut PyFile, palette: &mut Palette, shift: u32) -> Result<(), String> {
    let packets = read_u16(file.read(2), 0).ok_or("truncated FLI palette chunk")?;
    let mut index = 0;
    for _ in 0..packets {
        let &[skip, count] = file.read(2) else {
            return Err("truncated FLI palette packet".into());
        };
        index += usize::from(skip);
        let count = if count == 0 { 256 } else { usize::from(count) };
        if index + count > palette.len() {
            return Err("too much FLI palette data".into());
        }
        for rgb in file.read(count * 3).chunks(3) {
            let &[r, g, b] = rgb else {
                return Err("truncated FLI palette packet".into());
            };
            let entry = palette.get_mut(index).ok_or("too much FLI palette data")?;
            *entry = [scale(r, shift)?, scale(g, shift)?, scale(b, shift)?];
            index += 1;
        }
    }
    Ok(())
}

fn scale(value: u8, shift: u32) -> Result<u8, String> {
    u8::try_from(u16::from(value) << shift).map_err(|_| format!("FLI palette value {value} out of range"))
}

fn grayscale() -> Palette {
    let mut palette = [[0; 3]; 256];
    for (entry, value) in palette.iter_mut().zip(0..=u8::MAX) {
        *entry = [value; 3];
    }
    palette
}

/// The bytes Pillow's loader hands to the decoder for frame 0: one read of the frame's declared size from offset
/// 128. The decoder needs the whole frame (it allows one missing pad byte); otherwise Pillow reports truncation.
fn first_frame(data: &[u8]) -> Result<&[u8], String> {
    let rest = data.get(HEADER_LEN..).unwrap_or_default();
    let frame_size = to_usize(read_u32(rest, 0).ok_or("missing FLI frame size")?);
    let len = frame_size.min(rest.len());
    if len + len % 2 < frame_size {
        return Err(format!(
            "truncated FLI frame: {frame_size} bytes declared, {len} present"
        ));
    }
    if len < 8 {
        return Err(format!("FLI frame size {frame_size} is too small"));
    }
    rest.get(..len).ok_or_else(|| "truncated FLI frame".to_string())
}

/// The P image being decoded: one palette index per pixel, rows of `width` bytes.
struct Indexed<'a> {
    pixels: &'a mut [u8],
    width: usize,
    height: usize,
}

impl Indexed<'_> {
    fn row(&mut self, y: usize) -> Result<&mut [u8], String> {
        let start = y.checked_mul(self.width);
        let end = start.and_then(|start| start.checked_add(self.width));
        start
            .zip(end)
            .and_then(|(start, end)| self.pixels.get_mut(start..end))
            .ok_or_else(|| format!("FLI row {y} out of range"))
    }
}

/// `n` pixels of `row` starting at `x`; callers check `x + n <= width` first, as FliDecode.c does.
fn span(row: &mut [u8], x: usize, n: usize) -> Result<&mut [u8], String> {
    row.get_mut(x..x + n)
        .ok_or_else(|| format!("FLI write of {n} pixels at column {x} out of range"))
}

/// ImagingFliDecode: the frame chunk header, then each subchunk in turn.
fn decode_frame(frame: &[u8], image: &mut Indexed) -> Result<(), String> {
    let kind = read_u16(frame, 4).ok_or("truncated FLI frame header")?;
    if kind != FRAME_CHUNK {
        return Err(format!(
            "FLI frame at offset {HEADER_LEN} has type {kind:#06x}, not 0xF1FA"
        ));
    }
    let chunks = read_u16(frame, 6).ok_or("truncated FLI frame header")?;
    // Each chunk may rewrite the whole image: a bound keeps a hostile file
    // from costing 65,535 passes (real first frames hold a few chunks).
    if chunks > MAX_CHUNKS {
        return Err(format!(
            "FLI first frame declares {chunks} chunks (more than {MAX_CHUNKS})"
        ));
    }
    let mut pos = 16;
    for _ in 0..chunks {
        let remaining = frame.len().saturating_sub(pos);
        if remaining < 10 {
            return Err(format!("truncated FLI chunk header at offset {}", HEADER_LEN + pos));
        }
        let kind = read_u16(frame, pos + 4).ok_or("truncated FLI chunk header")?;
        decode_chunk(
            kind,
            Reader {
                buf: frame,
                pos: pos + 6,
                chunk_start: pos,
            },
            image,
        )?;
        let advance = to_usize(read_u32(frame, pos).ok_or("truncated FLI chunk header")?);
        if advance == 0 {
            return Err(format!("FLI chunk at offset {} has size 0", HEADER_LEN + pos));
        }
        if advance > remaining {
            return Err(format!("FLI chunk at offset {} overruns the frame", HEADER_LEN + pos));
        }
        pos += advance;
    }
    Ok(())
}

fn decode_chunk(kind: u16, data: Reader, image: &mut Indexed) -> Result<(), String> {
    match kind {
        COLOR_256 | COLOR_64 | PSTAMP => Ok(()),
        SS2 => decode_ss2(data, image),
        LC => decode_lc(data, image),
        BLACK => {
            image.pixels.fill(0);
            Ok(())
        }
        BRUN => decode_brun(data, image),
        COPY => decode_copy(data, image),
        _ => Err(format!(
            "unknown FLI chunk type {kind} at offset {}",
            HEADER_LEN + data.chunk_start
        )),
    }
}

/// Byte-run compressed full image: per row a (ignored) packet count, then packets of `count, value` (run) or
/// `-count, bytes...` (literal) that must exactly fill the row.
fn decode_brun(mut data: Reader, image: &mut Indexed) -> Result<(), String> {
    let width = image.width;
    for y in 0..image.height {
        data.skip(1);
        let row = image.row(y)?;
        let mut x = 0;
        while x < width {
            let [op, value] = data.peek_array("BRUN")?;
            let n = if op & 0x80 != 0 {
                256 - usize::from(op)
            } else {
                usize::from(op)
            };
            if x + n > width {
                break;
            }
            if op & 0x80 != 0 {
                let literal = data.peek("BRUN", 1 + n)?;
                span(row, x, n)?.copy_from_slice(literal.get(1..).unwrap_or_default());
                data.skip(1 + n);
            } else {
                span(row, x, n)?.fill(value);
                data.skip(2);
            }
            x += n;
        }
        if x != width {
            return Err(format!(
                "FLI BRUN row {y} does not fill the width ({})",
                data.location()
            ));
        }
    }
    Ok(())
}

/// Byte-delta chunk: first line, line count, then per line a packet count and packets of
/// `skip, count, bytes...` (literal) or `skip, -count, value` (run).
fn decode_lc(mut data: Reader, image: &mut Indexed) -> Result<(), String> {
    let first = usize::from(data.u16("LC")?);
    let end = first + usize::from(data.u16("LC")?);
    let width = image.width;
    for y in first..end {
        if y >= image.height {
            return Err(format!(
                "FLI LC chunk lines {first}..{end} exceed the height ({})",
                data.location()
            ));
        }
        let [packets] = data.peek_array("LC")?;
        data.skip(1);
        let row = image.row(y)?;
        let mut x = 0;
        for _ in 0..packets {
            let [skip, op] = data.peek_array("LC")?;
            x += usize::from(skip);
            let n = if op & 0x80 != 0 {
                256 - usize::from(op)
            } else {
                usize::from(op)
            };
            if x + n > width {
                return Err(format!("FLI LC packet overflows row {y} ({})", data.location()));
            }
            if op & 0x80 != 0 {
                let [_, _, value] = data.peek_array("LC")?;
                span(row, x, n)?.fill(value);
                data.skip(3);
            } else {
                let literal = data.peek("LC", 2 + n)?;
                span(row, x, n)?.copy_from_slice(literal.get(2..).unwrap_or_default());
                data.skip(2 + n);
            }
            x += n;
        }
    }
    Ok(())
}

/// Word-delta chunk: line count, then per line optional flag words (skip lines, or set the last pixel) followed by
/// a packet count and packets of `skip, count, words...` (literal) or `skip, -count, word` (run).
fn decode_ss2(mut data: Reader, image: &mut Indexed) -> Result<(), String> {
    let lines = data.u16("SS2")?;
    let mut y = 0;
    for _ in 0..lines {
        if y >= image.height {
            return Err(format!(
                "FLI SS2 chunk has more lines than the image ({})",
                data.location()
            ));
        }
        let mut word = data.u16("SS2")?;
        while word & 0x8000 != 0 {
            if word & 0x4000 != 0 {
                y += 0x10000 - usize::from(word);
                if y >= image.height {
                    return Err(format!("FLI SS2 line skip past the last row ({})", data.location()));
                }
            } else if let Some(last) = image.row(y)?.last_mut() {
                *last = word.to_le_bytes()[0];
            }
            word = data.u16("SS2")?;
        }
        decode_ss2_line(&mut data, image.row(y)?, word)?;
        y += 1;
    }
    Ok(())
}

fn decode_ss2_line(data: &mut Reader, row: &mut [u8], packets: u16) -> Result<(), String> {
    let mut x = 0;
    for _ in 0..packets {
        let [skip, op] = data.peek_array("SS2")?;
        x += usize::from(skip);
        if op >= 128 {
            let [_, _, low, high] = data.peek_array("SS2")?;
            let n = 2 * (256 - usize::from(op));
            if x + n > row.len() {
                return Err(format!("FLI SS2 packet overflows the row ({})", data.location()));
            }
            for pair in span(row, x, n)?.chunks_exact_mut(2) {
                pair.copy_from_slice(&[low, high]);
            }
            data.skip(4);
            x += n;
        } else {
            let n = 2 * usize::from(op);
            if x + n > row.len() {
                return Err(format!("FLI SS2 packet overflows the row ({})", data.location()));
            }
            let literal = data.peek("SS2", 2 + n)?;
            span(row, x, n)?.copy_from_slice(literal.get(2..).unwrap_or_default());
            data.skip(2 + n);
            x += n;
        }
    }
    Ok(())
}

/// Uncompressed full image.
fn decode_copy(data: Reader, image: &mut Indexed) -> Result<(), String> {
    let n = image.pixels.len();
    if i32::try_from(n).is_err() {
        return Err(format!("FLI COPY chunk for {n} pixels is too large"));
    }
    image.pixels.copy_from_slice(data.peek("COPY", n)?);
    Ok(())
}

/// Replaces the palette indices in `out[..pixels]` with RGB triples filling `out`. It runs backwards, so the
/// triple for pixel `i` (at `3i`) never overwrites an index `j < i` that is still to be read.
fn expand_palette(out: &mut [u8], pixels: usize, palette: &Palette) {
    for i in (0..pixels).rev() {
        let Some(&index) = out.get(i) else { continue };
        if let Some(rgb) = out.get_mut(3 * i..3 * i + 3) {
            rgb.copy_from_slice(&palette[usize::from(index)]);
        }
    }
}

/// Cursor over a chunk's payload. As in FliDecode.c, reads are bounded by the end of the frame, not of the chunk.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    chunk_start: usize,
}

impl<'a> Reader<'a> {
    /// The next `n` bytes, without consuming them.
    fn peek(&self, chunk: &str, n: usize) -> Result<&'a [u8], String> {
        self.buf
            .get(self.pos..)
            .and_then(|rest| rest.get(..n))
            .ok_or_else(|| format!("truncated FLI {chunk} chunk ({})", self.location()))
    }

    fn peek_array<const N: usize>(&self, chunk: &str) -> Result<[u8; N], String> {
        let bytes = self.peek(chunk, N)?;
        bytes
            .first_chunk()
            .copied()
            .ok_or_else(|| format!("truncated FLI {chunk} chunk"))
    }

    fn u16(&mut self, chunk: &str) -> Result<u16, String> {
        let bytes = self.peek_array(chunk)?;
        self.skip(2);
        Ok(u16::from_le_bytes(bytes))
    }

    /// Moves past `n` bytes; the position may end up past the end, which the next `peek` reports.
    fn skip(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n);
    }

    fn location(&self) -> String {
        format!(
            "chunk at offset {}, data offset {}",
            HEADER_LEN + self.chunk_start,
            HEADER_LEN + self.pos
        )
    }
}

/// A position in `data` with Python file semantics, as `_open` reads the file: short reads at the end, seeks past
/// the end allowed.
struct PyFile<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> PyFile<'a> {
    fn read(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = self.pos.max(end);
        self.data.get(start..end).unwrap_or_default()
    }
}

fn read_u16(bytes: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_le_bytes(*bytes.get(pos..)?.first_chunk()?))
}

fn read_u32(bytes: &[u8], pos: usize) -> Option<u32> {
    Some(u32::from_le_bytes(*bytes.get(pos..)?.first_chunk()?))
}

fn to_usize(value: u32) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(width: u16, height: u16) -> Vec<u8> {
        let mut h = vec![0; HEADER_LEN];
        h[4..6].copy_from_slice(&0xAF12u16.to_le_bytes());
        h[6..8].copy_from_slice(&1u16.to_le_bytes());
        h[8..10].copy_from_slice(&width.to_le_bytes());
        h[10..12].copy_from_slice(&height.to_le_bytes());
        h[12..14].copy_from_slice(&8u16.to_le_bytes());
        h[14..16].copy_from_slice(&3u16.to_le_bytes());
        h
    }

    fn chunk(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut c = u32::try_from(6 + body.len()).unwrap().to_le_bytes().to_vec();
        c.extend_from_slice(&kind.to_le_bytes());
        c.extend_from_slice(body);
        c
    }

    fn file(width: u16, height: u16, chunks: &[Vec<u8>]) -> Vec<u8> {
        let body = chunks.concat();
        let mut f = header(width, height);
        f.extend_from_slice(&u32::try_from(16 + body.len()).unwrap().to_le_bytes());
        f.extend_from_slice(&FRAME_CHUNK.to_le_bytes());
        f.extend_from_slice(&u16::try_from(chunks.len()).unwrap().to_le_bytes());
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&body);
        f
    }

    /// One palette packet setting entries 1 and 2.
    fn palette_body() -> Vec<u8> {
        vec![1, 0, 1, 2, 10, 20, 30, 40, 50, 60]
    }

    /// 3x2 image: row 0 = run of 3 x index 1, row 1 = literal [2, 0, 1].
    fn brun_body() -> Vec<u8> {
        vec![1, 3, 1, 1, 0xFD, 2, 0, 1]
    }

    fn decode(data: &[u8]) -> Result<Vec<u8>, String> {
        let (w, h) = size(data).ok_or("size rejected the file")?;
        let mut out = vec![0xAA; w * h * 3];
        decode_first_frame(data, &mut out)?;
        Ok(out)
    }

    #[test]
    fn a_first_frame_of_more_than_64_chunks_is_refused() {
        // Pillow reads 10 bytes of every chunk header: pad the empty body.
        let black = chunk(BLACK, &[0; 4]);
        let bounded = file(3, 2, &vec![black.clone(); usize::from(MAX_CHUNKS)]);
        assert!(decode(&bounded).is_ok());
        let hostile = file(3, 2, &vec![black; usize::from(MAX_CHUNKS) + 1]);
        assert!(decode(&hostile).is_err_and(|e| e.contains("more than 64")));
    }

    #[test]
    fn color256_and_brun() {
        let data = file(3, 2, &[chunk(COLOR_256, &palette_body()), chunk(BRUN, &brun_body())]);
        assert_eq!(size(&data), Some((3, 2)));
        let expected = [10, 20, 30, 10, 20, 30, 10, 20, 30, 40, 50, 60, 0, 0, 0, 10, 20, 30];
        assert_eq!(decode(&data).unwrap(), expected);
    }

    #[test]
    fn color64_shifts_by_two() {
        let data = file(3, 2, &[chunk(COLOR_64, &palette_body()), chunk(BRUN, &brun_body())]);
        assert_eq!(decode(&data).unwrap()[..3], [40, 80, 120]);
        let out_of_range = file(1, 1, &[chunk(COLOR_64, &[1, 0, 0, 1, 64, 0, 0])]);
        assert_eq!(size(&out_of_range), None);
    }

    #[test]
    fn default_palette_is_grayscale_and_palette_may_come_second() {
        let gray = file(3, 2, &[chunk(BRUN, &brun_body())]);
        assert_eq!(decode(&gray).unwrap()[9..12], [2, 2, 2]);
        let second = file(3, 2, &[chunk(BRUN, &brun_body()), chunk(COLOR_256, &palette_body())]);
        assert_eq!(decode(&second).unwrap()[9..12], [40, 50, 60]);
    }

    #[test]
    fn unwritten_pixels_stay_zero() {
        let lc = [1, 0, 1, 0, 1, 1, 1, 1];
        let data = file(3, 2, &[chunk(COLOR_256, &palette_body()), chunk(LC, &lc)]);
        assert_eq!(
            decode(&data).unwrap(),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 20, 30, 0, 0, 0]
        );
    }

    #[test]
    fn ss2_copy_and_black() {
        // One line: set last pixel to 9, one packet: skip 0, run of 1 word (5, 6).
        let ss2 = [1, 0, 9, 0x80, 1, 0, 0, 0xFF, 5, 6];
        assert_eq!(
            decode(&file(3, 1, &[chunk(SS2, &ss2)])).unwrap(),
            [5, 5, 5, 6, 6, 6, 9, 9, 9]
        );
        // A chunk needs 10 bytes left in the frame (FliDecode.c), so this COPY is padded.
        let copy = file(2, 1, &[chunk(COPY, &[7, 8, 0, 0])]);
        assert_eq!(decode(&copy).unwrap(), [7, 7, 7, 8, 8, 8]);
        let black = file(2, 1, &[chunk(COPY, &[7, 8]), chunk(BLACK, &[0, 0, 0, 0])]);
        assert_eq!(decode(&black).unwrap(), [0; 6]);
    }

    #[test]
    fn truncated_file_is_an_error() {
        let data = file(3, 2, &[chunk(COLOR_256, &palette_body()), chunk(BRUN, &brun_body())]);
        let cut = &data[..data.len() - 3];
        assert!(size(cut).is_some());
        assert!(decode(cut).unwrap_err().contains("truncated"));
        assert_eq!(size(&data[..100]), None);
    }

    #[test]
    fn header_checks() {
        let good = file(1, 1, &[]);
        assert_eq!(size(&good), Some((1, 1)));
        for (offset, value) in [(5, 0), (14, 1), (21, 1), (50, 1), (127, 1), (6, 0), (8, 0)] {
            let mut bad = good.clone();
            bad[offset] = value;
            assert_eq!(size(&bad), None, "byte {offset} = {value}");
        }
    }

    #[test]
    fn prefix_chunk_opens_but_does_not_decode() {
        let frame = file(1, 1, &[chunk(COLOR_256, &palette_body())]);
        let mut data = header(1, 1);
        data.extend_from_slice(&chunk(PREFIX_CHUNK, &[0; 10]));
        data.extend_from_slice(&frame[HEADER_LEN..]);
        assert_eq!(size(&data), Some((1, 1)));
        assert!(decode(&data).is_err());
    }

    #[test]
    fn wrong_output_length_is_an_error() {
        let data = file(3, 2, &[chunk(BRUN, &brun_body())]);
        assert!(decode_first_frame(&data, &mut [0; 17]).is_err());
    }

    #[test]
    fn garbage_does_not_panic() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0x2545_F491_4F6C_DD1D);
        let mut next = move || rng.random::<u8>();
        let base = file(5, 4, &[chunk(COLOR_64, &palette_body()), chunk(BRUN, &[0; 40])]);
        for round in 0..3000 {
            let mut data = if round % 2 == 0 { base.clone() } else { header(5, 4) };
            let extra = usize::from(next()) % 64;
            data.extend((0..extra).map(|_| next()));
            for _ in 0..usize::from(next() % 4) {
                if data.len() == HEADER_LEN {
                    break;
                }
                let pos = HEADER_LEN + usize::from(next()) % (data.len() - HEADER_LEN);
                data[pos] = next();
            }
            if size(&data).is_some() {
                let _ = decode_first_frame(&data, &mut [0; 60]);
            }
        }
        assert_eq!(size(&[]), None);
        assert!(decode_first_frame(&[0xFF; 300], &mut []).is_err());
    }
}

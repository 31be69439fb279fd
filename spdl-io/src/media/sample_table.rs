//! The timing part of an MP4/MOV sample table, read from the `moov` box
//! without touching the media data: each sample's decode time (`stts`) and
//! composition offset (`ctts`), in decode order. FFmpeg's public index has
//! decode times only, which for a stream with B-frames do not say which
//! frame is shown when; the composition offsets do. The frame index
//! (`video`) checks the result against FFmpeg's own index before trusting
//! it, and scans the packets when anything disagrees.
//!
//! Hand-rolled (about a hundred lines of box walking) because the one
//! hardened parser on crates.io (`mp4parse`) reads its input sequentially,
//! so a file with its `moov` after the media data would be read whole: the
//! point here is to read the header only, through ranged reads for remote
//! objects. Every count is checked against the bytes that hold it before
//! anything is allocated.

use crate::limits::Limits;
use crate::source::read::{ByteInput, RandomRead};
use crate::source::Source;

/// The largest `moov` box read (a sample table of 20 million samples at
/// the tables' worst, 16 bytes a sample, is 320 MB; real ones are far
/// smaller).
const MAX_MOOV_BYTES: u64 = 256 << 20;

/// Decode time and composition offset of each sample of one track, in the
/// track's media time scale and decode order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SampleTimes {
    /// Decode timestamps, from `stts`, starting at 0.
    pub(crate) dts: Vec<i64>,
    /// Composition (presentation) timestamps: `dts` plus `ctts`'s offset.
    pub(crate) pts: Vec<i64>,
    /// The file's size in bytes (a table can list samples a truncated
    /// file no longer holds).
    pub(crate) file_size: u64,
}

/// Reads the sample times of the track with id `track_id` (FFmpeg's
/// stream id for MOV/MP4) from `src`, opened afresh. `None` when the file
/// has no readable `moov`, no such track, or tables that do not add up (a
/// fragmented file's empty table included); `max_samples` bounds the table
/// before allocation.
pub(crate) fn sample_times(src: &Source, limits: &Limits, track_id: u32, max_samples: u64) -> Option<SampleTimes> {
    match src.open_random(limits).ok()? {
        ByteInput::Random(mut input) => read_sample_times(&mut *input, track_id, max_samples),
        ByteInput::SequentialFile(_) => None,
    }
}

fn read_sample_times(input: &mut dyn RandomRead, track_id: u32, max_samples: u64) -> Option<SampleTimes> {
    let moov = read_moov(input)?;
    let trak = boxes(&moov).filter(|b| b.kind == *b"trak").find(|t| {
        child(t.body, b"tkhd").is_some_and(|tkhd| {
            let at = if tkhd.first() == Some(&1) { 20 } else { 12 };
            be_u32(tkhd, at) == Some(track_id)
        })
    })?;
    let stbl = [b"mdia", b"minf", b"stbl"]
        .iter()
        .try_fold(trak.body, |body, kind| child(body, kind))?;
    let dts = decode_times(child(stbl, b"stts")?, max_samples)?;
    let offsets = match child(stbl, b"ctts") {
        Some(ctts) => composition_offsets(ctts, dts.len())?,
        None => vec![0; dts.len()], // bounded: as `dts`, checked in `decode_times`
    };
    let pts = dts.iter().zip(&offsets).map(|(d, o)| d + i64::from(*o)).collect();
    Some(SampleTimes {
        dts,
        pts,
        file_size: input.size(),
    })
}

/// Finds the top-level `moov` box and reads it whole.
fn read_moov(input: &mut dyn RandomRead) -> Option<Vec<u8>> {
    let size = input.size();
    let mut pos = 0u64;
    while pos + 8 <= size {
        let mut head = [0u8; 16];
        let n = read_full(input, pos, &mut head)?;
        let small = u64::from(be_u32(&head, 0)?);
        let (len, header) = match small {
            0 => (size - pos, 8),
            1 if n >= 16 => (u64::from_be_bytes(head[8..16].try_into().ok()?), 16),
            _ => (small, 8),
        };
        if len < header || pos + len > size {
            return None;
        }
        if &head[4..8] == b"moov" {
            if len > MAX_MOOV_BYTES {
                return None;
            }
            // bounded: `len` is at most MAX_MOOV_BYTES and within the file.
            let mut body = vec![0u8; (len - header) as usize];
            return (read_full(input, pos + header, &mut body)? == body.len()).then_some(body);
        }
        pos += len;
    }
    None
}

fn read_full(input: &mut dyn RandomRead, pos: u64, buf: &mut [u8]) -> Option<usize> {
    let mut done = 0;
    while done < buf.len() {
        match input.read_at(pos + done as u64, &mut buf[done..]).ok()? {
            0 => break,
            n => done += n,
        }
    }
    Some(done)
}

/// One box inside a parent's body (ISOBMFF: MP4, MOV, HEIF, AVIF).
pub(crate) struct Mp4Box<'a> {
    pub(crate) kind: [u8; 4],
    pub(crate) body: &'a [u8],
}

/// The boxes in `body`, stopping at the first malformed header.
pub(crate) fn boxes(mut body: &[u8]) -> impl Iterator<Item = Mp4Box<'_>> {
    std::iter::from_fn(move || {
        let small = be_u32(body, 0)? as usize;
        let (len, header) = match small {
            0 => (body.len(), 8),
            1 => (
                usize::try_from(u64::from_be_bytes(body.get(8..16)?.try_into().ok()?)).ok()?,
                16,
            ),
            _ => (small, 8),
        };
        if len < header || len > body.len() {
            return None;
        }
        let found = Mp4Box {
            kind: body[4..8].try_into().ok()?,
            body: &body[header..len],
        };
        body = &body[len..];
        Some(found)
    })
}

/// The body of the first `kind` box in `body`.
pub(crate) fn child<'a>(body: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(body).find(|b| &b.kind == kind).map(|b| b.body)
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The (count, value) pairs of a full box's table: version/flags, entry
/// count, then `entries` of 8 bytes each, checked against the box's size.
fn table(body: &[u8]) -> Option<impl Iterator<Item = (u32, u32)> + '_> {
    let entries = be_u32(body, 4)? as usize;
    let rows = body.get(8..)?.get(..entries.checked_mul(8)?)?;
    Some(
        rows.chunks_exact(8)
            .map(|r| (be_u32(r, 0).unwrap_or(0), be_u32(r, 4).unwrap_or(0))),
    )
}

/// Sample decode times from `stts`, with the total sample count checked
/// against `max_samples` before the times are expanded.
fn decode_times(stts: &[u8], max_samples: u64) -> Option<Vec<i64>> {
    let total: u64 = table(stts)?.map(|(count, _)| u64::from(count)).sum();
    if total == 0 || total > max_samples {
        return None;
    }
    let mut dts = Vec::new(); // grown: `total` is bounded, but not trusted
    let mut t = 0i64;
    for (count, delta) in table(stts)? {
        for _ in 0..count {
            dts.push(t);
            t = t.checked_add(i64::from(delta))?;
        }
    }
    Some(dts)
}

/// Per-sample composition offsets from `ctts` (signed, as FFmpeg reads
/// both versions), which must cover exactly `samples` samples.
fn composition_offsets(ctts: &[u8], samples: usize) -> Option<Vec<i32>> {
    let mut offsets = Vec::new();
    for (count, offset) in table(ctts)? {
        if offsets.len() + count as usize > samples {
            return None;
        }
        offsets.extend(std::iter::repeat_n(offset as i32, count as usize));
    }
    (offsets.len() == samples).then_some(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::read::MemoryReader;

    fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    fn full_table(rows: &[(u32, u32)]) -> Vec<u8> {
        let mut out = vec![0, 0, 0, 0];
        out.extend((rows.len() as u32).to_be_bytes());
        for (a, b) in rows {
            out.extend(a.to_be_bytes());
            out.extend(b.to_be_bytes());
        }
        out
    }

    fn movie(track_id: u32, stts: &[(u32, u32)], ctts: Option<&[(u32, u32)]>) -> Vec<u8> {
        let mut tkhd = vec![0u8; 84];
        tkhd[12..16].copy_from_slice(&track_id.to_be_bytes());
        let mut stbl = mp4_box(b"stts", &full_table(stts));
        if let Some(c) = ctts {
            stbl.extend(mp4_box(b"ctts", &full_table(c)));
        }
        let mdia = mp4_box(b"mdia", &mp4_box(b"minf", &mp4_box(b"stbl", &stbl)));
        let trak = mp4_box(b"trak", &[mp4_box(b"tkhd", &tkhd), mdia].concat());
        [
            mp4_box(b"ftyp", b"isom"),
            mp4_box(b"mdat", &[0; 32]),
            mp4_box(b"moov", &trak),
        ]
        .concat()
    }

    fn times(file: Vec<u8>, track: u32, max: u64) -> Option<SampleTimes> {
        read_sample_times(&mut MemoryReader(file.into()), track, max)
    }

    #[test]
    fn composition_offsets_reorder_frames() {
        // I P B B: decode order 0 1 2 3, shown 0 3 1 2.
        let file = movie(1, &[(4, 10)], Some(&[(1, 10), (1, 40), (2, 10)]));
        let t = times(file, 1, 100).unwrap();
        assert_eq!(t.dts, [0, 10, 20, 30]);
        assert_eq!(t.pts, [10, 50, 30, 40]);
        assert_eq!(t.file_size, 8 + 4 + 8 + 32 + 8 + 8 + 84 + 8 * 4 + 24 + 8 + 8 + 3 * 8);
    }

    #[test]
    fn without_ctts_pts_is_dts() {
        let t = times(movie(7, &[(2, 5), (1, 3)], None), 7, 100).unwrap();
        assert_eq!(t.pts, [0, 5, 10]);
    }

    #[test]
    fn tables_that_do_not_add_up_are_refused() {
        assert!(
            times(movie(1, &[(4, 10)], Some(&[(3, 0)])), 1, 100).is_none(),
            "ctts short"
        );
        assert!(
            times(movie(1, &[(4, 10)], Some(&[(5, 0)])), 1, 100).is_none(),
            "ctts long"
        );
        assert!(times(movie(1, &[(4, 10)], None), 2, 100).is_none(), "no such track");
        assert!(
            times(movie(1, &[(u32::MAX, 1)], None), 1, 1000).is_none(),
            "over the limit"
        );
        assert!(times(movie(1, &[], None), 1, 100).is_none(), "empty (fragmented)");
        let mut cut = movie(1, &[(4, 10)], None);
        cut.truncate(cut.len() - 4);
        assert!(times(cut, 1, 100).is_none(), "moov past the end");
    }

    #[test]
    fn a_hostile_entry_count_allocates_nothing() {
        let mut stts = full_table(&[(1, 1)]);
        stts[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        let mut tkhd = vec![0u8; 84];
        tkhd[12..16].copy_from_slice(&1u32.to_be_bytes());
        let stbl = mp4_box(b"stbl", &mp4_box(b"stts", &stts));
        let trak = mp4_box(
            b"trak",
            &[mp4_box(b"tkhd", &tkhd), mp4_box(b"mdia", &mp4_box(b"minf", &stbl))].concat(),
        );
        assert!(times(mp4_box(b"moov", &trak), 1, 100).is_none());
    }
}

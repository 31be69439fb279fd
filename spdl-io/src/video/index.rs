//! The frame index of a video stream: the presentation time of every frame
//! and of every keyframe, which turns "frame `i`" or "the frame shown at
//! `t` seconds" into a seek and a short decode. Built from the container's
//! sample table where it has one (MP4/MOV, composition offsets included,
//! checked against FFmpeg's own index), else by reading every packet, or
//! (in [`SeekMode::Approximate`]) from the header's frame rate. It can be
//! saved as bytes and loaded again, so a dataset is indexed once.

use super::clip::VideoSource;
use super::config::SeekMode;
use crate::error::{Error, Result};
use crate::ffmpeg::stream::IndexEntry;
use crate::limits::Limits;
use crate::media::demux::{Demuxer, StreamInfo};
use crate::media::sample_table::sample_times;
use crate::media::time::Ratio;
use crate::source::Source;

/// Most frames an index holds (a week at 30 fps; 160 MB of index).
const MAX_INDEXED_FRAMES: u64 = 20_000_000;

/// Frames after a call's last frame that the decoder is told not to skip
/// (more than any reorder delay in practice).
const FOLLOWING_FRAMES: usize = 16;

/// The first bytes of a saved index (and its format version).
const MAGIC: &[u8; 8] = b"SPDLFIX1";

/// Where an index came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IndexOrigin {
    /// The container's sample table (no packet read).
    SampleTable,
    /// Every packet of the stream was read.
    Scan,
    /// The header's frame rate and count ([`SeekMode::Approximate`]).
    Header,
}

/// The presentation times of a stream's frames and keyframes.
///
/// ```no_run
/// use spdl_io::video::{FrameIndex, VideoReader};
/// let reader = VideoReader::open("clip.mp4", &Default::default())?;
/// let saved = reader.index().to_bytes();
/// let again = VideoReader::open_with_index("clip.mp4", &Default::default(), FrameIndex::from_bytes(&saved)?)?;
/// assert_eq!(again.len(), reader.len());
/// # Ok::<(), spdl_io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameIndex {
    /// Pts of every frame, ascending: frame `i` is `pts[i]` (for a
    /// [`IndexOrigin::Header`] index, the time from which frame `i` is
    /// the next shown).
    pub(super) pts: Vec<i64>,
    /// Pts of keyframes, ascending (empty: unknown, seek to the time).
    pub(super) keyframes: Vec<i64>,
    /// Whether packet times map to frames. If not (e.g. AVI with B-frames
    /// and no pts), frames are found by counting decoded frames from the
    /// start instead of seeking.
    pub(super) exact: bool,
    origin: IndexOrigin,
    stream: usize,
    time_base: Ratio,
}

impl FrameIndex {
    /// Number of frames.
    pub fn len(&self) -> usize {
        self.pts.len()
    }
    /// Whether the stream has no frame.
    pub fn is_empty(&self) -> bool {
        self.pts.is_empty()
    }
    /// Where the index came from.
    pub fn origin(&self) -> IndexOrigin {
        self.origin
    }
    /// The stream the index describes.
    pub fn stream(&self) -> usize {
        self.stream
    }
    /// Presentation time of every frame in seconds (stream time).
    pub fn frame_seconds(&self) -> Vec<f64> {
        self.pts.iter().map(|&t| self.time_base.seconds(t)).collect()
    }
    /// Presentation time of every keyframe in seconds.
    pub fn keyframe_seconds(&self) -> Vec<f64> {
        self.keyframes.iter().map(|&t| self.time_base.seconds(t)).collect()
    }

    /// The frame shown at `seconds`: the last frame whose time is at or
    /// before it; `None` before the first frame.
    pub fn frame_at(&self, seconds: f64) -> Option<usize> {
        let t = self.time_base.timestamp(seconds + 1e-9);
        self.pts.partition_point(|&p| p <= t).checked_sub(1)
    }

    /// Time of frame `i` in seconds.
    pub(super) fn seconds(&self, i: usize) -> f64 {
        self.time_base.seconds(self.pts[i])
    }

    /// The first frame shown at or after `seconds` (`len()` if none).
    pub(super) fn first_from(&self, seconds: f64) -> usize {
        self.pts
            .partition_point(|&p| self.time_base.seconds(p) < seconds - 1e-9)
    }

    /// Builds the index of `source`'s stream, which must be at its start;
    /// leaves it positioned anywhere (the first lookup seeks).
    pub(super) fn build(source: &mut VideoSource, src: &Source, mode: SeekMode) -> Result<Self> {
        let stream = source.reader.stream();
        let demuxer = source.reader.demuxer_mut();
        let info = demuxer.stream_info(stream)?;
        let mut index = match Self::from_sample_table(demuxer, src, &info)? {
            Some(index) => index,
            None if mode == SeekMode::Approximate => match Self::from_header(&info, demuxer.info().duration) {
                Some(index) => return Ok(index),
                None => Self::scan(source.reader.demuxer_mut(), &info)?,
            },
            None => Self::scan(demuxer, &info)?,
        };
        if index.leading_frames() > 0 {
            source.restart(src)?;
            index.settle_leading_frames(source, src)?;
        }
        Ok(index)
    }

    fn new(pts: Vec<i64>, keyframes: Vec<i64>, exact: bool, origin: IndexOrigin, info: &StreamInfo) -> Self {
        FrameIndex {
            pts,
            keyframes,
            exact,
            origin,
            stream: info.index,
            time_base: info.time_base,
        }
    }

    /// Reads every packet's timestamp. The index costs 8 bytes a frame, so
    /// it is bounded by [`MAX_INDEXED_FRAMES`] (days of video), not by
    /// [`Limits::max_frames`], which bounds decoded output.
    fn scan(demuxer: &mut Demuxer, info: &StreamInfo) -> Result<Self> {
        let (mut pts, mut keyframes, mut exact) = (Vec::new(), Vec::new(), true);
        while let Some(p) = demuxer.read_packet(info.index)? {
            exact &= p.pts().is_some();
            // A packet without any timestamp (raw H.264) still is a frame;
            // the index is then not exact and only counts frames.
            let t = p
                .pts()
                .or(p.dts())
                .unwrap_or_else(|| pts.last().map_or(0, |l: &i64| l + 1));
            if p.is_key() {
                keyframes.push(t); // a seek point even when not shown
            }
            if p.is_discard() {
                continue;
            }
            Limits::check(
                demuxer.source_name(),
                "indexed frame count",
                pts.len() as u64 + 1,
                MAX_INDEXED_FRAMES,
            )?;
            pts.push(t);
        }
        pts.sort_unstable();
        keyframes.sort_unstable();
        Ok(Self::new(pts, keyframes, exact, IndexOrigin::Scan, info))
    }

    /// The index from an MP4/MOV sample table: FFmpeg's index gives each
    /// sample's decode time, keyframe and discard flags (after edit lists);
    /// the table's composition offsets give its presentation time. Used
    /// only when the two agree sample for sample, and when the first
    /// packet's times match; otherwise `None` (the caller scans).
    fn from_sample_table(demuxer: &mut Demuxer, src: &Source, info: &StreamInfo) -> Result<Option<Self>> {
        if !demuxer.info().format.contains("mp4") {
            return Ok(None);
        }
        let (entries, id) = demuxer.container_index(info.index);
        let Some(times) = u32::try_from(id)
            .ok()
            .filter(|_| !entries.is_empty())
            .and_then(|track| sample_times(src, demuxer.limits(), track, MAX_INDEXED_FRAMES))
        else {
            return Ok(None);
        };
        // FFmpeg drops the samples before the keyframe an edit starts from.
        let Some(skip) = times.dts.len().checked_sub(entries.len()) else {
            return Ok(None);
        };
        let (dts, pts) = (&times.dts[skip..], &times.pts[skip..]);
        let shift = entries[0].timestamp - dts[0];
        let beyond_file = |e: &IndexEntry| u64::try_from(e.end).map_or(true, |end| end > times.file_size);
        if entries
            .iter()
            .zip(dts)
            .any(|(e, d)| e.timestamp != d + shift || beyond_file(e))
        {
            return Ok(None); // misaligned, or a truncated file
        }
        // The first packet says how FFmpeg offsets presentation times
        // (edit lists, its shift for negative composition offsets).
        let first = demuxer.read_packet(info.index)?;
        let Some((Some(first_pts), Some(first_dts))) = first.map(|p| (p.pts(), p.dts())) else {
            return Ok(None);
        };
        if first_dts != entries[0].timestamp {
            return Ok(None);
        }
        let offset = first_pts - pts[0];
        let mut frames: Vec<i64> = entries
            .iter()
            .zip(pts)
            .filter(|(e, _)| !e.discard)
            .map(|(_, p)| p + offset)
            .collect();
        let mut keyframes: Vec<i64> = entries
            .iter()
            .zip(pts)
            .filter(|(e, _)| e.key)
            .map(|(_, p)| p + offset)
            .collect();
        frames.sort_unstable();
        keyframes.sort_unstable();
        if frames.windows(2).any(|w| w[0] == w[1]) {
            return Ok(None); // two frames at one time: let the packets decide
        }
        Ok(Some(Self::new(frames, keyframes, true, IndexOrigin::SampleTable, info)))
    }

    /// The index [`SeekMode::Approximate`] makes from the header: a frame
    /// every `1 / fps` from the stream's start, for the declared frame
    /// count (or the stream's duration, else the container's, x fps).
    /// `None` without a frame rate or a length.
    fn from_header(info: &StreamInfo, container_duration: Option<f64>) -> Option<Self> {
        let fps = info.avg_frame_rate.and_then(Ratio::to_f64).filter(|f| *f > 0.0)?;
        let count = match (info.header_frames, info.duration.or(container_duration)) {
            (Some(n), _) if n > 0 => n,
            (_, Some(d)) if d > 0.0 && d.is_finite() => (d * fps).round() as u64,
            _ => return None,
        };
        if count > MAX_INDEXED_FRAMES {
            return None;
        }
        let start = info.start_time.unwrap_or(0.0);
        let pts = (0..count)
            .map(|i| info.time_base.timestamp_at_or_after(start + (i as f64 - 0.5) / fps))
            .collect();
        Some(Self::new(pts, Vec::new(), true, IndexOrigin::Header, info))
    }

    /// Indexed frames shown before the first keyframe (0 when the index
    /// is not exact, or no packet is flagged a keyframe).
    fn leading_frames(&self) -> usize {
        match self.keyframes.first() {
            Some(&key) if self.exact => self.pts.partition_point(|&p| p < key),
            _ => 0,
        }
    }

    /// A stream cut in the middle of a GOP starts with frames shown before
    /// its first keyframe, which decoders mostly drop (their references are
    /// missing). Those index entries become the frames the decoder does
    /// show there, found by decoding from the start up to the keyframe, so
    /// frame `i` is the `i`-th frame [`load_video`](super::load_video)
    /// returns. `source` must be at the start of the stream.
    fn settle_leading_frames(&mut self, source: &mut VideoSource, src: &Source) -> Result<()> {
        let (key, leading) = (self.keyframes[0], self.leading_frames());
        let mut shown = Vec::new();
        while let Some(frame) = source.reader.next_frame()? {
            match frame.pts() {
                Some(t) if t < key => shown.push(t),
                _ => break,
            }
        }
        shown.sort_unstable();
        shown.dedup();
        self.pts.splice(..leading, shown);
        source.restart(src)
    }

    /// Where to seek for the frame at `t`: the keyframe at or before it
    /// (the first keyframe if none is; `t` itself when keyframes are not
    /// known, for the demuxer to find).
    pub(super) fn keyframe_before(&self, t: i64) -> i64 {
        match self.keyframes.partition_point(|&k| k <= t) {
            _ if self.keyframes.is_empty() => t,
            0 => self.keyframes[0],
            i => self.keyframes[i - 1],
        }
    }

    /// The pts a decoder must not skip to show frames `targets`
    /// (ascending): theirs, and those of the frames just after the last,
    /// which the decoder receives before it shows the last (reordering),
    /// so a next call reading on from there finds them decoded.
    pub(super) fn wanted(&self, targets: impl Iterator<Item = usize>) -> Vec<i64> {
        let mut wanted: Vec<i64> = targets.map(|i| self.pts[i]).collect();
        if let Some(&last) = wanted.last() {
            let after = self.pts.partition_point(|&p| p <= last);
            wanted.extend(self.pts.iter().skip(after).take(FOLLOWING_FRAMES));
        }
        wanted
    }

    /// Whether the index's times are the frames' own (so the decoder may
    /// skip unreferenced frames at other times).
    pub(super) fn has_frame_times(&self) -> bool {
        self.exact && self.origin != IndexOrigin::Header
    }

    /// Checks that this index can describe the stream `info` (a saved
    /// index loaded for another file fails here, or at its first frame).
    pub(super) fn check_matches(&self, src: &str, info: &StreamInfo) -> Result<()> {
        if self.stream == info.index && self.time_base == info.time_base {
            return Ok(());
        }
        Err(Error::InvalidConfig(format!(
            "{src}: the frame index is of stream {} with time base {}, but the stream is {} with time base {}",
            self.stream, self.time_base, info.index, info.time_base
        )))
    }

    /// The index as bytes, for [`FrameIndex::from_bytes`].
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.push(self.origin as u8);
        out.push(u8::from(self.exact));
        out.extend((self.stream as u64).to_le_bytes());
        out.extend(self.time_base.num.to_le_bytes());
        out.extend(self.time_base.den.to_le_bytes());
        for list in [&self.pts, &self.keyframes] {
            out.extend((list.len() as u64).to_le_bytes());
            out.extend(list.iter().flat_map(|t| t.to_le_bytes()));
        }
        out
    }

    /// Reads an index saved by [`FrameIndex::to_bytes`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the bytes are not a saved index (or
    /// one cut short, or with times out of order).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bad = |what: &str| Error::InvalidConfig(format!("not a saved frame index: {what}"));
        let mut r = ByteCursor(bytes);
        if r.take(8) != Some(MAGIC.as_slice()) {
            return Err(bad("wrong magic bytes or version"));
        }
        let origin = match r.take(1).ok_or_else(|| bad("cut short"))?[0] {
            0 => IndexOrigin::SampleTable,
            1 => IndexOrigin::Scan,
            2 => IndexOrigin::Header,
            _ => return Err(bad("unknown origin")),
        };
        let exact = r.take(1).ok_or_else(|| bad("cut short"))?[0] != 0;
        let stream = usize::try_from(r.u64().ok_or_else(|| bad("cut short"))?).map_err(|_| bad("stream"))?;
        let num = r.i32().ok_or_else(|| bad("cut short"))?;
        let den = r.i32().ok_or_else(|| bad("cut short"))?;
        let mut lists = [Vec::new(), Vec::new()];
        for list in &mut lists {
            let n = r.u64().ok_or_else(|| bad("cut short"))?;
            // The count is checked against the bytes present before use.
            let raw = usize::try_from(n)
                .ok()
                .and_then(|n| n.checked_mul(8))
                .and_then(|len| r.take(len))
                .ok_or_else(|| bad("cut short"))?;
            *list = raw
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default()))
                .collect();
            if list.windows(2).any(|w| w[0] > w[1]) {
                return Err(bad("times out of order"));
            }
        }
        if !r.0.is_empty() || num <= 0 || den <= 0 {
            return Err(bad("trailing bytes or a bad time base"));
        }
        let [pts, keyframes] = lists;
        Ok(FrameIndex {
            pts,
            keyframes,
            exact,
            origin,
            stream,
            time_base: Ratio { num, den },
        })
    }
}

/// Reads a saved index front to back.
struct ByteCursor<'a>(&'a [u8]);

impl<'a> ByteCursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> FrameIndex {
        FrameIndex {
            pts: vec![0, 512, 1024, 1536],
            keyframes: vec![0, 1024],
            exact: true,
            origin: IndexOrigin::SampleTable,
            stream: 1,
            time_base: Ratio { num: 1, den: 12800 },
        }
    }

    #[test]
    fn saved_index_loads_back_equal() {
        let i = index();
        assert_eq!(FrameIndex::from_bytes(&i.to_bytes()).unwrap(), i);
    }

    #[test]
    fn broken_saved_index_is_refused() {
        let bytes = index().to_bytes();
        for cut in [0, 7, 9, 20, bytes.len() - 1] {
            assert!(FrameIndex::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = bytes.clone();
        huge[26..34].copy_from_slice(&u64::MAX.to_le_bytes()); // pts count
        assert!(FrameIndex::from_bytes(&huge).is_err());
        let mut unordered = bytes;
        unordered[34..42].copy_from_slice(&5000i64.to_le_bytes());
        assert!(FrameIndex::from_bytes(&unordered).is_err());
    }

    #[test]
    fn frame_at_takes_the_frame_on_screen() {
        let i = index(); // frames at 0, 0.04, 0.08, 0.12 s
        assert_eq!(i.frame_at(0.0), Some(0));
        assert_eq!(i.frame_at(0.039), Some(0));
        assert_eq!(i.frame_at(0.04), Some(1));
        assert_eq!(i.frame_at(10.0), Some(3));
        assert_eq!(i.frame_at(-1.0), None);
    }

    /// Every MP4/MOV fixture: the index from the sample table is the one
    /// reading every packet gives (B-frames, edit lists, start offsets).
    #[test]
    fn sample_table_index_equals_the_scanned_one() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
        let mut checked = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !(name.ends_with(".mp4") || name.ends_with(".mov")) {
                continue;
            }
            let src = Source::from(path.as_path());
            let Ok(mut source) = VideoSource::open(src.clone(), &Default::default()) else {
                continue; // not media (a fixture of bad input)
            };
            let stream = source.reader.stream();
            let info = source.reader.demuxer().stream_info(stream).unwrap();
            let table = FrameIndex::from_sample_table(source.reader.demuxer_mut(), &src, &info).unwrap();
            let mut fresh = VideoSource::open(src.clone(), &Default::default()).unwrap();
            let Ok(scanned) = FrameIndex::scan(fresh.reader.demuxer_mut(), &info) else {
                continue; // truncated: the scan fails, the table may not
            };
            match table {
                Some(table) => {
                    assert_eq!(table.pts, scanned.pts, "{name}: frame times");
                    assert_eq!(table.keyframes, scanned.keyframes, "{name}: keyframes");
                    checked.push(name);
                }
                None => assert!(
                    name.contains("fragmented") || name.contains("truncated"),
                    "{name}: no sample-table index"
                ),
            }
        }
        checked.sort();
        assert!(checked.len() >= 15, "{checked:?}");
        assert!(checked.iter().any(|n| n == "h264_edit_list.mp4"), "{checked:?}");
    }

    #[test]
    fn keyframe_before_falls_back_to_the_time_itself() {
        let mut i = index();
        assert_eq!(i.keyframe_before(1500), 1024);
        assert_eq!(i.keyframe_before(-5), 0);
        i.keyframes.clear();
        assert_eq!(i.keyframe_before(1500), 1500);
    }
}

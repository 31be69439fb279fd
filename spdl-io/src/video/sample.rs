//! Frames picked by index: a frame index built from the container's own
//! table (MP4 sample tables) or a packet scan, then for each run of wanted
//! indices a seek to the keyframe before it and a decode forward, with
//! non-reference frames nobody wants skipped.

use ndarray::Array4;

use super::clip::{frame_seconds, Video, VideoSource};
use super::config::VideoConfig;
use crate::error::{Error, Position, Result};
use crate::limits::Limits;
use crate::media::decode::Frame;
use crate::media::demux::Demuxer;
use crate::source::Source;

/// Most frames [`sample_frames`] indexes (a week at 30 fps; 160 MB of index).
const MAX_INDEXED_FRAMES: u64 = 20_000_000;

/// Presentation timestamps of every frame of a stream, from the packets
/// themselves (not from headers), plus the keyframes among them.
struct FrameIndex {
    /// Pts of every frame, ascending: frame `i` is `pts[i]`.
    pts: Vec<i64>,
    /// Pts of keyframes, ascending.
    keyframes: Vec<i64>,
    /// Whether every packet carried a pts. If not (e.g. AVI with B-frames),
    /// packet times do not map to frames, and frames are found by counting
    /// decoded frames from the start instead of seeking.
    exact: bool,
}

impl FrameIndex {
    /// Reads every packet's timestamp. The index costs 8 bytes a frame, so
    /// it is bounded by [`MAX_INDEXED_FRAMES`] (days of video), not by
    /// [`Limits::max_frames`], which bounds decoded output.
    fn scan(demuxer: &mut Demuxer, stream: usize) -> Result<Self> {
        let (mut pts, mut keyframes, mut exact) = (Vec::new(), Vec::new(), true);
        while let Some(p) = demuxer.read_packet(stream)? {
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
        Ok(FrameIndex { pts, keyframes, exact })
    }

    /// The index from the container's sample table, when it is known to be
    /// the exact frame index without reading any packet: MP4/MOV (whose
    /// table lists every sample) with no frame reordering (so each entry's
    /// timestamp is its pts) and a first entry at the stream's start time.
    /// Remote videos then seek straight to the GOPs needed.
    fn from_container(demuxer: &Demuxer, stream: usize) -> Option<Self> {
        let info = demuxer.info();
        if !info.format.contains("mp4") {
            return None;
        }
        let (entries, delay) = demuxer.container_index(stream);
        let st = demuxer.stream(stream).ok()?;
        // A fragmented MP4's index covers only the fragments read so far;
        // the sample table's count (nb_frames) must match it.
        let whole = st.frames() > 0 && st.frames() as usize == entries.len();
        if !whole || delay != 0 || entries[0].0 != st.start_time() || !entries.windows(2).all(|w| w[0].0 < w[1].0) {
            return None;
        }
        Limits::check(
            demuxer.source_name(),
            "indexed frame count",
            entries.len() as u64,
            MAX_INDEXED_FRAMES,
        )
        .ok()?;
        let keyframes = entries.iter().filter(|e| e.1).map(|e| e.0).collect();
        let pts = entries.into_iter().map(|e| e.0).collect();
        Some(FrameIndex {
            pts,
            keyframes,
            exact: true,
        })
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
    /// frame `i` is the `i`-th frame [`load_video`] returns.
    /// `source` must be at the start of the stream; it is reopened after.
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

    /// The keyframe at or before `t` (the first keyframe if none is).
    fn keyframe_before(&self, t: i64) -> i64 {
        let i = self.keyframes.partition_point(|&k| k <= t);
        match i {
            0 => self.keyframes.first().copied().unwrap_or(i64::MIN),
            _ => self.keyframes[i - 1],
        }
    }
}

/// Decodes only the frames at `indices` (presentation order, counted from
/// the stream's content), in the order given; repeated and backward indices
/// are allowed. Seeks to the keyframe before each run of requested frames
/// and decodes forward, reusing decoded work for nearby indices. The
/// config's time window and frame rate are ignored.
///
/// ```no_run
/// let video = spdl_io::sample_frames("clip.mp4", &[0, 30, 60, 30], &Default::default())?;
/// assert_eq!(video.len(), 4);
/// # Ok::<(), spdl_io::Error>(())
/// ```
///
/// # Errors
/// [`Error::FrameIndex`] for an index past the last frame; otherwise as
/// [`load_video`].
pub fn sample_frames(src: impl Into<Source>, indices: &[usize], config: &VideoConfig) -> Result<Video> {
    sample_frames_by(src, |_| indices.to_vec(), config)
}

/// [`sample_frames`] with the indices picked once the frame count is known:
/// `pick(frames)` returns them (for example [`evenly_spaced`]), so a clip
/// sampler needs no second open of the file.
///
/// ```no_run
/// use spdl_io::video::{evenly_spaced, sample_frames_by};
/// let clip = sample_frames_by("clip.mp4", |frames| evenly_spaced(frames, 8), &Default::default())?;
/// assert_eq!(clip.len(), 8);
/// # Ok::<(), spdl_io::Error>(())
/// ```
///
/// # Errors
/// As [`sample_frames`].
pub fn sample_frames_by(
    src: impl Into<Source>,
    pick: impl FnOnce(usize) -> Vec<usize>,
    config: &VideoConfig,
) -> Result<Video> {
    let mut config = config.clone();
    (config.start, config.end, config.frame_rate) = (None, None, None);
    let src = src.into();
    let mut source = VideoSource::open(src.clone(), &config)?;
    let stream = source.reader.stream();
    let mut index = match FrameIndex::from_container(source.reader.demuxer(), stream) {
        Some(index) => index,
        None => FrameIndex::scan(source.reader.demuxer_mut(), stream)?,
    };
    if index.leading_frames() > 0 {
        source.restart(&src)?; // the scan read to the end
        index.settle_leading_frames(&mut source, &src)?;
    }
    let indices = pick(index.pts.len());
    Limits::check(
        source.src(),
        "frame count",
        indices.len() as u64,
        config.limits.max_frames,
    )?;
    if let Some(&bad) = indices.iter().find(|&&i| i >= index.pts.len()) {
        return Err(Error::FrameIndex {
            src: source.src().into(),
            index: bad,
            frames: index.pts.len(),
        });
    }
    let mut targets: Vec<usize> = indices.to_vec();
    targets.sort_unstable();
    targets.dedup();
    let mut data = Vec::new();
    let mut shape = [0usize; 3];
    // bounded: `indices` was checked against `Limits::max_frames` above.
    let mut pts_out = vec![f64::NAN; indices.len()];
    let mut last_pts: Option<i64> = None;
    let mut decoded = 0usize;
    if index.exact {
        source
            .reader
            .set_wanted(targets.iter().map(|&i| index.pts[i]).collect());
    } else {
        source.restart(&src)?;
    }
    for &target in &targets {
        let mut frame = if index.exact {
            seek_and_decode_to(&mut source, &src, &index, index.pts[target], &mut last_pts, target)?
        } else {
            count_and_decode_to(&mut source, &mut decoded, target)?
        };
        let layout = source.converter.layout(&frame)?;
        let bytes = layout.bytes;
        shape = layout.shape;
        if data.is_empty() {
            let total = indices.len() * bytes;
            Limits::check(
                source.src(),
                "output size in bytes",
                total as u64,
                config.limits.max_output_bytes,
            )?;
            data = crate::memory::zeroed(total)
                .map_err(|n| source.convert_error(format!("cannot allocate {n} bytes for the output")))?;
        }
        let positions: Vec<usize> = (0..indices.len()).filter(|&k| indices[k] == target).collect();
        let first = positions[0];
        source
            .converter
            .convert(&mut frame, &mut data[first * bytes..(first + 1) * bytes])?;
        for &k in &positions {
            pts_out[k] = frame_seconds(&frame, source.time_base);
            if k != first {
                data.copy_within(first * bytes..(first + 1) * bytes, k * bytes);
            }
        }
    }
    let frames = Array4::from_shape_vec((indices.len(), shape[0], shape[1], shape[2]), data)
        .map_err(|e| source.convert_error(e.to_string()))?;
    Ok(Video {
        frames,
        pts: pts_out,
        stream,
        pix_fmt: config.convert.pix_fmt,
        corrupt_packets: source.reader.corrupt_packets(),
        header_frames: source.header_frames,
    })
}

/// Decodes forward from the start until the `target`-th frame (counting
/// output frames, as [`load_video`] does); `decoded` counts frames so far.
fn count_and_decode_to(source: &mut VideoSource, decoded: &mut usize, target: usize) -> Result<Frame> {
    loop {
        let frame = source
            .reader
            .next_frame()?
            .ok_or_else(|| ended_before(source, target))?;
        *decoded += 1;
        if *decoded > target {
            return Ok(frame);
        }
    }
}

fn ended_before(source: &VideoSource, target: usize) -> Error {
    Error::Decode {
        src: source.src().into(),
        stream: source.reader.stream(),
        at: Position::Frame(target),
        reason: "the decoder ended before producing this frame".into(),
        cause: None,
    }
}

/// Decodes forward to the first frame with pts >= `t`, seeking first unless
/// the decoder is already between `t`'s keyframe and `t`. If a seek lands
/// past `t` (some demuxers overshoot), decodes again from the start.
fn seek_and_decode_to(
    source: &mut VideoSource,
    src: &Source,
    index: &FrameIndex,
    t: i64,
    last_pts: &mut Option<i64>,
    target: usize,
) -> Result<Frame> {
    let key = index.keyframe_before(t);
    let (mut just_seeked, mut fell_back) = (false, false);
    let ahead = last_pts.is_some_and(|lp| lp < t && (key <= lp || source.reader.cannot_seek()));
    if !ahead && (source.reader.cannot_seek() || source.reader.seek(key).is_err()) {
        // Cannot seek: decode forward from the very start.
        source.restart(src)?;
        fell_back = true;
    } else if !ahead {
        just_seeked = true;
    }
    loop {
        let frame = source.reader.next_frame()?;
        let p = frame.as_ref().map_or(i64::MAX, |f| f.pts().unwrap_or(i64::MIN));
        // A seek that overshoots, or lands where the target cannot be
        // decoded, is retried once from the very start.
        if (frame.is_none() || (just_seeked && p > t)) && !fell_back {
            tracing::debug!(
                src = source.src(),
                target,
                "seek missed the frame; decoding from the start"
            );
            source.restart(src)?;
            (fell_back, just_seeked) = (true, false);
            continue;
        }
        let frame = frame.ok_or_else(|| ended_before(source, target))?;
        just_seeked = false;
        *last_pts = Some(p);
        if p >= t {
            return Ok(frame);
        }
    }
}

/// `n` frame indices of a video of `frames` frames, one at the middle of
/// each of `n` equal segments (the uniform sampling of TSN-style clip
/// loaders); indices repeat when the video has fewer than `n` frames, and
/// there are none when it has no frame.
///
/// ```
/// use spdl_io::video::evenly_spaced;
/// assert_eq!(evenly_spaced(100, 4), [12, 37, 62, 87]);
/// assert_eq!(evenly_spaced(2, 4), [0, 0, 1, 1]);
/// assert!(evenly_spaced(0, 4).is_empty());
/// ```
pub fn evenly_spaced(frames: usize, n: usize) -> Vec<usize> {
    if frames == 0 {
        return Vec::new();
    }
    (0..n).map(|k| ((2 * k + 1) * frames) / (2 * n)).collect()
}

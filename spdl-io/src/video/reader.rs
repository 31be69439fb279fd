//! A video opened once and read many times: [`VideoReader`] keeps the
//! demuxer, the decoder and the [`FrameIndex`] open between calls, so
//! sampling several sets of frames or clips from one file costs one open
//! and one index. For each run of wanted frames it seeks to the keyframe
//! before them and decodes forward (skipping unreferenced frames nobody
//! wants, and H.264 reference B-frames no decoded frame uses: see
//! `media::h264_refs`), continuing from where the last call stopped when
//! that is closer than a seek.

use ndarray::{Array2, Array4, Array5};
use rand::{RngExt, SeedableRng};

use super::clip::{frame_seconds, Video, VideoSource};
use super::config::VideoConfig;
use super::index::FrameIndex;
use crate::error::{Error, Position, Result};
use crate::limits::Limits;
use crate::media::convert::{ConvertConfig, FrameConverter};
use crate::media::decode::Frame;
use crate::media::demux::StreamInfo;
use crate::media::time::Ratio;
use crate::orientation::Orientation;
use crate::source::Source;

/// A video stream opened for reading frames by index or time, as often as
/// needed.
///
/// [`DecoderConfig::threads`](crate::media::DecoderConfig::threads) counts
/// decoder threads: a call for two or more frames also converts them on one
/// more thread, beside the decoding (the same work, overlapped).
///
/// ```no_run
/// use spdl_io::video::{ClipSampling, VideoReader};
/// let mut reader = VideoReader::open("clip.mp4", &Default::default())?;
/// let first = reader.get_frames_at(&[0])?;
/// let at_2s = reader.get_frames_played_at(&[2.0])?;
/// let clips = reader.get_clips(&ClipSampling::default().with_clips(4).with_frames_per_clip(16))?;
/// assert_eq!(clips.frames.shape()[..2], [4, 16]);
/// # Ok::<(), spdl_io::Error>(())
/// ```
pub struct VideoReader {
    src: Source,
    /// The decoder every call uses.
    cursor: Cursor,
    /// Extra one-thread decoders for calls whose frames span several GOPs
    /// (with [`DecoderConfig::threads`](crate::media::DecoderConfig::threads)
    /// above 1), opened on first need and kept.
    helpers: Vec<Cursor>,
    index: FrameIndex,
    info: StreamInfo,
    config: VideoConfig,
    /// The last frame returned, converted: asked again, it is not decoded.
    cached: CachedFrame,
}

/// A decoder and where it stands in the stream.
struct Cursor {
    source: VideoSource,
    /// Pts of the last frame decoded: where forward decoding continues.
    last_pts: Option<i64>,
    /// Frames decoded since the start (for indices that are not exact).
    counted: Option<usize>,
}

/// One frame to decode and where its pixels and time go.
struct Job<'a> {
    target: usize,
    slot: &'a mut [u8],
    pts: &'a mut f64,
}

/// A converted frame and its index; the buffer is kept across calls, so
/// caching the next frame allocates nothing, and a first frame is
/// converted straight into the output.
#[derive(Default)]
struct CachedFrame {
    index: Option<usize>,
    bytes: Vec<u8>,
    shape: [usize; 3],
    pts: f64,
}

impl CachedFrame {
    fn store(&mut self, index: usize, bytes: &[u8], shape: [usize; 3], pts: f64) {
        self.bytes.clear();
        self.bytes.extend_from_slice(bytes);
        (self.index, self.shape, self.pts) = (Some(index), shape, pts);
    }
}

/// Frames decoded for a list of indices, before they become a [`Video`]
/// or [`Clips`].
struct Decoded {
    data: Vec<u8>,
    shape: [usize; 3],
    pts: Vec<f64>,
}

impl VideoReader {
    /// Opens `src` and indexes its stream (see [`SeekMode`](super::SeekMode); the config's
    /// time window and frame rate do not apply).
    ///
    /// # Errors
    /// As [`load_video`](super::load_video), and [`Error::Limit`] for a
    /// stream of more frames than an index holds.
    pub fn open(src: impl Into<Source>, config: &VideoConfig) -> Result<Self> {
        Self::open_inner(src.into(), config, None)
    }

    /// Opens `src` with an index saved earlier ([`FrameIndex::to_bytes`]),
    /// reading no packet to index it.
    ///
    /// # Errors
    /// As [`VideoReader::open`]; [`Error::InvalidConfig`] when the index
    /// is of another stream or time base.
    pub fn open_with_index(src: impl Into<Source>, config: &VideoConfig, index: FrameIndex) -> Result<Self> {
        Self::open_inner(src.into(), config, Some(index))
    }

    fn open_inner(src: Source, config: &VideoConfig, index: Option<FrameIndex>) -> Result<Self> {
        if let Some(desc) = &config.filter {
            return Err(Error::InvalidConfig(format!(
                "{}: filter {desc:?}: frames by index or time are read unfiltered; filters apply to load_video and stream_video",
                src.name()
            )));
        }
        let mut config = config.clone();
        (config.start, config.end, config.frame_rate) = (None, None, None);
        let mut cursor = Cursor::open(&src, &config)?;
        let source = &mut cursor.source;
        let info = source.reader.demuxer().stream_info(source.reader.stream())?;
        let index = match index {
            Some(index) => {
                index.check_matches(source.src(), &info)?;
                index
            }
            None => FrameIndex::build(source, &src, config.seek_mode)?,
        };
        Ok(VideoReader {
            src,
            cursor,
            helpers: Vec::new(),
            index,
            info,
            config,
            cached: CachedFrame::default(),
        })
    }

    /// Number of frames in the stream (from the index).
    pub fn len(&self) -> usize {
        self.index.len()
    }
    /// Whether the stream has no frame.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
    /// The frame index (save it with [`FrameIndex::to_bytes`]).
    pub fn index(&self) -> &FrameIndex {
        &self.index
    }
    /// The stream's metadata: codec, size, frame rate, duration, rotation.
    pub fn info(&self) -> &StreamInfo {
        &self.info
    }

    /// Frames at `indices` (presentation order, counted from the stream's
    /// content), in the order given; repeats and backward jumps allowed.
    ///
    /// # Errors
    /// [`Error::FrameIndex`] for an index past the last frame; otherwise as
    /// [`load_video`](super::load_video).
    pub fn get_frames_at(&mut self, indices: &[usize]) -> Result<Video> {
        let decoded = self.decode(indices)?;
        self.video(decoded, indices.len())
    }

    /// The frames shown at each of `seconds` (stream time): for each, the
    /// last frame whose time is at or before it.
    ///
    /// # Errors
    /// [`Error::FrameTime`] for a time before the first frame or after the
    /// stream's end; otherwise as [`VideoReader::get_frames_at`].
    pub fn get_frames_played_at(&mut self, seconds: &[f64]) -> Result<Video> {
        let indices = seconds
            .iter()
            .map(|&t| self.frame_played_at(t))
            .collect::<Result<Vec<_>>>()?;
        self.get_frames_at(&indices)
    }

    /// Frames `start`, `start + step`, ... before `stop` (a range of
    /// indices, as Python's `range`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero step; [`Error::FrameIndex`]
    /// when `stop` is past the end.
    pub fn get_frames_in_range(&mut self, start: usize, stop: usize, step: usize) -> Result<Video> {
        if step == 0 {
            return Err(Error::InvalidConfig("frame range step must be at least 1".into()));
        }
        if stop > self.len() {
            return Err(self.out_of_range(stop - 1));
        }
        let indices: Vec<usize> = (start..stop).step_by(step).collect();
        self.get_frames_at(&indices)
    }

    /// Frames shown from `start` (inclusive) to `end` (exclusive) seconds.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `end < start`; otherwise as
    /// [`VideoReader::get_frames_at`].
    pub fn get_frames_played_in(&mut self, start: f64, end: f64) -> Result<Video> {
        if end.is_nan() || start.is_nan() || end < start {
            return Err(Error::InvalidConfig(format!(
                "time window {start}..{end} must not end before it starts"
            )));
        }
        let (first, last) = (self.index.first_from(start), self.index.first_from(end));
        self.get_frames_at(&(first..last).collect::<Vec<_>>())
    }

    /// Clips of consecutive (or strided) frames, sampled as `sampling`
    /// says. Frames shared by overlapping clips, and GOPs shared by nearby
    /// ones, are decoded once.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for zero clips, frames or stride, or a
    /// video with no frame; otherwise as [`VideoReader::get_frames_at`].
    pub fn get_clips(&mut self, sampling: &ClipSampling) -> Result<Clips> {
        let starts = sampling.starts(self.len())?;
        let t = sampling.frames_per_clip;
        let last = self.len() - 1;
        let indices: Vec<usize> = starts
            .iter()
            .flat_map(|&s| (0..t).map(move |k| (s + k * sampling.stride).min(last)))
            .collect();
        let Decoded { data, shape, pts } = self.decode(&indices)?;
        let frames = Array5::from_shape_vec((starts.len(), t, shape[0], shape[1], shape[2]), data)
            .map_err(|e| self.convert_error(e.to_string()))?;
        let pts = Array2::from_shape_vec((starts.len(), t), pts).map_err(|e| self.convert_error(e.to_string()))?;
        Ok(Clips { frames, pts, starts })
    }

    fn frame_played_at(&self, t: f64) -> Result<usize> {
        // The last frame is shown for as long as the one before it (or
        // one frame at the declared rate).
        let n = self.len();
        let end = match n {
            0 => f64::NEG_INFINITY,
            1 => {
                let step = self
                    .info
                    .avg_frame_rate
                    .and_then(|r| r.to_f64())
                    .map_or(0.0, |f| 1.0 / f);
                self.index.seconds(0) + step
            }
            _ => 2.0 * self.index.seconds(n - 1) - self.index.seconds(n - 2),
        };
        match self.index.frame_at(t) {
            Some(i) if t < end => Ok(i),
            _ => Err(Error::FrameTime {
                src: self.src_name().into(),
                seconds: t,
                start: if n > 0 { self.index.seconds(0) } else { f64::NAN },
                end,
            }),
        }
    }

    fn out_of_range(&self, index: usize) -> Error {
        Error::FrameIndex {
            src: self.src_name().into(),
            index,
            frames: self.len(),
        }
    }

    fn src_name(&self) -> &str {
        self.cursor.source.src()
    }

    fn convert_error(&self, reason: String) -> Error {
        self.cursor.source.convert_error(reason)
    }

    fn video(&self, d: Decoded, n: usize) -> Result<Video> {
        let frames = Array4::from_shape_vec((n, d.shape[0], d.shape[1], d.shape[2]), d.data)
            .map_err(|e| self.convert_error(e.to_string()))?;
        let corrupt = self.helpers.iter().chain([&self.cursor]);
        Ok(Video {
            frames,
            pts: d.pts,
            stream: self.info.index,
            pix_fmt: self.config.convert.pix_fmt,
            corrupt_packets: corrupt.map(|c| c.source.reader.corrupt_packets()).sum(),
            header_frames: self.cursor.source.header_frames,
        })
    }

    /// Decodes the frames at `indices` into one buffer, each distinct
    /// index once: the first (or the cached frame) fixes the output's
    /// shape, the rest are decoded in ascending order, split by GOP over
    /// up to `threads` decoders.
    fn decode(&mut self, indices: &[usize]) -> Result<Decoded> {
        let limits = self.config.limits;
        Limits::check(self.src_name(), "frame count", indices.len() as u64, limits.max_frames)?;
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(self.out_of_range(bad));
        }
        let mut targets = indices.to_vec();
        targets.sort_unstable();
        targets.dedup();
        let mut out = Decoded {
            data: Vec::new(),
            shape: [0; 3],
            // bounded: `indices` was checked against `Limits::max_frames` above.
            pts: vec![f64::NAN; indices.len()],
        };
        let Some((&first, rest)) = targets.split_first() else {
            return Ok(out);
        };
        // Where each index is first asked for: its frame is decoded there.
        let mut first_at = std::collections::HashMap::new();
        for (k, &i) in indices.iter().enumerate() {
            first_at.entry(i).or_insert(k);
        }
        if self.index.has_frame_times() {
            // Every frame asked for, so the decoder skips none of them.
            let wanted = self.index.wanted(targets.iter().copied());
            self.cursor.source.reader.set_wanted(wanted);
        }
        self.decode_first(first, first_at[&first], indices.len(), &mut out)?;
        let bytes: usize = out.shape.iter().product();
        let mut slots: Vec<Option<Job>> = out
            .data
            .chunks_mut(bytes.max(1))
            .zip(out.pts.iter_mut())
            .zip(indices)
            .map(|((slot, pts), &target)| Some(Job { target, slot, pts }))
            .collect();
        let jobs: Vec<Job> = rest.iter().filter_map(|t| slots[first_at[t]].take()).collect();
        self.run_jobs(jobs, out.shape)?;
        for (k, i) in indices.iter().enumerate() {
            let at = first_at[i];
            if at != k {
                out.pts[k] = out.pts[at];
                out.data.copy_within(at * bytes..(at + 1) * bytes, k * bytes);
            }
        }
        let last = targets[targets.len() - 1];
        let at = first_at[&last];
        let pixels = &out.data[at * bytes..(at + 1) * bytes];
        self.cached.store(last, pixels, out.shape, out.pts[at]);
        Ok(out)
    }

    /// Decodes frame `target` (or takes it from the cache), allocates the
    /// output for `n` frames in its shape and writes it to slot `at`.
    fn decode_first(&mut self, target: usize, at: usize, n: usize, out: &mut Decoded) -> Result<()> {
        let hit = self.cached.index.take() == Some(target);
        let frame = if hit {
            None
        } else {
            Some(self.cursor.decode_to(&self.src, &self.index, target)?)
        };
        let shape = match &frame {
            Some(f) => self.cursor.source.converter.layout(f)?.shape,
            None => self.cached.shape,
        };
        let (len, limit) = (shape.iter().product::<usize>(), self.config.limits.max_output_bytes);
        Limits::check(
            self.src_name(),
            "output size in bytes",
            n.saturating_mul(len) as u64,
            limit,
        )?;
        out.data = crate::memory::zeroed(n * len)
            .map_err(|n| self.convert_error(format!("cannot allocate {n} bytes for the output")))?;
        let slot = &mut out.data[at * len..(at + 1) * len];
        out.pts[at] = match frame {
            Some(mut f) => {
                self.cursor.source.converter.convert(&mut f, slot)?;
                frame_seconds(&f, self.cursor.source.time_base)
            }
            None => {
                slot.copy_from_slice(&self.cached.bytes);
                self.cached.pts
            }
        };
        out.shape = shape;
        Ok(())
    }

    /// Runs `jobs` (ascending targets): on this reader's decoder, or split
    /// by GOP over it and helper decoders on their own threads when the
    /// config asks for several threads and the frames span several GOPs.
    fn run_jobs(&mut self, jobs: Vec<Job>, shape: [usize; 3]) -> Result<()> {
        let threads = self.config.decoder.threads.max(1);
        let parallel = threads > 1 && self.index.has_frame_times();
        let mut parts = if parallel {
            split_by_gop(&self.index, jobs, threads)
        } else {
            vec![jobs]
        };
        let mut helper_config = self.config.clone();
        helper_config.decoder.threads = 1;
        while self.helpers.len() + 1 < parts.len() {
            self.helpers.push(Cursor::open(&self.src, &helper_config)?);
        }
        let main = parts.remove(0);
        let (src, index, cursor) = (&self.src, &self.index, &mut self.cursor);
        std::thread::scope(|s| {
            let helpers: Vec<_> = self
                .helpers
                .iter_mut()
                .zip(parts)
                .map(|(helper, jobs)| s.spawn(move || helper.run(src, index, jobs, shape, false)))
                .collect();
            let mine = cursor.run(src, index, main, shape, true);
            let theirs = helpers.into_iter().map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::InvalidConfig("a helper decoder thread panicked".into())))
            });
            [mine].into_iter().chain(theirs).collect::<Result<Vec<()>>>()
        })
        .map(drop)
    }
}

impl Cursor {
    fn open(src: &Source, config: &VideoConfig) -> Result<Self> {
        Ok(Cursor {
            source: VideoSource::open(src.clone(), config)?,
            last_pts: None,
            counted: None,
        })
    }

    /// Decodes each job's frame and converts it into its slot. With
    /// `aside` and two or more frames, frames are converted on a thread of
    /// their own while the next one decodes, so this thread only demuxes
    /// and decodes: a multi-thread decoder's threads keep getting packets
    /// (1.03-1.05x at 2 threads) and a one-thread decoder overlaps the
    /// conversion (1.06x on 4 clips of 16 frames; BENCHMARKS.md, "Issue 18,
    /// last round"). The work is the same; only its overlap changes.
    /// Helpers, which run beside the reader's own decoder on a machine
    /// already busy, convert in line.
    fn run(&mut self, src: &Source, index: &FrameIndex, jobs: Vec<Job>, shape: [usize; 3], aside: bool) -> Result<()> {
        if index.has_frame_times() {
            let wanted = index.wanted(jobs.iter().map(|j| j.target));
            self.source.reader.set_wanted(wanted);
        }
        let time_base = self.source.time_base;
        let skipped = self.source.reader.skipped_references();
        let result = self.run_jobs_here(src, index, jobs, shape, aside, time_base);
        tracing::debug!(
            src = self.source.src(),
            skipped_references = self.source.reader.skipped_references() - skipped,
            "frames read"
        );
        result
    }

    fn run_jobs_here(
        &mut self,
        src: &Source,
        index: &FrameIndex,
        jobs: Vec<Job>,
        shape: [usize; 3],
        aside: bool,
        time_base: Ratio,
    ) -> Result<()> {
        if !aside || jobs.len() < 2 {
            for job in jobs {
                let frame = self.decode_to(src, index, job.target)?;
                convert_job(&mut self.source.converter, time_base, frame, job, shape)?;
            }
            return Ok(());
        }
        self.run_converting_aside(src, index, jobs, shape)
    }

    /// [`Cursor::run`]'s jobs, decoded here and converted on a scoped
    /// thread that borrows the converter meanwhile. The converter goes back
    /// even when a panic unwinds (caught and resumed), so a caller that
    /// reports it and reads on still gets frames in its configured format.
    fn run_converting_aside(
        &mut self,
        src: &Source,
        index: &FrameIndex,
        jobs: Vec<Job>,
        shape: [usize; 3],
    ) -> Result<()> {
        let time_base = self.source.time_base;
        let idle = FrameConverter::new(ConvertConfig::default(), Orientation::Normal, "");
        let mut converter = std::mem::replace(&mut self.source.converter, idle);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            std::thread::scope(|s| {
                let (frames, received) = std::sync::mpsc::sync_channel::<(Frame, Job)>(2);
                let converting = s.spawn(|| {
                    received
                        .into_iter()
                        .try_for_each(|(frame, job)| convert_job(&mut converter, time_base, frame, job, shape))
                });
                let decoded = (|| {
                    for job in jobs {
                        let frame = self.decode_to(src, index, job.target)?;
                        if frames.send((frame, job)).is_err() {
                            break; // conversion failed; its error is returned below
                        }
                    }
                    Ok(())
                })();
                drop(frames);
                let converted = converting
                    .join()
                    .unwrap_or_else(|_| Err(Error::InvalidConfig("the frame converter thread panicked".into())));
                converted.and(decoded)
            })
        }));
        self.source.converter = converter;
        result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    fn decode_to(&mut self, src: &Source, index: &FrameIndex, target: usize) -> Result<Frame> {
        if index.exact {
            self.seek_and_decode_to(src, index, target)
        } else {
            self.count_and_decode_to(src, target)
        }
    }

    /// Decodes forward from the start until the `target`-th frame
    /// (counting output frames, as `load_video` does).
    fn count_and_decode_to(&mut self, src: &Source, target: usize) -> Result<Frame> {
        if self.counted.is_none_or(|c| c > target) {
            self.source.restart(src)?;
            self.counted = Some(0);
        }
        loop {
            let frame = self
                .source
                .reader
                .next_frame()?
                .ok_or_else(|| self.ended_before(target))?;
            let counted = self.counted.get_or_insert(0);
            *counted += 1;
            if *counted > target {
                return Ok(frame);
            }
        }
    }

    fn ended_before(&self, target: usize) -> Error {
        Error::Decode {
            src: self.source.src().into(),
            stream: self.source.reader.stream(),
            at: Position::Frame(target),
            reason: "the decoder ended before producing this frame".into(),
            cause: None,
        }
    }

    /// Decodes forward to the first frame with pts >= frame `target`'s,
    /// seeking first unless the decoder is already between its keyframe
    /// and it. If a seek lands past it (some demuxers overshoot), decodes
    /// again from the start.
    fn seek_and_decode_to(&mut self, src: &Source, index: &FrameIndex, target: usize) -> Result<Frame> {
        let t = index.pts[target];
        let key = index.keyframe_before(t);
        let reader = &mut self.source.reader;
        let (mut just_seeked, mut fell_back) = (false, false);
        // Forward from where the decoder stands, unless a frame it must
        // show was sent to it while unwanted (an earlier call's list).
        let ahead = self
            .last_pts
            .is_some_and(|lp| lp < t && (key <= lp || reader.cannot_seek()))
            && !reader.may_have_skipped(t);
        if !ahead && (reader.cannot_seek() || reader.seek(key).is_err()) {
            self.source.restart(src)?; // cannot seek: from the very start
            fell_back = true;
        } else if !ahead {
            just_seeked = true;
        }
        loop {
            let frame = self.source.reader.next_frame()?;
            let p = frame.as_ref().map_or(i64::MAX, |f| f.pts().unwrap_or(i64::MIN));
            if (frame.is_none() || (just_seeked && p > t)) && !fell_back {
                tracing::debug!(
                    src = self.source.src(),
                    target,
                    "seek missed the frame; decoding from the start"
                );
                self.source.restart(src)?;
                (fell_back, just_seeked) = (true, false);
                continue;
            }
            let frame = frame.ok_or_else(|| self.ended_before(target))?;
            just_seeked = false;
            self.last_pts = Some(p);
            if p >= t {
                return Ok(frame);
            }
        }
    }
}

/// Converts `frame` into its job's slot, checking that it has the shape
/// of the call's other frames.
fn convert_job(
    converter: &mut FrameConverter,
    time_base: Ratio,
    mut frame: Frame,
    job: Job,
    shape: [usize; 3],
) -> Result<()> {
    let got = converter.layout(&frame)?.shape;
    if got != shape {
        return Err(converter.fail(format!(
            "frame {} has shape {got:?} but earlier frames {shape:?}: the stream changes size; set an output size",
            job.target
        )));
    }
    converter.convert(&mut frame, job.slot)?;
    *job.pts = frame_seconds(&frame, time_base);
    Ok(())
}

/// Splits `jobs` (ascending) into at most `parts` runs of whole GOPs with
/// about equal decoding work each (frames from a GOP's keyframe to its
/// last wanted frame).
fn split_by_gop<'a>(index: &FrameIndex, jobs: Vec<Job<'a>>, parts: usize) -> Vec<Vec<Job<'a>>> {
    let key_of = |job: &Job| index.keyframe_before(index.pts[job.target]);
    let mut groups: Vec<Vec<Job>> = Vec::new();
    for job in jobs {
        match groups.last_mut() {
            Some(g) if key_of(&g[0]) == key_of(&job) => g.push(job),
            _ => groups.push(vec![job]),
        }
    }
    let cost = |g: &Vec<Job>| {
        let key = index.pts.partition_point(|&p| p < key_of(&g[0]));
        g[g.len() - 1].target.saturating_sub(key) + 1
    };
    let total: usize = groups.iter().map(cost).sum();
    let share = total.div_ceil(parts.min(groups.len()).max(1));
    let mut out: Vec<Vec<Job>> = vec![Vec::new()];
    let mut load = 0;
    for g in groups {
        if load >= share && out.len() < parts {
            out.push(Vec::new());
            load = 0;
        }
        load += cost(&g);
        if let Some(o) = out.last_mut() {
            o.extend(g);
        }
    }
    out
}

/// How [`VideoReader::get_clips`] picks clips: `clips` clips of
/// `frames_per_clip` frames, `stride` frames apart within a clip, their
/// starts spread evenly over the video or drawn at random from a seed.
/// Every field has a default; setters chain.
///
/// ```
/// use spdl_io::video::ClipSampling;
/// let s = ClipSampling::default().with_clips(4).with_frames_per_clip(16).with_stride(2).with_random(7);
/// assert_eq!(s.random, Some(7));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClipSampling {
    /// Number of clips (default 1).
    pub clips: usize,
    /// Frames in each clip (default 8).
    pub frames_per_clip: usize,
    /// Distance between consecutive frames of a clip, in frames (default 1).
    pub stride: usize,
    /// `Some(seed)`: clip starts drawn uniformly at random (the same seed
    /// gives the same clips); `None`: spread evenly from the first frame
    /// to the last possible start.
    pub random: Option<u64>,
}

impl Default for ClipSampling {
    fn default() -> Self {
        ClipSampling {
            clips: 1,
            frames_per_clip: 8,
            stride: 1,
            random: None,
        }
    }
}

impl ClipSampling {
    /// Sets the number of clips.
    #[must_use]
    pub fn with_clips(mut self, clips: usize) -> Self {
        self.clips = clips;
        self
    }
    /// Sets the frames per clip.
    #[must_use]
    pub fn with_frames_per_clip(mut self, frames: usize) -> Self {
        self.frames_per_clip = frames;
        self
    }
    /// Sets the stride between a clip's frames.
    #[must_use]
    pub fn with_stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }
    /// Draws clip starts at random from `seed`.
    #[must_use]
    pub fn with_random(mut self, seed: u64) -> Self {
        self.random = Some(seed);
        self
    }

    /// Frames a clip spans, first to last.
    fn span(&self) -> usize {
        (self.frames_per_clip.saturating_sub(1)).saturating_mul(self.stride) + 1
    }

    /// The first frame of each clip of a video of `frames` frames,
    /// ascending. A clip longer than the video starts at 0 and repeats the
    /// last frame.
    fn starts(&self, frames: usize) -> Result<Vec<usize>> {
        if self.clips == 0 || self.frames_per_clip == 0 || self.stride == 0 {
            return Err(Error::InvalidConfig(format!(
                "clip sampling needs at least one clip, frame and stride step, not {self:?}"
            )));
        }
        if frames == 0 {
            return Err(Error::InvalidConfig(
                "cannot sample clips from a video with no frame".into(),
            ));
        }
        let room = frames.saturating_sub(self.span()); // last possible start
        let mut starts: Vec<usize> = match self.random {
            Some(seed) => {
                let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
                (0..self.clips).map(|_| rng.random_range(0..=room)).collect()
            }
            None if self.clips == 1 => vec![room / 2],
            None => (0..self.clips).map(|k| k * room / (self.clips - 1)).collect(),
        };
        starts.sort_unstable();
        Ok(starts)
    }
}

/// Clips of frames: `frames` has shape (clips, frames per clip, H, W, C)
/// for packed pixel formats.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Clips {
    /// The frames.
    pub frames: Array5<u8>,
    /// Presentation time of each frame in seconds, (clips, frames per clip).
    pub pts: Array2<f64>,
    /// The index of each clip's first frame.
    pub starts: Vec<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference B-frames are left undecoded where nothing wanted uses them
    /// (x264 veryfast: one reference frame, so P-frames never use them),
    /// and never where everything is wanted; the frames are checked against
    /// the full decode in `tests/reader.rs`.
    #[test]
    fn unused_reference_b_frames_are_skipped() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/h264_ref1_pyramid.mp4");
        let skipped = |indices: &[usize], threads: usize| {
            let mut reader = VideoReader::open(&path, &VideoConfig::default().with_threads(threads)).unwrap();
            reader.get_frames_at(indices).unwrap();
            reader.cursor.source.reader.skipped_references()
        };
        // Frame 90 of two 50-frame GOPs: the B references between the
        // second keyframe and it (runs of 3 B-frames, 1 of them a reference),
        // with one decoder thread and with frame threads.
        for threads in [1, 2] {
            assert!(skipped(&[90], threads) >= 5, "{}", skipped(&[90], threads));
            assert_eq!(skipped(&(0..100).collect::<Vec<_>>(), threads), 0);
        }
    }

    #[test]
    fn even_clip_starts_cover_the_video() {
        let s = ClipSampling::default()
            .with_clips(3)
            .with_frames_per_clip(4)
            .with_stride(2);
        assert_eq!(s.span(), 7);
        assert_eq!(s.starts(107).unwrap(), [0, 50, 100]);
        assert_eq!(s.clone().with_clips(1).starts(107).unwrap(), [50]);
        assert_eq!(s.starts(3).unwrap(), [0, 0, 0], "a video shorter than a clip");
    }

    #[test]
    fn random_clip_starts_follow_the_seed() {
        let s = ClipSampling::default()
            .with_clips(5)
            .with_frames_per_clip(16)
            .with_random(3);
        let a = s.starts(1000).unwrap();
        assert_eq!(a, s.starts(1000).unwrap());
        assert_ne!(a, s.clone().with_random(4).starts(1000).unwrap());
        assert!(a.windows(2).all(|w| w[0] <= w[1]) && a.iter().all(|&x| x <= 1000 - 16));
    }

    #[test]
    fn empty_clip_sampling_is_refused() {
        assert!(ClipSampling::default().with_clips(0).starts(10).is_err());
        assert!(ClipSampling::default().with_stride(0).starts(10).is_err());
        assert!(ClipSampling::default().starts(0).is_err());
    }
}

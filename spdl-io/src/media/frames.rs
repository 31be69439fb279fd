//! A pull-based frame reader over a demuxer and a decoder: it feeds packets
//! on demand, drains the decoder at the end of the input, restricts output
//! to a time window and supports seeking to a keyframe. Frames that come
//! without a timestamp get the one after the previous frame's.

use std::collections::{BTreeSet, VecDeque};

use super::decode::{DecodeStatus, Frame, SendStatus, VideoDecoder};
use super::demux::{Demuxer, Packet};
use super::h264_refs::{Picture, ReferenceTracker};
use super::nal::Unwanted;
use crate::error::{Error, Position, Result};
use ffmpeg_next as ff;

/// Frames of one video stream, decoded on demand.
pub(crate) struct FrameReader {
    demuxer: Demuxer,
    decoder: VideoDecoder,
    stream: usize,
    /// Frames with pts before this (stream time base) are skipped.
    start_ts: Option<i64>,
    /// Packets whose dts is at or past this end the input; frames with pts
    /// at or past it are skipped.
    end_ts: Option<i64>,
    draining: bool,
    done: bool,
    /// When set, only frames whose pts is in this sorted list must be
    /// output; other frames nobody references are left out (see `nal`).
    wanted: Option<Vec<i64>>,
    /// Packets read but not yet sent or dropped: the keyframe a seek was
    /// checked against, and those read to see whether an unwanted
    /// reference picture is used (see `h264_refs`).
    ahead: VecDeque<Ahead>,
    /// The id the next packet read gets (ids rise in decoding order).
    next_id: u64,
    /// The H.264 reference buffer as of the last packet read, followed
    /// while frames are wanted.
    references: Option<ReferenceTracker>,
    /// Reference pictures sent with the B skip so far.
    skipped_references: u64,
    /// Pts of packets sent since the last seek while they were not
    /// wanted: the decoder may have dropped their frames.
    maybe_skipped: BTreeSet<i64>,
    /// The previous frame's pts and how long it is shown (0 if unknown).
    last: Option<(i64, i64)>,
    /// Whether a seek has failed: the demuxer cannot seek.
    cannot_seek: bool,
    /// A frame decoded while checking where a seek landed, not yet output.
    held: Option<Frame>,
    /// One frame's duration at the stream's frame rate (0 if unknown), for
    /// frames that come without a timestamp.
    frame_step: i64,
    /// Whether decoding started at the stream's start (no seek yet): a
    /// first frame without a timestamp is then at the start time.
    from_start: bool,
    /// Packets without a dts read in a row with a pts at or past the end.
    past_end_run: usize,
}

/// A packet read ahead, with what it does to the reference buffer when
/// that is known.
struct Ahead {
    packet: Packet,
    picture: Option<Picture>,
}

impl Ahead {
    /// A B picture other pictures may reference (a stand-in candidate).
    fn is_b_reference(&self) -> bool {
        self.picture.as_ref().is_some_and(|p| p.is_reference && p.bidir)
    }

    /// Whether the picture stops holding picture `id` for reference.
    fn releases(&self, id: u64) -> bool {
        self.picture.as_ref().is_some_and(|p| p.releases.contains(&id))
    }

    /// Whether the picture's reference lists hold picture `id`.
    fn uses(&self, id: u64) -> bool {
        self.picture.as_ref().is_some_and(|p| p.uses.contains(&id))
    }
}

/// The most packets read ahead to find where an unwanted reference
/// picture stops being held (x264's B-pyramid releases one within a few
/// pictures).
const LOOKAHEAD: usize = 32;

/// Packets past the window's end (by pts, when they carry no dts) read
/// before the input is cut: frames reordered after them (B-frames) may
/// still be shown inside the window. H.264 and HEVC reorder by at most 16.
const PAST_END_PACKETS: usize = 16;

/// How far before a window's start seeks are retried (seconds) when the
/// demuxer lands past it (MPEG-PS/TS seek by byte position and estimate).
const SEEK_BACK: [f64; 4] = [0.0, 1.0, 4.0, 16.0];

impl FrameReader {
    /// The demuxer frames are read from.
    pub(crate) fn demuxer(&self) -> &Demuxer {
        &self.demuxer
    }

    /// The demuxer, to read its packets directly (indexing by a scan);
    /// the reader must be restarted before frames are read again.
    pub(crate) fn demuxer_mut(&mut self) -> &mut Demuxer {
        &mut self.demuxer
    }

    /// The stream index frames are read from.
    pub(crate) fn stream(&self) -> usize {
        self.stream
    }

    /// Corrupt packets the decoder skipped so far.
    pub(crate) fn corrupt_packets(&self) -> usize {
        self.decoder.corrupt_packets()
    }

    /// Whether a seek has failed: the demuxer cannot seek.
    pub(crate) fn cannot_seek(&self) -> bool {
        self.cannot_seek
    }

    /// Takes over `old`'s wanted frames and what it learnt about seeking
    /// (this reader is a fresh one over the same stream).
    pub(crate) fn resume_from(&mut self, old: &mut FrameReader) {
        (self.wanted, self.cannot_seek) = (old.wanted.take(), old.cannot_seek);
    }

    pub(crate) fn new(demuxer: Demuxer, decoder: VideoDecoder, stream: usize) -> Self {
        let references = decoder.reference_tracker();
        let frame_step = demuxer.stream_info(stream).ok().map_or(0, |i| {
            let fps = i.avg_frame_rate.and_then(|r| r.to_f64()).filter(|f| *f > 0.0);
            fps.map_or(0, |f| i.time_base.timestamp(1.0 / f).max(0))
        });
        FrameReader {
            demuxer,
            decoder,
            stream,
            start_ts: None,
            end_ts: None,
            draining: false,
            done: false,
            wanted: None,
            ahead: VecDeque::new(),
            next_id: 0,
            references,
            skipped_references: 0,
            maybe_skipped: BTreeSet::new(),
            last: None,
            cannot_seek: false,
            held: None,
            frame_step,
            from_start: true,
            past_end_run: 0,
        }
    }

    /// Restricts output to frames shown in `[start, end)` (stream time
    /// base). With `seek`, first seeks to a keyframe at or before `start`
    /// (not when the stream starts at or after it) and checks where it
    /// landed: the first frame decoded must be shown at or before `start`
    /// (an AVI keyframe's B-frames need the GOP before it). Returns `false`
    /// when no seek got there (the demuxer cannot seek or read after a
    /// seek, or lands past `start` even [`SEEK_BACK`] seconds earlier): the
    /// caller then decodes from the very start, which always works.
    pub(crate) fn set_window(&mut self, start: Option<i64>, end: Option<i64>, seek: bool) -> Result<bool> {
        let first = self.demuxer.stream(self.stream)?.start_time();
        let landed = match start.filter(|&s| seek && (first == ff::ffi::AV_NOPTS_VALUE || s > first)) {
            Some(s) => self.seek_before(s),
            None => true,
        };
        self.start_ts = start;
        self.end_ts = end;
        Ok(landed)
    }

    /// Seeks so that decoding starts at or before `s` (see
    /// [`FrameReader::set_window`]); the first frame is held for output.
    fn seek_before(&mut self, s: i64) -> bool {
        let Ok(tb) = self.demuxer.time_base(self.stream) else {
            return false;
        };
        for back in SEEK_BACK {
            if self.seek(s.saturating_sub(tb.timestamp(back))).is_err() {
                return false;
            }
            match self.first_keyframe() {
                Ok(Some(k)) if k <= s => {}
                Ok(_) => continue,
                Err(_) => return false,
            }
            match self.next_frame() {
                Ok(Some(f)) if f.pts().is_some_and(|t| t <= s) => {
                    self.held = Some(f);
                    return true;
                }
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
        false
    }

    /// Reads up to the first keyframe (kept as the next packet to decode;
    /// packets before it cannot be decoded after a seek) and returns its
    /// time: pts, else dts. `None` at the end of the input.
    fn first_keyframe(&mut self) -> Result<Option<i64>> {
        while let Some(p) = self.demuxer.read_packet(self.stream)? {
            if p.is_key() {
                let at = p.pts().or(p.dts()).unwrap_or(i64::MIN);
                self.push_ahead(p);
                return Ok(Some(at));
            }
        }
        Ok(None)
    }

    /// Lets the decoder skip unreferenced frames whose pts is not in
    /// `wanted` (sorted ascending).
    pub(crate) fn set_wanted(&mut self, wanted: Vec<i64>) {
        if self.wanted.is_none() {
            // Packets read so far were not followed.
            self.references.as_mut().map(ReferenceTracker::reset);
        }
        self.wanted = Some(wanted);
    }

    /// Reference B pictures left undecoded so far (see `h264_refs`).
    pub(crate) fn skipped_references(&self) -> u64 {
        self.skipped_references
    }

    /// Whether the frame at `ts` was sent to the decoder since the last
    /// seek while it was not wanted (so it may never come out): decoding
    /// forward to it is not safe, a seek is.
    pub(crate) fn may_have_skipped(&self, ts: i64) -> bool {
        self.maybe_skipped.contains(&ts)
    }

    /// Seeks to the keyframe at or before `ts` and resets the decoder.
    pub(crate) fn seek(&mut self, ts: i64) -> Result<()> {
        let sought = self.demuxer.seek_timestamp(self.stream, ts);
        self.cannot_seek |= sought.is_err();
        sought?;
        self.decoder.flush();
        self.maybe_skipped.clear();
        self.ahead.clear();
        self.references.as_mut().map(ReferenceTracker::reset);
        (self.draining, self.done, self.last, self.held) = (false, false, None, None);
        (self.from_start, self.past_end_run) = (false, 0);
        Ok(())
    }

    /// Adds a packet read from the demuxer to the read-ahead queue, with
    /// what it does to the reference buffer while frames are wanted.
    fn push_ahead(&mut self, packet: Packet) {
        let id = self.next_id;
        self.next_id += 1;
        let picture = match (&mut self.references, &self.wanted) {
            (Some(refs), Some(_)) => refs.picture(id, packet.inner.data().unwrap_or_default()),
            _ => None,
        };
        self.ahead.push_back(Ahead { packet, picture });
    }

    /// Reads one more packet into the queue; `false` at the end of input.
    fn read_ahead(&mut self) -> Result<bool> {
        let Some(p) = self.demuxer.read_packet(self.stream)? else {
            return Ok(false);
        };
        self.push_ahead(p);
        Ok(true)
    }

    /// Whether a packet's frame is wanted (a packet without a pts is).
    fn is_wanted(wanted: &[i64], packet: &Packet) -> bool {
        packet.pts().is_none_or(|t| wanted.binary_search(&t).is_ok())
    }

    /// The stand-in packet (see `h264_refs`) to send in place of the next
    /// one when it is an unwanted B picture that is a reference but that
    /// no picture decoded from here on uses: reads ahead (up to
    /// [`LOOKAHEAD`] packets) to where it stops being held, then works back
    /// from there. A picture counts as decoded when it is wanted, is a
    /// reference other than such a B picture, is shown after every wanted
    /// frame (a later call may go on to it), or is such a B picture some
    /// decoded picture uses. Any picture the model does not know makes the
    /// answer `None`.
    fn stand_in_for_next(&mut self) -> Result<Option<Vec<u8>>> {
        if self.wanted.is_none() || (self.ahead.is_empty() && !self.read_ahead()?) {
            return Ok(None);
        }
        let (Some(wanted), Some(front)) = (&self.wanted, self.ahead.front()) else {
            return Ok(None);
        };
        if !Ahead::is_b_reference(front) || Self::is_wanted(wanted, &front.packet) {
            return Ok(None);
        }
        let first = self.next_id - self.ahead.len() as u64;
        while !self.ahead.iter().any(|a| a.releases(first)) {
            if self.ahead.len() >= LOOKAHEAD || !self.read_ahead()? {
                return Ok(None);
            }
        }
        let used = self.decoded_ahead().is_none_or(|decoded| decoded[0]);
        Ok(self.ahead[0]
            .picture
            .as_ref()
            .and_then(|p| p.stand_in.clone())
            .filter(|_| !used))
    }

    /// Which packets of the queue the decoder will decode (see
    /// [`FrameReader::stand_in_for_next`]), worked out from the back;
    /// `None` when the model does not know one of them.
    fn decoded_ahead(&self) -> Option<Vec<bool>> {
        let wanted = self.wanted.as_deref()?;
        let last_wanted = wanted.last().copied().unwrap_or(i64::MIN);
        let first = self.next_id - self.ahead.len() as u64;
        // bounded: the queue holds at most LOOKAHEAD packets.
        let mut decoded = vec![true; self.ahead.len()];
        for (i, a) in self.ahead.iter().enumerate().rev() {
            let p = a.picture.as_ref()?;
            let id = first + i as u64;
            let shown = Self::is_wanted(wanted, &a.packet) || a.packet.pts().is_none_or(|t| t > last_wanted);
            let used = || {
                let end = (i + 1..self.ahead.len()).find(|&j| self.ahead[j].releases(id));
                end.is_none_or(|end| (i + 1..end).any(|j| decoded[j] && self.ahead[j].uses(id)))
            };
            decoded[i] = shown || (p.is_reference && !p.bidir) || (Ahead::is_b_reference(a) && used());
        }
        Some(decoded)
    }

    fn next_packet(&mut self) -> Result<Option<Packet>> {
        if self.ahead.is_empty() {
            self.read_ahead()?;
        }
        let packet = self.ahead.pop_front().map(|a| a.packet);
        let Some(end) = self.end_ts else {
            return Ok(packet);
        };
        // With a dts, a packet at or past the end is past every frame of the
        // window; with only a pts, B-frames may follow it that are not.
        let past_end = packet.as_ref().is_some_and(|p| match (p.dts(), p.pts()) {
            (None, Some(pts)) if pts >= end => {
                self.past_end_run += 1;
                self.past_end_run > PAST_END_PACKETS
            }
            (dts, _) => {
                self.past_end_run = 0;
                dts.is_some_and(|d| d >= end)
            }
        });
        Ok(packet.filter(|_| !past_end))
    }

    /// Gives a frame without a timestamp the one after the previous
    /// frame's (its duration, else the step between the last two).
    fn stamp(&mut self, frame: &mut Frame) {
        let pts = match (frame.pts(), self.last) {
            (Some(t), _) => t,
            (None, Some((t, step))) => t.saturating_add(step.max(1)),
            // A stream without timestamps (raw H.264): from its start.
            (None, None) if self.from_start => match self.demuxer.stream(self.stream).map(|s| s.start_time()) {
                Ok(t) if t != ff::ffi::AV_NOPTS_VALUE => t,
                _ => 0,
            },
            (None, None) => return,
        };
        if frame.pts().is_none() {
            frame.set_pts(pts);
        }
        let step = match (frame.duration(), self.last) {
            (d, _) if d > 0 => d,
            (_, Some((t, _))) if pts > t => pts - t,
            (_, Some((_, step))) if step > 0 => step,
            _ => self.frame_step,
        };
        self.last = Some((pts, step));
    }

    /// Whether the frame is shown inside the window; a frame whose time is
    /// unknown is inside only when there is no window.
    fn in_window(&self, frame: &Frame) -> bool {
        match frame.pts() {
            Some(pts) => self.start_ts.is_none_or(|s| pts >= s) && self.end_ts.is_none_or(|e| pts < e),
            None => self.start_ts.is_none() && self.end_ts.is_none(),
        }
    }

    /// The next decoded frame inside the window, or `None` at the end.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>> {
        if let Some(f) = self.held.take().filter(|f| self.in_window(f)) {
            return Ok(Some(f));
        }
        while !self.done {
            match self.decoder.receive_frame()? {
                DecodeStatus::Frame(mut f) => {
                    self.stamp(&mut f);
                    if self.in_window(&f) {
                        return Ok(Some(f));
                    }
                }
                DecodeStatus::EndOfStream => self.done = true,
                DecodeStatus::NeedMoreData if self.draining => self.done = true,
                DecodeStatus::NeedMoreData => match (self.stand_in_for_next()?, self.next_packet()?) {
                    (stand_in, Some(mut p)) => {
                        if let Some(wanted) = &self.wanted {
                            let unwanted = (!Self::is_wanted(wanted, &p)).then(|| match self.decoder.unwanted(&p) {
                                Unwanted::Skip if stand_in.is_some() => Unwanted::SkipReference,
                                u => u,
                            });
                            if let (Some(Unwanted::SkipReference), Some(bytes)) = (unwanted, &stand_in) {
                                p = p.with_payload(bytes);
                            }
                            self.decoder.set_skip(unwanted.unwrap_or(Unwanted::Decode));
                            self.skipped_references += u64::from(unwanted == Some(Unwanted::SkipReference));
                            if let (Some(Unwanted::Drop | Unwanted::Skip | Unwanted::SkipReference), Some(t)) =
                                (unwanted, p.pts())
                            {
                                self.maybe_skipped.insert(t);
                            }
                            if unwanted == Some(Unwanted::Drop) {
                                continue;
                            }
                        }
                        if self.decoder.send_packet(&p)? == SendStatus::Full {
                            // The decoder just asked for data; refusing it
                            // now would loop forever.
                            return Err(Error::Decode {
                                src: self.demuxer.source_name().into(),
                                stream: self.stream,
                                at: p.pts_seconds().map_or(Position::Unknown, Position::Pts),
                                reason: "the decoder neither accepts packets nor outputs frames".into(),
                                cause: None,
                            });
                        }
                    }
                    (_, None) => {
                        self.decoder.send_eof()?;
                        self.draining = true;
                    }
                },
            }
        }
        Ok(None)
    }
}

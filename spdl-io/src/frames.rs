//! A pull-based frame reader over a demuxer and a decoder: it feeds packets
//! on demand, drains the decoder at the end of the input, restricts output
//! to a time window and supports seeking to a keyframe. Frames that come
//! without a timestamp get the one after the previous frame's.

use crate::decode::{DecodeStatus, Frame, SendStatus, VideoDecoder};
use crate::demux::{Demuxer, Packet};
use crate::error::Position;
use crate::{Error, Result};
use ffmpeg_next as ff;

/// Frames of one video stream, decoded on demand.
pub(crate) struct FrameReader {
    pub(crate) demuxer: Demuxer,
    pub(crate) decoder: VideoDecoder,
    pub(crate) stream: usize,
    /// Frames with pts before this (stream time base) are skipped.
    start_ts: Option<i64>,
    /// Packets whose dts is at or past this end the input; frames with pts
    /// at or past it are skipped.
    end_ts: Option<i64>,
    draining: bool,
    done: bool,
    /// When set, only frames whose pts is in this sorted list must be
    /// output; other frames nobody references are skipped by the decoder.
    pub(crate) wanted: Option<Vec<i64>>,
    /// A packet read ahead (the keyframe a seek was checked against).
    pending: Option<Packet>,
    /// The previous frame's pts and how long it is shown (0 if unknown).
    last: Option<(i64, i64)>,
    /// Whether a seek has failed: the demuxer cannot seek.
    pub(crate) cannot_seek: bool,
}

/// How far before a window's start seeks are retried (seconds) when the
/// demuxer lands past it (MPEG-PS/TS seek by byte position and estimate).
const SEEK_BACK: [f64; 4] = [0.0, 1.0, 4.0, 16.0];

impl FrameReader {
    pub(crate) fn new(demuxer: Demuxer, decoder: VideoDecoder, stream: usize) -> Self {
        FrameReader {
            demuxer,
            decoder,
            stream,
            start_ts: None,
            end_ts: None,
            draining: false,
            done: false,
            wanted: None,
            pending: None,
            last: None,
            cannot_seek: false,
        }
    }

    /// Restricts output to frames shown in `[start, end)` (stream time
    /// base). With `seek`, first seeks to a keyframe at or before `start`
    /// (not when the stream starts at or after it). Returns `false` when no
    /// seek got there (the demuxer cannot seek, or lands past `start` even
    /// [`SEEK_BACK`] seconds earlier): the caller then decodes from the
    /// very start, which always works.
    pub(crate) fn set_window(&mut self, start: Option<i64>, end: Option<i64>, seek: bool) -> Result<bool> {
        self.start_ts = start;
        self.end_ts = end;
        let first = self.demuxer.stream(self.stream)?.start_time();
        let Some(s) = start.filter(|&s| seek && (first == ff::ffi::AV_NOPTS_VALUE || s > first)) else {
            return Ok(true);
        };
        let tb = self.demuxer.time_base(self.stream)?;
        for back in SEEK_BACK {
            if self.seek(s.saturating_sub(tb.timestamp(back))).is_err() {
                return Ok(false);
            }
            if self.first_keyframe()?.is_some_and(|k| k <= s) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Reads up to the first keyframe (kept as the next packet to decode;
    /// packets before it cannot be decoded after a seek) and returns its
    /// time: pts, else dts. `None` at the end of the input.
    fn first_keyframe(&mut self) -> Result<Option<i64>> {
        while let Some(p) = self.demuxer.read_packet(self.stream)? {
            if p.is_key() {
                let at = p.pts().or(p.dts()).unwrap_or(i64::MIN);
                self.pending = Some(p);
                return Ok(Some(at));
            }
        }
        Ok(None)
    }

    /// Lets the decoder skip unreferenced frames whose pts is not in
    /// `wanted` (sorted ascending).
    pub(crate) fn set_wanted(&mut self, wanted: Vec<i64>) {
        self.wanted = Some(wanted);
    }

    /// Seeks to the keyframe at or before `ts` and resets the decoder.
    pub(crate) fn seek(&mut self, ts: i64) -> Result<()> {
        let sought = self.demuxer.seek_timestamp(self.stream, ts);
        self.cannot_seek |= sought.is_err();
        sought?;
        self.decoder.flush();
        (self.draining, self.done, self.pending, self.last) = (false, false, None, None);
        Ok(())
    }

    fn next_packet(&mut self) -> Result<Option<Packet>> {
        let packet = match self.pending.take() {
            Some(p) => Some(p),
            None => self.demuxer.read_packet(self.stream)?,
        };
        let past_end = |p: &Packet| match (self.end_ts, p.dts().or(p.pts())) {
            (Some(end), Some(t)) => t >= end,
            _ => false,
        };
        Ok(packet.filter(|p| !past_end(p)))
    }

    /// Gives a frame without a timestamp the one after the previous
    /// frame's (its duration, else the step between the last two).
    fn stamp(&mut self, frame: &mut Frame) {
        let pts = match (frame.pts(), self.last) {
            (Some(t), _) => t,
            (None, Some((t, step))) => {
                frame.set_pts(t.saturating_add(step.max(1)));
                t.saturating_add(step.max(1))
            }
            (None, None) => return,
        };
        let step = match (frame.duration(), self.last) {
            (d, _) if d > 0 => d,
            (_, Some((t, _))) if pts > t => pts - t,
            (_, last) => last.map_or(0, |l| l.1),
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
                DecodeStatus::NeedMoreData => match self.next_packet()? {
                    Some(p) => {
                        if let Some(wanted) = &self.wanted {
                            let needed = p.pts().is_none_or(|t| wanted.binary_search(&t).is_ok());
                            self.decoder.set_skip_nonref(!needed);
                        }
                        if self.decoder.send_packet(&p)? == SendStatus::Full {
                            // The decoder just asked for data; refusing it
                            // now would loop forever.
                            return Err(Error::Decode {
                                src: self.demuxer.source_name().into(),
                                stream: self.stream,
                                at: p.pts_seconds().map_or(Position::Unknown, Position::Pts),
                                reason: "the decoder neither accepts packets nor outputs frames".into(),
                            });
                        }
                    }
                    None => {
                        self.decoder.send_eof()?;
                        self.draining = true;
                    }
                },
            }
        }
        Ok(None)
    }
}

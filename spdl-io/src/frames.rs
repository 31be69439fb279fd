//! A pull-based frame reader over a demuxer and a decoder: it feeds packets
//! on demand, drains the decoder at the end of the input, restricts output
//! to a time window and supports seeking to a keyframe.

use crate::decode::{DecodeStatus, Frame, SendStatus, VideoDecoder};
use crate::demux::{Demuxer, Packet};
use crate::error::Position;
use crate::{Error, Result};

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
}

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
        }
    }

    /// Restricts output to `[start, end)` (stream time base), seeking to the
    /// keyframe at or before `start`.
    pub(crate) fn set_window(&mut self, start: Option<i64>, end: Option<i64>) -> Result<()> {
        if let Some(s) = start {
            self.seek(s)?;
        }
        self.start_ts = start;
        self.end_ts = end;
        Ok(())
    }

    /// Lets the decoder skip unreferenced frames whose pts is not in
    /// `wanted` (sorted ascending).
    pub(crate) fn set_wanted(&mut self, wanted: Vec<i64>) {
        self.wanted = Some(wanted);
    }

    /// Seeks to the keyframe at or before `ts` and resets the decoder.
    pub(crate) fn seek(&mut self, ts: i64) -> Result<()> {
        self.demuxer.seek_timestamp(self.stream, ts)?;
        self.decoder.flush();
        self.draining = false;
        self.done = false;
        Ok(())
    }

    fn next_packet(&mut self) -> Result<Option<Packet>> {
        let packet = self.demuxer.read_packet(self.stream)?;
        let past_end = |p: &Packet| match (self.end_ts, p.dts().or(p.pts())) {
            (Some(end), Some(t)) => t >= end,
            _ => false,
        };
        Ok(packet.filter(|p| !past_end(p)))
    }

    fn in_window(&self, frame: &Frame) -> bool {
        let Some(pts) = frame.pts() else { return true };
        self.start_ts.is_none_or(|s| pts >= s) && self.end_ts.is_none_or(|e| pts < e)
    }

    /// The next decoded frame inside the window, or `None` at the end.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>> {
        while !self.done {
            match self.decoder.receive_frame()? {
                DecodeStatus::Frame(f) if self.in_window(&f) => return Ok(Some(f)),
                DecodeStatus::Frame(_) => {}
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

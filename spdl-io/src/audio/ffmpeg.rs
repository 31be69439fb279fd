//! The FFmpeg backend: any codec FFmpeg has, resampled and remixed with
//! swresample, trimmed to a window, loaded whole or streamed in chunks with
//! bounded memory.

use std::collections::VecDeque;

use ffmpeg_next as ff;

use super::buffer::{to_buffer, AudioBuffer, Decoded};
use super::config::{AudioConfig, ChannelOrder};
use super::sinks::{oom, ChannelPlanes, SampleWindow};
use crate::error::{Error, Position, Result};
use crate::ffmpeg::filter::FilterGraph;
use crate::ffmpeg::resample::{self, AudioResampler};
use crate::ffmpeg::{self as ffi_edge, log};
use crate::media::demux::{Demuxer, Packet};
use crate::media::time::Ratio;
use crate::source::Source;

/// Decodes one audio stream into interleaved f32 at the output rate and
/// channel count, trimmed to the window.
struct AudioReader {
    demuxer: Demuxer,
    stream: usize,
    decoder: ff::decoder::Audio,
    time_base: Ratio,
    out_rate: u32,
    out_channels: u32,
    resampler: Option<AudioResampler>,
    /// Samples per channel the stream's header declares (0 if unknown).
    declared: usize,
    /// The end of the window, for stopping demuxing early.
    end: Option<f64>,
    window: SampleWindow,
    /// Converted interleaved samples not handed out yet.
    pending: VecDeque<f32>,
    /// Instead of `pending`, for a whole load in channels-first order: the
    /// output, collected as planes.
    planes: Option<ChannelPlanes>,
    /// Resampler output of one frame, reused across frames.
    scratch: Vec<f32>,
    /// The first packet the decoder rejected, until it is known where it
    /// was: if a later packet decodes, the damage is in the middle and this
    /// is the result; at the end of the stream it is only logged, as the
    /// `ffmpeg` CLI does (tags or a web page after the last frame, or a
    /// last frame cut short).
    damage: Option<Error>,
    draining: bool,
    done: bool,
    /// The config's filter chain, built on the first decoded frame.
    filter: Option<AudioFilter>,
    /// The time base of the frames converted (the filter's output's).
    frame_time_base: Ratio,
}

/// An audio filter chain and what the config fixed about its output.
struct AudioFilter {
    desc: String,
    /// The stream's start (stream time base): time 0 inside the chain.
    start: i64,
    graph: Option<FilterGraph>,
    rate_set: bool,
    channels_set: bool,
}

impl AudioReader {
    fn open(src: Source, config: &AudioConfig) -> Result<Self> {
        let demuxer = Demuxer::open_with_limits(src, config.limits)?;
        let stream = match config.stream {
            Some(s) => s,
            None => demuxer.best_audio_stream()?,
        };
        let name = demuxer.source_name().to_string();
        let fail = |reason: String| Error::Decode {
            src: name.clone(),
            stream,
            at: Position::Unknown,
            reason,
            cause: None,
        };
        let st = demuxer.stream(stream)?;
        if st.parameters().medium() != ff::media::Type::Audio {
            return Err(Error::Stream {
                src: name.clone(),
                reason: format!("stream {stream} is not an audio stream"),
            });
        }
        let decoder = ff::codec::Context::from_parameters(st.parameters())
            .and_then(|c| c.decoder().audio())
            .map_err(|e| fail(format!("cannot open the audio decoder: {e}")))?;
        let time_base = Ratio::from(st.time_base());
        let duration = st.duration();
        let start_ts = st.start_time().max(0);
        let (rate, channels) = (decoder.rate(), u32::from(decoder.channels()));
        if rate == 0 || rate > i32::MAX as u32 || channels == 0 || channels > 64 {
            return Err(fail(format!("the header declares {channels} channels at {rate} Hz")));
        }
        let out_rate = config.sample_rate.unwrap_or(rate);
        let out_channels = config.channels.unwrap_or(channels);
        let declared = match duration > 0 {
            true => (time_base.seconds(duration) * f64::from(out_rate)).ceil().max(0.0) as usize,
            false => 0,
        };
        Ok(AudioReader {
            demuxer,
            stream,
            decoder,
            time_base,
            out_rate,
            out_channels,
            resampler: None,
            declared,
            end: config.end,
            window: SampleWindow::new(config.start, config.end),
            pending: VecDeque::new(),
            planes: None,
            scratch: Vec::new(),
            damage: None,
            draining: false,
            done: false,
            filter: config.filter.clone().map(|desc| AudioFilter {
                desc,
                start: start_ts,
                graph: None,
                rate_set: config.sample_rate.is_some(),
                channels_set: config.channels.is_some(),
            }),
            frame_time_base: time_base,
        })
    }

    fn src(&self) -> &str {
        self.demuxer.source_name()
    }

    fn decode_error(&self, e: ff::Error, at: Position) -> Error {
        Error::Decode {
            src: self.src().into(),
            stream: self.stream,
            at,
            reason: log::logged_error(ffi_edge::describe(e)),
            cause: Some(ffi_edge::cause(e)),
        }
    }

    /// Runs the resampler on `frame` (or flushes it with `None`) and keeps
    /// the output; returns the samples per channel produced.
    fn convert(&mut self, frame: Option<&ff::frame::Audio>) -> Result<usize> {
        let (channels, planar) = (self.out_channels, self.planes.is_some());
        if let Some(f) = frame {
            // Already the output format (e.g. mp3float's planar f32): copied
            // as it is, unless a resampler holds samples from earlier frames.
            let direct = self
                .resampler
                .is_none()
                .then(|| resample::f32_planes(f, channels, self.out_rate, planar));
            if let Some(samples) = direct.flatten() {
                let n = f.samples();
                self.keep(n, |c| samples[c])?;
                return Ok(n);
            }
            if self.resampler.as_ref().map(|r| r.input) != Some(resample::audio_input(f)) {
                let r = AudioResampler::new(f, channels, self.out_rate, planar).map_err(|e| self.convert_error(e))?;
                self.resampler = Some(r);
            }
        }
        let Some(resampler) = self.resampler.as_mut() else {
            return Ok(0);
        };
        let mut samples = std::mem::take(&mut self.scratch);
        let converted = resampler
            .convert(frame, &mut samples)
            .map_err(|e| self.convert_error(e))
            .and_then(|(n, stride)| self.keep(n, |c| &samples[c * stride..]).map(|()| n));
        self.scratch = samples;
        converted
    }

    /// Keeps the window's part of `n` converted samples per channel:
    /// `plane(c)` is channel `c` when collecting planes, else `plane(0)`
    /// holds them interleaved.
    fn keep<'a>(&mut self, n: usize, plane: impl Fn(usize) -> &'a [f32]) -> Result<()> {
        match self.planes.as_mut() {
            Some(planes) => {
                let r = self.window.range(n);
                planes
                    .push(r.len(), |c| &plane(c)[r.clone()])
                    .map_err(|bytes| oom(self.demuxer.source_name(), bytes))
            }
            None => {
                self.window
                    .push(plane(0), self.out_channels as usize, &mut self.pending);
                Ok(())
            }
        }
    }

    /// Converted samples held (interleaved count).
    fn buffered(&self) -> usize {
        self.pending.len() + self.planes.as_ref().map_or(0, |p| p.len() * self.out_channels as usize)
    }

    fn convert_error(&self, reason: String) -> Error {
        Error::Convert {
            src: self.src().into(),
            reason,
        }
    }

    /// Decodes until at least `want` interleaved samples are pending or the
    /// stream ends.
    fn fill(&mut self, want: usize) -> Result<()> {
        while self.buffered() < want && !self.done && !self.window.is_full() {
            let mut frame = ff::frame::Audio::empty();
            match self.decoder.receive_frame(&mut frame) {
                Ok(()) => {
                    if let Some(damage) = self.damage.take() {
                        return Err(damage);
                    }
                    self.accept(Some(frame))?;
                }
                Err(ff::Error::Other { errno }) if errno == ff::error::EAGAIN => self.feed()?,
                Err(ff::Error::Eof) => {
                    self.accept(None)?;
                    while self.convert(None)? > 0 {}
                    self.done = true;
                    if let Some(damage) = self.damage.take() {
                        // Nothing decoded at all: the damage is the stream.
                        if self.window.first_time().is_none() {
                            return Err(damage);
                        }
                        tracing::warn!("{damage} (after the last decodable frame: ignored)");
                    }
                }
                Err(e) => self.damaged(e, Position::Unknown),
            }
        }
        Ok(())
    }

    /// Takes a decoded frame (or the end, `None`) through the filter chain,
    /// if any, and converts what comes out.
    fn accept(&mut self, frame: Option<ff::frame::Audio>) -> Result<()> {
        let Some(mut stage) = self.filter.take() else {
            return frame.map_or(Ok(()), |f| self.output(&f));
        };
        let done = self.filter_frame(&mut stage, frame);
        self.filter = Some(stage);
        done
    }

    fn filter_frame(&mut self, stage: &mut AudioFilter, mut frame: Option<ff::frame::Audio>) -> Result<()> {
        let src = self.src().to_string();
        let failed = |reason: String| Error::Convert {
            src: src.clone(),
            reason,
        };
        if let (None, Some(f)) = (stage.graph.as_ref(), frame.as_ref()) {
            let mut graph = FilterGraph::audio(&stage.desc, f, self.time_base.into(), stage.start)
                .map_err(|reason| Error::InvalidConfig(format!("{}: {reason}", self.src())))?;
            let (rate, channels) = graph.audio_output();
            self.out_rate = if stage.rate_set { self.out_rate } else { rate };
            if !stage.channels_set && channels != self.out_channels {
                self.out_channels = channels;
                if self.planes.is_some() {
                    let capacity = self.declared.saturating_add(self.declared / 64 + 4096);
                    let planes = ChannelPlanes::new(channels as usize, capacity);
                    self.planes = Some(planes.map_err(|bytes| oom(self.src(), bytes))?);
                }
            }
            self.frame_time_base = graph.time_base().into();
            stage.graph = Some(graph);
        }
        let Some(graph) = stage.graph.as_mut() else {
            return Ok(()); // the end, and no frame ever came
        };
        graph.push(frame.as_deref_mut()).map_err(failed)?;
        loop {
            let mut out = ff::frame::Audio::empty();
            if !graph.pull(&mut out).map_err(failed)? {
                return Ok(());
            }
            self.output(&out)?;
        }
    }

    /// Converts a frame to the output, starting the window on the first.
    fn output(&mut self, frame: &ff::frame::Audio) -> Result<()> {
        if self.window.first_time().is_none() {
            let t = frame.timestamp().map_or(0.0, |ts| self.frame_time_base.seconds(ts));
            self.window.begin(t, self.out_rate);
        }
        self.convert(Some(frame)).map(drop)
    }

    /// Keeps the first decoder error (see `damage`); decoding goes on.
    fn damaged(&mut self, e: ff::Error, at: Position) {
        if self.damage.is_none() {
            self.damage = Some(self.decode_error(e, at));
        }
    }

    /// Sends the next packet, or end of stream.
    fn feed(&mut self) -> Result<()> {
        if self.draining {
            self.done = true;
            return Ok(());
        }
        let past_end =
            |p: &Packet, tb: Ratio, end: Option<f64>| end.zip(p.pts()).is_some_and(|(e, t)| tb.seconds(t) >= e + 1.0);
        match self.demuxer.read_packet(self.stream)? {
            Some(p) if !past_end(&p, self.time_base, self.end) => {
                log::clear_logged_error();
                if let Err(e) = self.decoder.send_packet(&p.inner) {
                    let at = p.pts_seconds().map_or(Position::Unknown, Position::Pts);
                    self.damaged(e, at);
                }
                Ok(())
            }
            _ => {
                self.draining = true;
                self.decoder.send_eof().or_else(|e| match e {
                    ff::Error::Eof => Ok(()),
                    e => Err(self.decode_error(e, Position::EndOfStream)),
                })
            }
        }
    }

    /// Up to `max` samples per channel, interleaved (channels-first when
    /// collecting planes: then everything decoded, once); empty at the end.
    fn take(&mut self, max: usize) -> Result<Vec<f32>> {
        let want = max.saturating_mul(self.out_channels as usize);
        self.fill(want)?;
        if let Some(planes) = self.planes.take() {
            return Ok(planes.into_vec());
        }
        if want >= self.pending.len() {
            // Everything pending: hand over the buffer itself (no copy).
            return Ok(Vec::from(std::mem::take(&mut self.pending)));
        }
        Ok(self.pending.drain(..want).collect())
    }
}

pub(super) fn load_ffmpeg(src: Source, config: &AudioConfig) -> Result<Decoded> {
    let mut reader = AudioReader::open(src, config)?;
    // Channels-first output is collected as planes (swresample writes
    // planar f32), so it needs no transposed copy at the end.
    let planar = config.order == ChannelOrder::ChannelsFirst;
    if planar {
        // Sized from the header (bounded by ChannelPlanes), a little over
        // the declared length: compacting a short tail is cheaper than
        // growing past it.
        let capacity = reader.declared.saturating_add(reader.declared / 64 + 4096);
        let planes = ChannelPlanes::new(reader.out_channels as usize, capacity);
        reader.planes = Some(planes.map_err(|bytes| oom(reader.src(), bytes))?);
    }
    let limit = config.limits.max_frames.min(usize::MAX as u64) as usize;
    let interleaved = reader.take(limit.saturating_add(1))?;
    Ok(Decoded {
        interleaved,
        rate: reader.out_rate,
        channels: reader.out_channels,
        start: reader.window.first_time().unwrap_or(0.0),
        planar,
        backend: "ffmpeg",
    })
}

/// Audio in chunks of at most `chunk_samples` samples per channel, with
/// bounded memory; created by [`stream_audio`].
pub struct AudioChunks {
    reader: AudioReader,
    chunk: usize,
    order: ChannelOrder,
    done: bool,
    position: usize,
}

impl Iterator for AudioChunks {
    type Item = Result<AudioBuffer<f32>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = self.reader.take(self.chunk).and_then(|interleaved| {
            let (rate, channels) = (self.reader.out_rate, self.reader.out_channels);
            let start = self.reader.window.first_time().unwrap_or(0.0) + self.position as f64 / f64::from(rate);
            self.position += interleaved.len() / channels as usize;
            let decoded = Decoded {
                interleaved,
                rate,
                channels,
                start,
                planar: false,
                backend: "ffmpeg",
            };
            to_buffer(self.reader.src(), decoded, self.order)
        });
        match result {
            Ok(b) if b.samples.is_empty() => {
                self.done = true;
                None
            }
            Ok(b) => Some(Ok(b)),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Opens audio for streaming decode in chunks of `chunk_samples` samples
/// per channel.
///
/// # Errors
/// As [`load_audio`] for opening.
pub fn stream_audio(src: impl Into<Source>, config: &AudioConfig, chunk_samples: usize) -> Result<AudioChunks> {
    if chunk_samples == 0 {
        return Err(Error::InvalidConfig("chunk_samples must be at least 1".into()));
    }
    config.validate()?;
    Ok(AudioChunks {
        reader: AudioReader::open(src.into(), config)?,
        chunk: chunk_samples,
        order: config.order,
        done: false,
        position: 0,
    })
}

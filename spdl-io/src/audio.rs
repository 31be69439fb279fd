//! Audio loading through FFmpeg: decode any codec FFmpeg has, convert to
//! f32 (or i16), resample and down/upmix with swresample (the defaults of
//! FFmpeg's `aresample` filter), trim to a time window sample-accurately,
//! and stream long files in fixed-size chunks with bounded memory.
//!
//! Multichannel output uses FFmpeg's native channel order (5.1: FL FR FC
//! LFE BL BR; 7.1: FL FR FC LFE BL BR SL SR).
//!
//! Windows are sample-accurate because samples are counted from the first
//! decoded frame rather than taken from a seek: many containers store
//! timestamps in milliseconds, so a seek could only land within +-1 ms.
//! Decoding stops at the window's end; for windows late in long files,
//! [`stream_audio`] keeps memory bounded.

use std::collections::VecDeque;

use ffmpeg_next as ff;
use ndarray::Array2;

use crate::demux::{Demuxer, Ratio};
use crate::error::Position;
use crate::ffmpeg::AudioResampler;
use crate::symphonia_audio::{prefers_symphonia, SymphoniaInput};
use crate::wav::PcmWav;
use crate::{Error, Limits, Result, Source};

/// How samples are laid out in the output array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ChannelOrder {
    /// (channels, samples): one row per channel (default).
    #[default]
    ChannelsFirst,
    /// (samples, channels): interleaved.
    Interleaved,
}

/// Which decoder reads audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AudioBackend {
    /// The direct PCM reader for PCM WAV and symphonia for FLAC, which
    /// decode the same samples as FFmpeg faster, when no resampling,
    /// remixing or stream choice is asked for; FFmpeg for everything else
    /// (default).
    #[default]
    Auto,
    /// Always FFmpeg.
    Ffmpeg,
    /// Always symphonia (WAV, FLAC, MP3, AAC, Vorbis, ALAC); an error for
    /// what it cannot read and for resampling or remixing.
    Symphonia,
    /// The direct PCM WAV reader (u8, s16, s24, s32, f32, f64): one pass
    /// from the file into the output layout. Auto picks it for PCM WAV.
    Pcm,
}

/// How to load audio. Every field has a default; setters chain.
///
/// ```
/// let config = spdl_io::AudioConfig::default().with_sample_rate(16_000).with_channels(1).with_window(1.0, 3.5);
/// assert_eq!(config.sample_rate, Some(16_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct AudioConfig {
    /// The stream to decode; `None` picks FFmpeg's best audio stream.
    pub stream: Option<usize>,
    /// Resample to this rate (Hz); `None` keeps the source rate.
    pub sample_rate: Option<u32>,
    /// Down/upmix to this many channels; `None` keeps the source's.
    pub channels: Option<u32>,
    /// Window start in seconds (stream time).
    pub start: Option<f64>,
    /// Window end in seconds, exclusive.
    pub end: Option<f64>,
    /// Output layout (default channels-first).
    pub order: ChannelOrder,
    /// Safety limits; `max_frames` bounds the samples per channel (default
    /// [`AUDIO_MAX_SAMPLES`]).
    pub limits: Limits,
    /// The decoder for whole-file loads (streaming always uses FFmpeg).
    pub backend: AudioBackend,
}

/// Default limit of samples per channel: two hours at 48 kHz.
pub const AUDIO_MAX_SAMPLES: u64 = 48_000 * 60 * 60 * 2;

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            stream: None,
            sample_rate: None,
            channels: None,
            start: None,
            end: None,
            order: ChannelOrder::ChannelsFirst,
            limits: Limits::default().with_max_frames(AUDIO_MAX_SAMPLES),
            backend: AudioBackend::Auto,
        }
    }
}

impl AudioConfig {
    /// Resamples to `rate` Hz.
    #[must_use]
    pub fn with_sample_rate(mut self, rate: u32) -> Self {
        self.sample_rate = Some(rate);
        self
    }
    /// Down/upmixes to `channels`.
    #[must_use]
    pub fn with_channels(mut self, channels: u32) -> Self {
        self.channels = Some(channels);
        self
    }
    /// Keeps samples in `[start, end)` seconds.
    #[must_use]
    pub fn with_window(mut self, start: f64, end: f64) -> Self {
        self.start = Some(start);
        self.end = Some(end);
        self
    }
    /// Sets the output layout.
    #[must_use]
    pub fn with_order(mut self, order: ChannelOrder) -> Self {
        self.order = order;
        self
    }
    /// Decodes stream `index`.
    #[must_use]
    pub fn with_stream(mut self, index: usize) -> Self {
        self.stream = Some(index);
        self
    }
    /// Sets the safety limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    /// Picks the decoder.
    #[must_use]
    pub fn with_backend(mut self, backend: AudioBackend) -> Self {
        self.backend = backend;
        self
    }
}

/// Decoded audio.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AudioBuffer<T = f32> {
    /// Samples, (channels, samples) or (samples, channels) per
    /// [`AudioConfig::order`].
    pub samples: Array2<T>,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channel layout name (FFmpeg's, e.g. `stereo`, `5.1`).
    pub channel_layout: String,
    /// Time of the first sample in seconds (stream time).
    pub start: f64,
    /// Which decoder produced the samples.
    pub backend: &'static str,
}

/// A sample type of the output: `f32` or `i16`.
pub trait AudioSample: Copy + Default + Send + 'static {
    /// From a float sample, as FFmpeg converts `flt` to this format.
    fn from_f32(v: f32) -> Self;

    /// A whole buffer converted (f32 keeps the buffer itself: no copy).
    fn from_f32_vec(v: Vec<f32>) -> Vec<Self> {
        v.into_iter().map(Self::from_f32).collect()
    }
}

impl AudioSample for f32 {
    fn from_f32(v: f32) -> Self {
        v
    }

    fn from_f32_vec(v: Vec<f32>) -> Vec<f32> {
        v
    }
}

impl AudioSample for i16 {
    /// `av_clip_int16(lrintf(v * 32768))`, as swresample does.
    fn from_f32(v: f32) -> Self {
        (v * 32768.0).round_ties_even().clamp(-32768.0, 32767.0) as i16
    }
}

/// The `[start, end)` window in samples, counted from the first decoded
/// sample (no seeking, so windows are sample-accurate for every codec).
pub(crate) struct SampleWindow {
    start: Option<f64>,
    end: Option<f64>,
    /// Time of the first sample kept (known after the first frame).
    first_time: Option<f64>,
    /// Samples per channel still to drop (window start).
    skip: usize,
    /// Samples per channel still to keep (window end).
    remaining: Option<usize>,
}

impl SampleWindow {
    pub(crate) fn new(start: Option<f64>, end: Option<f64>) -> Self {
        SampleWindow {
            start,
            end,
            first_time: None,
            skip: 0,
            remaining: None,
        }
    }

    /// Sets the counters from the time of the first decoded sample.
    pub(crate) fn begin(&mut self, frame_time: f64, rate: u32) {
        let rate = f64::from(rate);
        let start = self.start.unwrap_or(frame_time).max(frame_time);
        self.skip = ((start - frame_time) * rate).round() as usize;
        self.remaining = self.end.map(|e| ((e - start).max(0.0) * rate).round() as usize);
        self.first_time = Some(start);
    }

    pub(crate) fn first_time(&self) -> Option<f64> {
        self.first_time
    }

    /// Starts the window at `frame_time` over `frames` samples per channel
    /// that are all available at once; returns how many to skip and keep.
    pub(crate) fn claim(&mut self, frame_time: f64, rate: u32, frames: usize) -> (usize, usize) {
        self.begin(frame_time, rate);
        let skip = self.skip.min(frames);
        let keep = self.remaining.map_or(frames - skip, |r| r.min(frames - skip));
        self.skip -= skip;
        if let Some(r) = self.remaining.as_mut() {
            *r -= keep;
        }
        (skip, keep)
    }

    /// Whether the window's end was reached.
    pub(crate) fn is_full(&self) -> bool {
        self.remaining == Some(0)
    }

    /// Takes the next `frames` samples per channel through the window;
    /// returns the range of them inside it.
    pub(crate) fn range(&mut self, frames: usize) -> std::ops::Range<usize> {
        let skip = self.skip.min(frames);
        self.skip -= skip;
        let mut n = frames - skip;
        if let Some(r) = self.remaining.as_mut() {
            n = n.min(*r);
            *r -= n;
        }
        skip..skip + n
    }

    /// Appends the part of `samples` (interleaved, `ch` channels) inside
    /// the window to `out`.
    pub(crate) fn push(&mut self, samples: &[f32], ch: usize, out: &mut impl Extend<f32>) {
        let r = self.range(samples.len() / ch);
        out.extend(samples[r.start * ch..r.end * ch].iter().copied());
    }
}

/// Channel planes collected one after another in one buffer (channel `c`
/// at `c * capacity`), so channels-first output needs no transposed copy.
/// Sized from the header's frame count, but never more than
/// [`ChannelPlanes::MAX_UP_FRONT`] samples up front (a header can lie); a
/// header that understated it makes the planes move to a larger buffer as
/// decoded samples arrive, one that overstated it is compacted at the end.
pub(crate) struct ChannelPlanes {
    data: Vec<f32>,
    channels: usize,
    capacity: usize,
    len: usize,
}

impl ChannelPlanes {
    /// Samples (all channels) allocated before any is decoded: 64 MiB.
    const MAX_UP_FRONT: usize = 1 << 24;

    /// Room for `capacity` samples per channel (at most
    /// [`Self::MAX_UP_FRONT`] in all), hinted to huge pages: the planes are
    /// first touched as they are filled.
    ///
    /// # Errors
    /// The bytes that could not be allocated.
    pub(crate) fn new(channels: usize, capacity: usize) -> Result<Self, usize> {
        let capacity = capacity.min(Self::MAX_UP_FRONT / channels.max(1));
        Ok(ChannelPlanes {
            data: crate::memory::zeroed(channels * capacity)?,
            channels,
            capacity,
            len: 0,
        })
    }

    /// Appends `n` samples to every channel, taken from `plane(c)`.
    ///
    /// # Errors
    /// The bytes that could not be allocated to grow the planes.
    pub(crate) fn push<'a>(&mut self, n: usize, plane: impl Fn(usize) -> &'a [f32]) -> Result<(), usize> {
        if self.len + n > self.capacity {
            self.grow((self.len + n).max(self.capacity.saturating_mul(2)))?;
        }
        for c in 0..self.channels {
            let at = c * self.capacity + self.len;
            self.data[at..at + n].copy_from_slice(&plane(c)[..n]);
        }
        self.len += n;
        Ok(())
    }

    /// Samples per channel so far.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn grow(&mut self, capacity: usize) -> Result<(), usize> {
        let mut data = crate::memory::zeroed(self.channels.saturating_mul(capacity))?;
        for c in 0..self.channels {
            let from = c * self.capacity;
            data[c * capacity..c * capacity + self.len].copy_from_slice(&self.data[from..from + self.len]);
        }
        (self.data, self.capacity) = (data, capacity);
        Ok(())
    }

    /// The planes, contiguous: (channels, len) in row-major order.
    pub(crate) fn into_vec(mut self) -> Vec<f32> {
        if self.len != self.capacity {
            for c in 1..self.channels {
                let from = c * self.capacity;
                self.data.copy_within(from..from + self.len, c * self.len);
            }
            self.data.truncate(self.channels * self.len);
        }
        self.data
    }
}

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
        let (rate, channels) = (decoder.rate(), u32::from(decoder.channels()));
        if rate == 0 || rate > i32::MAX as u32 || channels == 0 || channels > 64 {
            return Err(fail(format!("the header declares {channels} channels at {rate} Hz")));
        }
        if config.sample_rate.is_some_and(|r| !(1..=768_000).contains(&r))
            || config.channels.is_some_and(|c| !(1..=64).contains(&c))
        {
            let or_source = |v: Option<u32>| v.map_or("the source's".to_string(), |v| v.to_string());
            return Err(Error::InvalidConfig(format!(
                "cannot output {} channels at {} Hz (1..=64 channels, 1..=768000 Hz)",
                or_source(config.channels),
                or_source(config.sample_rate)
            )));
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
            reason: crate::ffmpeg::logged_error(crate::ffmpeg::describe(e)),
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
                .then(|| crate::ffmpeg::f32_planes(f, channels, self.out_rate, planar));
            if let Some(samples) = direct.flatten() {
                let n = f.samples();
                self.keep(n, |c| samples[c])?;
                return Ok(n);
            }
            if self.resampler.as_ref().map(|r| r.input) != Some(crate::ffmpeg::audio_input(f)) {
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
                    if self.window.first_time().is_none() {
                        let t = frame.timestamp().map_or(0.0, |ts| self.time_base.seconds(ts));
                        self.window.begin(t, self.out_rate);
                    }
                    self.convert(Some(&frame))?;
                }
                Err(ff::Error::Other { errno }) if errno == ff::error::EAGAIN => self.feed()?,
                Err(ff::Error::Eof) => {
                    while self.convert(None)? > 0 {}
                    if let Some(damage) = self.damage.take() {
                        tracing::warn!("{damage} (after the last decodable frame: ignored)");
                    }
                    self.done = true;
                }
                Err(e) => self.damaged(e, Position::Unknown),
            }
        }
        Ok(())
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
        let past_end = |p: &crate::Packet, tb: Ratio, end: Option<f64>| {
            end.zip(p.pts()).is_some_and(|(e, t)| tb.seconds(t) >= e + 1.0)
        };
        match self.demuxer.read_packet(self.stream)? {
            Some(p) if !past_end(&p, self.time_base, self.end) => {
                crate::ffmpeg::clear_logged_error();
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

/// The error for an output that could not be allocated.
pub(crate) fn oom(src: &str, bytes: usize) -> Error {
    Error::Convert {
        src: src.into(),
        reason: format!("cannot allocate {bytes} bytes for the output"),
    }
}

/// Interleaved samples and what they are.
struct Decoded {
    interleaved: Vec<f32>,
    rate: u32,
    channels: u32,
    /// Time of the first sample, in seconds.
    start: f64,
    /// Whether the samples are channels-first already (else interleaved).
    planar: bool,
    backend: &'static str,
}

/// Shapes decoded samples as the config asks and converts the type.
fn to_buffer<T: AudioSample>(src: &str, d: Decoded, order: ChannelOrder) -> Result<AudioBuffer<T>> {
    let ch = d.channels as usize;
    let n = d.interleaved.len() / ch;
    let data: Vec<T> = T::from_f32_vec(d.interleaved);
    let shape = if d.planar { (ch, n) } else { (n, ch) };
    let array = Array2::from_shape_vec(shape, data).map_err(|e| Error::Convert {
        src: src.into(),
        reason: e.to_string(),
    })?;
    let samples = match (order == ChannelOrder::ChannelsFirst) == d.planar {
        true => array,
        false => array.reversed_axes().as_standard_layout().into_owned(),
    };
    Ok(AudioBuffer {
        samples,
        sample_rate: d.rate,
        channel_layout: crate::ffmpeg::default_layout_name(d.channels),
        start: d.start,
        backend: d.backend,
    })
}

/// Decodes a whole source with the backend the config picks; a remote
/// object is fetched in one request (streaming readers use ranged reads).
fn load<T: AudioSample>(src: Source, config: &AudioConfig) -> Result<AudioBuffer<T>> {
    crate::demux::check_window(config.start, config.end)?;
    let src = src.fetched(&config.limits)?;
    let name = src.name();
    let decoded = match load_native(&src, config)? {
        Some(d) => d,
        None => load_ffmpeg(src, config)?,
    };
    if decoded.interleaved.is_empty() {
        return Err(Error::Decode {
            src: name,
            stream: config.stream.unwrap_or(0),
            at: Position::EndOfStream,
            reason: "no audio samples could be decoded".into(),
        });
    }
    let per_channel = decoded.interleaved.len() / decoded.channels as usize;
    Limits::check(
        &name,
        "samples per channel",
        per_channel as u64,
        config.limits.max_frames,
    )?;
    to_buffer(&name, decoded, config.order)
}

fn load_ffmpeg(src: Source, config: &AudioConfig) -> Result<Decoded> {
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

/// File extensions auto selection probes for the PCM and symphonia paths
/// (the containers of the codecs they are preferred for); in-memory
/// sources are always probed.
const PROBED_EXTENSIONS: &[&str] = &["wav", "wave", "flac"];

/// The decoder chosen for one source.
enum Chosen {
    Pcm(PcmWav, bytes::Bytes),
    Symphonia(SymphoniaInput),
    Ffmpeg,
}

/// Picks the backend: the config's, or (for [`AudioBackend::Auto`]) the
/// direct PCM reader for PCM WAV, symphonia for FLAC, FFmpeg for the rest
/// and for every resample, remix or stream choice.
fn choose(src: &Source, config: &AudioConfig) -> Result<Chosen> {
    let name = src.name();
    let converting = config.sample_rate.is_some() || config.channels.is_some() || config.stream.is_some();
    let forced = match config.backend {
        AudioBackend::Ffmpeg => return Ok(Chosen::Ffmpeg),
        AudioBackend::Auto if converting => return Ok(Chosen::Ffmpeg),
        AudioBackend::Auto => None,
        other if converting => {
            return Err(Error::InvalidConfig(format!(
                "{name}: the {other:?} backend does not resample, remix or pick streams; use Auto or Ffmpeg"
            )))
        }
        other => Some(other),
    };
    let probed = matches!(src, Source::Bytes { .. }) || crate::remote::has_extension(&name, PROBED_EXTENSIONS);
    if forced.is_none() && !probed {
        return Ok(Chosen::Ffmpeg);
    }
    let data = src.read_all(&config.limits)?;
    if matches!(forced, None | Some(AudioBackend::Pcm)) {
        if let Some(wav) = PcmWav::parse(&data) {
            return Ok(Chosen::Pcm(wav, data));
        }
    }
    let cannot = |what: &str| Error::Open {
        src: name.clone(),
        reason: format!("the {what} backend cannot read this container or codec"),
    };
    match (forced, SymphoniaInput::open(src, data)) {
        (Some(AudioBackend::Pcm), _) => Err(cannot("PCM")),
        (Some(_), Some(input)) => Ok(Chosen::Symphonia(input)),
        (Some(_), None) => Err(cannot("symphonia")),
        (None, Some(input)) if prefers_symphonia(input.codec) => Ok(Chosen::Symphonia(input)),
        (None, _) => Ok(Chosen::Ffmpeg),
    }
}

/// Decodes with the PCM reader or symphonia; `None` hands over to FFmpeg.
fn load_native(src: &Source, config: &AudioConfig) -> Result<Option<Decoded>> {
    let mut window = SampleWindow::new(config.start, config.end);
    let decoded = match choose(src, config)? {
        Chosen::Ffmpeg => return Ok(None),
        Chosen::Pcm(wav, data) => {
            let planar = config.order == ChannelOrder::ChannelsFirst;
            Decoded {
                interleaved: wav.decode(&data, &mut window, planar),
                rate: wav.rate,
                channels: wav.channels,
                start: 0.0,
                planar,
                backend: "pcm",
            }
        }
        Chosen::Symphonia(input) => {
            let planar = config.order == ChannelOrder::ChannelsFirst;
            let Some((interleaved, rate, channels)) = input.decode(&mut window, config.limits.max_frames, planar)?
            else {
                return match config.backend {
                    AudioBackend::Auto => Ok(None),
                    _ => Err(Error::Decode {
                        src: src.name(),
                        stream: 0,
                        at: Position::EndOfStream,
                        reason: "symphonia ended before the length the header declares (the ffmpeg backend reads it)"
                            .into(),
                    }),
                };
            };
            Decoded {
                interleaved,
                rate,
                channels,
                start: 0.0,
                planar,
                backend: "symphonia",
            }
        }
    };
    Ok(Some(Decoded {
        start: window.first_time().unwrap_or(0.0),
        ..decoded
    }))
}

/// The backend [`load_audio`] would use for `src` with `config` (probes
/// the source; decodes nothing).
///
/// ```no_run
/// use spdl_io::{audio_backend, AudioBackend, AudioConfig};
/// assert_eq!(audio_backend("speech.flac", &AudioConfig::default())?, AudioBackend::Symphonia);
/// # Ok::<(), spdl_io::Error>(())
/// ```
///
/// # Errors
/// As [`load_audio`] for reading the source, or a forced backend that
/// cannot read it.
pub fn audio_backend(src: impl Into<Source>, config: &AudioConfig) -> Result<AudioBackend> {
    let src = src.into().fetched(&config.limits)?;
    Ok(match choose(&src, config)? {
        Chosen::Pcm(..) => AudioBackend::Pcm,
        Chosen::Symphonia(_) => AudioBackend::Symphonia,
        Chosen::Ffmpeg => AudioBackend::Ffmpeg,
    })
}

/// Decodes audio into f32 samples.
///
/// ```no_run
/// use spdl_io::{load_audio, AudioConfig};
/// let speech = load_audio("clip.flac", &AudioConfig::default().with_sample_rate(16_000).with_channels(1))?;
/// assert_eq!(speech.samples.shape()[0], 1);
/// # Ok::<(), spdl_io::Error>(())
/// ```
///
/// # Errors
/// As for video: missing or unreadable input, no audio stream, corrupt
/// data, more samples than [`Limits::max_frames`] per channel.
pub fn load_audio(src: impl Into<Source>, config: &AudioConfig) -> Result<AudioBuffer<f32>> {
    load(src.into(), config)
}

/// As [`load_audio`], converted to i16 as FFmpeg converts `flt` to `s16`.
///
/// # Errors
/// As [`load_audio`].
pub fn load_audio_i16(src: impl Into<Source>, config: &AudioConfig) -> Result<AudioBuffer<i16>> {
    load(src.into(), config)
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
    crate::demux::check_window(config.start, config.end)?;
    Ok(AudioChunks {
        reader: AudioReader::open(src.into(), config)?,
        chunk: chunk_samples,
        order: config.order,
        done: false,
        position: 0,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn channel_planes_grow_and_compact_to_channels_first() {
        let (left, right): (Vec<f32>, Vec<f32>) = (
            (0..10).map(|i| i as f32).collect(),
            (0..10).map(|i| -i as f32).collect(),
        );
        // Understated header (capacity 4 < 10 samples): the planes move once.
        let mut planes = super::ChannelPlanes::new(2, 4).unwrap();
        for chunk in [0..3, 3..7, 7..10] {
            planes
                .push(chunk.len(), |c| {
                    if c == 0 {
                        &left[chunk.clone()]
                    } else {
                        &right[chunk.clone()]
                    }
                })
                .unwrap();
        }
        let want: Vec<f32> = left.iter().chain(&right).copied().collect();
        assert_eq!(planes.into_vec(), want);
        // Overstated header (capacity 100): compacted at the end.
        let mut planes = super::ChannelPlanes::new(2, 100).unwrap();
        planes
            .push(10, |c| if c == 0 { &left[..] } else { &right[..] })
            .unwrap();
        assert_eq!(planes.len(), 10);
        assert_eq!(planes.into_vec(), want);
    }

    #[test]
    fn window_range_skips_then_keeps() {
        let mut w = super::SampleWindow::new(Some(0.5), Some(1.0));
        w.begin(0.0, 10); // skip 5 samples, keep 5
        assert_eq!(w.range(3), 3..3);
        assert_eq!(w.range(4), 2..4);
        assert_eq!(w.range(10), 0..3);
        assert!(w.is_full());
    }

    use super::*;

    #[test]
    fn default_limit_allows_hours_of_audio() {
        let limit = AudioConfig::default().limits.max_frames;
        assert_eq!(limit, AUDIO_MAX_SAMPLES);
        assert!(limit >= 48_000 * 3600);
    }

    #[test]
    fn i16_conversion_rounds_and_clips_like_swresample() {
        assert_eq!(i16::from_f32(0.5), 16384);
        assert_eq!(i16::from_f32(1.0), 32767);
        assert_eq!(i16::from_f32(-1.0), -32768);
        assert_eq!(i16::from_f32(-2.0), -32768);
        assert_eq!(i16::from_f32(1.5 / 32768.0), 2); // ties to even
    }
}

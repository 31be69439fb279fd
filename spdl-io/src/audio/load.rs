//! Whole-source audio loads and the choice of backend: the config's, or
//! for [`AudioBackend::Auto`] the direct PCM reader for PCM WAV, symphonia
//! for FLAC, FFmpeg for the rest and for every resample, remix or stream
//! choice.
//!
//! Windows are sample-accurate because samples are counted from the first
//! decoded frame rather than taken from a seek: many containers store
//! timestamps in milliseconds, so a seek could only land within +-1 ms.
//! Decoding stops at the window's end; for windows late in long files,
//! [`stream_audio`](super::ffmpeg::stream_audio) keeps memory bounded.

use super::buffer::{to_buffer, AudioBuffer, AudioSample, Decoded};
use super::config::{AudioBackend, AudioConfig, ChannelOrder};
use super::ffmpeg::load_ffmpeg;
use super::sinks::SampleWindow;
#[cfg(feature = "symphonia")]
use super::symphonia::{prefers_symphonia, SymphoniaInput};
use super::wav::PcmWav;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::source::path::has_extension;
use crate::source::Source;

/// Decodes a whole source with the backend the config picks; a remote
/// object is fetched in one request (streaming readers use ranged reads).
fn load<T: AudioSample>(src: Source, config: &AudioConfig) -> Result<AudioBuffer<T>> {
    config.validate()?;
    let src = src.fetched(&config.limits)?;
    let name = src.name();
    let decoded = match load_native(&src, config)? {
        Some(d) => d,
        None => load_ffmpeg(src, config)?,
    };
    let per_channel = decoded.interleaved.len() / decoded.channels as usize;
    Limits::check(
        &name,
        "samples per channel",
        per_channel as u64,
        config.limits.max_frames,
    )?;
    to_buffer(&name, decoded, config.order)
}

/// File extensions auto selection probes for the PCM and symphonia paths
/// (the containers of the codecs they are preferred for); in-memory
/// sources are always probed.
const PROBED_EXTENSIONS: &[&str] = &["wav", "wave", "flac"];

/// The decoder chosen for one source.
enum Chosen {
    Pcm(PcmWav, bytes::Bytes),
    #[cfg(feature = "symphonia")]
    Symphonia(SymphoniaInput),
    Ffmpeg,
}

/// Picks the backend: the config's, or (for [`AudioBackend::Auto`]) the
/// direct PCM reader for PCM WAV, symphonia for FLAC, FFmpeg for the rest
/// and for every resample, remix or stream choice.
fn choose(src: &Source, config: &AudioConfig) -> Result<Chosen> {
    let name = src.name();
    let converting =
        config.sample_rate.is_some() || config.channels.is_some() || config.stream.is_some() || config.filter.is_some();
    let forced = match config.backend {
        AudioBackend::Ffmpeg => return Ok(Chosen::Ffmpeg),
        AudioBackend::Auto if converting => return Ok(Chosen::Ffmpeg),
        AudioBackend::Auto => None,
        other if converting => {
            return Err(Error::InvalidConfig(format!(
                "{name}: the {other:?} backend does not resample, remix, filter or pick streams; use Auto or Ffmpeg"
            )))
        }
        other => Some(other),
    };
    let probed = matches!(src, Source::Bytes { .. }) || has_extension(&name, PROBED_EXTENSIONS);
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
        cause: None,
    };
    if forced == Some(AudioBackend::Pcm) {
        return Err(cannot("PCM"));
    }
    choose_symphonia(src, data, forced.is_some()).ok_or_else(|| cannot("symphonia"))
}

/// Symphonia for a source it can read: always when `forced`, else only for
/// the codecs it is preferred for (FFmpeg otherwise); `None` when forced
/// and it cannot read the source.
#[cfg(feature = "symphonia")]
fn choose_symphonia(src: &Source, data: bytes::Bytes, forced: bool) -> Option<Chosen> {
    match (forced, SymphoniaInput::open(src, data)) {
        (true, input) => input.map(Chosen::Symphonia),
        (false, Some(input)) if prefers_symphonia(input.codec) => Some(Chosen::Symphonia(input)),
        (false, _) => Some(Chosen::Ffmpeg),
    }
}

/// Without the `symphonia` feature, FFmpeg decodes what symphonia would.
#[cfg(not(feature = "symphonia"))]
fn choose_symphonia(_: &Source, _: bytes::Bytes, forced: bool) -> Option<Chosen> {
    (!forced).then_some(Chosen::Ffmpeg)
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
        #[cfg(feature = "symphonia")]
        Chosen::Symphonia(input) => {
            let planar = config.order == ChannelOrder::ChannelsFirst;
            let Some((interleaved, rate, channels)) = input.decode(&mut window, config.limits.max_frames, planar)?
            else {
                return match config.backend {
                    AudioBackend::Auto => Ok(None),
                    _ => Err(Error::Decode {
                        src: src.name(),
                        stream: 0,
                        at: crate::error::Position::EndOfStream,
                        reason: "symphonia ended before the length the header declares (the ffmpeg backend reads it)"
                            .into(),
                        cause: None,
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
        #[cfg(feature = "symphonia")]
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

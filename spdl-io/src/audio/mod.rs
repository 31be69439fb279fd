//! Audio: [`load_audio`] (f32) and [`load_audio_i16`] into (channels,
//! samples) or (samples, channels) arrays, [`stream_audio`] in chunks with
//! bounded memory, [`audio_backend`] to see which decoder a source gets,
//! and [`AudioWriter`] to encode samples into a file.
//!
//! Backends: `wav` (a direct PCM WAV reader), `symphonia` (pure Rust, for
//! FLAC; feature `symphonia`) and `ffmpeg` (everything else, and every
//! resample, remix or stream choice); `load` picks one per source. All
//! write through the shared `sinks` (time window, channel planes), so their
//! samples are identical.
//!
//! Multichannel output uses FFmpeg's native channel order (5.1: FL FR FC
//! LFE BL BR; 7.1: FL FR FC LFE BL BR SL SR).

mod buffer;
mod config;
mod ffmpeg;
mod load;
mod sinks;
#[cfg(feature = "symphonia")]
mod symphonia;
mod wav;
mod writer;

pub use buffer::{AudioBuffer, AudioSample};
pub use config::{AudioBackend, AudioConfig, ChannelOrder, AUDIO_MAX_SAMPLES};
pub use ffmpeg::{stream_audio, AudioChunks};
pub use load::{audio_backend, load_audio, load_audio_i16};
pub use writer::AudioWriter;

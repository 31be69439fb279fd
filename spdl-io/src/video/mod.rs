//! Video: whole clips or time windows into one array ([`load_video`]),
//! bounded-memory chunks for long videos ([`stream_video`]), and frames
//! picked by index ([`sample_frames`]), with optional frame-rate
//! conversion. Built on `media` (demux, decode, frames, convert).

mod clip;
mod config;
mod rate;
mod sample;

pub use clip::{load_video, stream_video, Video, VideoChunks};
pub use config::{VideoConfig, MAX_FRAME_RATE};
pub use sample::{evenly_spaced, sample_frames, sample_frames_by};

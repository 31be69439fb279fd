//! Video: whole clips or time windows into one array ([`load_video`]),
//! bounded-memory chunks for long videos ([`stream_video`]), frames picked
//! by index ([`sample_frames`]), and a reader opened once for many
//! lookups by index, time or clip ([`VideoReader`], with a [`FrameIndex`]
//! that can be saved), with optional frame-rate conversion; and
//! [`VideoWriter`] to encode frames into a file. Built on
//! `media` (demux, decode, frames, convert).

mod clip;
mod config;
mod index;
mod rate;
mod reader;
mod sample;
mod writer;

pub use clip::{load_video, stream_video, Video, VideoChunks};
pub use config::{SeekMode, VideoConfig, MAX_FRAME_RATE};
pub use index::{FrameIndex, IndexOrigin};
pub use reader::{ClipSampling, Clips, VideoReader};
pub use sample::{evenly_spaced, sample_frames, sample_frames_by};
pub use writer::{VideoWriter, WriterConfig};

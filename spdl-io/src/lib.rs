//! `spdl-io`: demux and decode media into `ndarray` buffers.
//!
//! Data flows one way: a [`Source`] (path or bytes) is opened by a
//! [`Demuxer`], whose [`Packet`]s a [`VideoDecoder`] turns into [`Frame`]s,
//! which are converted (pixel format, colour matrix and range, crop,
//! resize, rotation) straight into the output array of a [`Video`].
//!
//! Images ([`load_image`], [`load_image_batch`]) and audio ([`load_audio`],
//! FFmpeg or symphonia) follow the same pattern. Sources can be local
//! paths, bytes, or object-storage URLs read through a [`Store`] (ranged
//! reads for video); [`list_dataset`], [`class_folders`] and
//! [`ShardReader`] (webdataset tar shards) turn a dataset into sources.
//!
//! All functions are plain blocking calls; run them on a CPU pool (the
//! pipeline does), never on an async runtime's worker threads.
//!
//! ```no_run
//! use spdl_io::{load_video, sample_frames, VideoConfig};
//!
//! let config = VideoConfig::default().with_size(224, 224);
//! let clip = load_video("clip.mp4", &config)?;
//! println!("{:?} frames at {:?}", clip.frames.shape(), &clip.pts[..3]);
//!
//! let picked = sample_frames("clip.mp4", &[0, 10, 20], &config)?;
//! assert_eq!(picked.frames.shape()[0], 3);
//! # Ok::<(), spdl_io::Error>(())
//! ```
#![deny(unsafe_code)]

mod audio;
mod batch;
mod convert;
mod dataset;
mod decode;
mod demux;
mod error;
#[allow(unsafe_code)]
mod ffmpeg;
mod frames;
mod images;
mod jpeg;
mod limits;
mod memory;
mod orient;
mod pixels;
mod ranged;
mod rate;
mod remote;
mod repair;
mod resize;
mod shard;
mod source;
mod symphonia_audio;
mod video;
mod wav;

pub use audio::{
    audio_backend, load_audio, load_audio_i16, stream_audio, AudioBackend, AudioBuffer, AudioChunks, AudioConfig,
    AudioSample, ChannelOrder, AUDIO_MAX_SAMPLES,
};
pub use batch::{load_image_batch, BatchConfig, Cancel, FailurePolicy, ImageBatch};
pub use convert::{ConvertConfig, Crop, Interpolation, PixelFormat};
pub use dataset::{class_folders, list_dataset, list_store, ClassFolders, DatasetItem};
pub use decode::{DecodeStatus, DecoderConfig, Frame, SendStatus, VideoDecoder};
pub use demux::{Demuxer, MediaInfo, Packet, PacketWindow, Ratio, StreamInfo, StreamKind};
pub use error::{Error, Position, Result};
pub use images::{load_image, load_image_u16, probe_image, ImageConfig, ImageInfo, IMAGE_MAX_PIXELS};
pub use limits::Limits;
pub use orient::Orientation;
pub use pixels::Sample;
pub use ranged::ObjectReader;
pub use remote::{FetchStats, ObjectEntry, Store, StoreConfig};
pub use resize::Fit;
pub use shard::{ShardReader, ShardSample};
pub use source::Source;
pub use video::{load_video, sample_frames, stream_video, Video, VideoChunks, VideoConfig, MAX_FRAME_RATE};

/// Reads the metadata of a media source without decoding it.
///
/// ```no_run
/// let info = spdl_io::probe("clip.mp4")?;
/// for s in &info.streams {
///     println!("stream {}: {} {}x{}", s.index, s.codec, s.width, s.height);
/// }
/// # Ok::<(), spdl_io::Error>(())
/// ```
///
/// # Errors
/// As [`Demuxer::open`].
pub fn probe(src: impl Into<Source>) -> Result<MediaInfo> {
    Ok(Demuxer::open(src)?.info())
}

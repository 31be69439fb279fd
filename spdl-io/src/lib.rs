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

// The ground floor: imported by every layer, importing none of them.
mod choice;
mod error;
mod limits;
pub mod memory;
mod orientation;

// The layers: source < ffmpeg < media < audio, image, video < dataset, kind
// (ARCHITECTURE.md; scripts/check_layers.py keeps imports running down).
pub mod audio;
pub mod dataset;
#[allow(unsafe_code)]
mod ffmpeg;
pub mod image;
mod kind;
#[allow(unsafe_code)]
mod libtiff;
pub mod media;
pub mod npy;
pub mod source;
pub mod video;

pub use audio::{load_audio, load_audio_i16, stream_audio, AudioConfig};
pub use error::{Error, FfmpegError, Position, Result};
pub use image::{load_image, load_image_batch, load_image_u16, probe_image, ImageConfig};
pub use kind::{probe_kind, probe_kind_with_limits, MediaKind};
pub use limits::Limits;
pub use media::{probe, MediaInfo, PixelFormat};
pub use orientation::Orientation;
pub use source::{Destination, Source};
pub use video::{load_video, sample_frames, stream_video, VideoConfig};

// Names from before the crate had public modules, kept so code that uses
// them from the root still compiles; new code names them by module.
#[doc(hidden)]
pub use audio::{audio_backend, AudioBackend, AudioBuffer, AudioChunks, AudioSample, ChannelOrder, AUDIO_MAX_SAMPLES};
#[cfg(feature = "remote")]
#[doc(hidden)]
pub use dataset::list_store;
#[doc(hidden)]
pub use dataset::{class_folders, list_dataset, ClassFolders, DatasetItem, ShardReader, ShardSample};
#[doc(hidden)]
pub use image::{BatchConfig, Cancel, FailurePolicy, Fit, ImageBatch, ImageInfo, Sample, IMAGE_MAX_PIXELS};
#[doc(hidden)]
pub use media::{
    CodecParameters, ConvertConfig, Crop, DecodeStatus, DecoderConfig, Demuxer, Frame, Interpolation, Packet,
    PacketWindow, Ratio, SendStatus, StreamInfo, StreamKind, VideoDecoder,
};
#[cfg(feature = "remote")]
#[doc(hidden)]
pub use source::{FetchStats, ObjectEntry, ObjectReader, Store, StoreConfig};
#[doc(hidden)]
pub use video::{Video, VideoChunks, MAX_FRAME_RATE};

//! The media core, above the FFmpeg edge and below the media kinds: a
//! [`Demuxer`](demux::Demuxer) reads packets of one stream, a
//! [`VideoDecoder`](decode::VideoDecoder) turns them into frames, a
//! `FrameReader` pulls frames on demand (windows, seeks, wanted
//! timestamps), and a `FrameConverter` writes them into output arrays
//! (pixel format, colour, crop, resize, rotation). [`time`] holds time
//! bases and windows.
//!
//! `video` and `image` build on this layer; it knows nothing of them.

pub(crate) mod convert;
pub(crate) mod decode;
pub(crate) mod demux;
pub(crate) mod encode;
pub(crate) mod frames;
pub(crate) mod h264_refs;
pub(crate) mod nal;
pub(crate) mod sample_table;
pub(crate) mod time;

pub use convert::{ConvertConfig, Crop, Interpolation, PixelFormat};
pub use decode::{DecodeStatus, DecoderConfig, Device, Frame, SendStatus, VideoDecoder};
pub use demux::{Demuxer, MediaInfo, Packet, PacketWindow, StreamInfo, StreamKind};
pub use time::Ratio;

pub use crate::ffmpeg::stream::CodecParameters;

use crate::error::Result;
use crate::source::Source;

/// Reads the metadata of a media source without decoding it.
///
/// ```no_run
/// let info = spdl_io::probe("clip.mp4")?;
/// for s in &info.streams {
///     println!("stream {}: {} {}x{}", s.index, s.params.codec, s.params.width, s.params.height);
/// }
/// # Ok::<(), spdl_io::Error>(())
/// ```
///
/// # Errors
/// As [`Demuxer::open`].
pub fn probe(src: impl Into<Source>) -> Result<MediaInfo> {
    Ok(Demuxer::open(src)?.info())
}

//! What a source holds: a still image, a video or audio. One answer for
//! every front end (the CLI's `info` and `decode`, Python's `info`), so
//! they never disagree on a file.

use crate::error::{Error, Result};
use crate::image::{probe_image, ImageInfo};
use crate::limits::Limits;
use crate::media::{Demuxer, MediaInfo, StreamKind};
use crate::source::Source;

/// A source's kind and its header.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum MediaKind {
    /// A still image (one frame), as [`probe_image`] reads it.
    Image(ImageInfo),
    /// A container with a video stream (cover art does not count).
    Video(MediaInfo),
    /// A container with audio and no video stream.
    Audio(MediaInfo),
}

/// Tells what `src` holds without decoding it: an image format spdl-io
/// reads is an image, except a JPEG with a second frame (a raw MJPEG
/// stream); anything else is probed as a container.
///
/// ```no_run
/// use spdl_io::{probe_kind, MediaKind};
/// match probe_kind("clip.mp4")? {
///     MediaKind::Image(info) => println!("image {}x{}", info.width, info.height),
///     MediaKind::Video(info) | MediaKind::Audio(info) => println!("{} streams", info.streams.len()),
///     _ => {}
/// }
/// # Ok::<(), spdl_io::Error>(())
/// ```
///
/// # Errors
/// A recognised image that is broken or over the limits gives its own
/// error; otherwise as [`Demuxer::open`], or [`Error::Stream`] for a
/// container with neither video nor audio.
pub fn probe_kind(src: impl Into<Source>) -> Result<MediaKind> {
    probe_kind_with_limits(src, Limits::default())
}

/// [`probe_kind`] with the given limits (for example
/// [`Limits::trusted_input`] to accept any container FFmpeg reads).
///
/// # Errors
/// As [`probe_kind`].
pub fn probe_kind_with_limits(src: impl Into<Source>, limits: Limits) -> Result<MediaKind> {
    let src = src.into();
    match probe_image(src.clone()) {
        Ok(image) if image.format == "jpeg" && has_two_frames(&src) => {}
        Ok(image) => return Ok(MediaKind::Image(image)),
        // Not an image format spdl-io knows: maybe a video or audio file.
        Err(Error::Image { format, .. }) if format == "unknown" => {}
        // Over the limits, or a recognised image that is broken.
        Err(e @ (Error::Limit { .. } | Error::Image { .. })) => return Err(e),
        Err(_) => {}
    }
    let info = Demuxer::open_with_limits(src, limits)?.info();
    let has = |kind| info.streams.iter().any(|s| s.kind == kind && !s.attached_picture);
    match (has(StreamKind::Video), has(StreamKind::Audio)) {
        (true, _) => Ok(MediaKind::Video(info)),
        (false, true) => Ok(MediaKind::Audio(info)),
        (false, false) => Err(Error::Stream {
            src: info.source.clone(),
            reason: "no video or audio stream".into(),
        }),
    }
}

/// Whether FFmpeg reads at least two packets of the video stream.
fn has_two_frames(src: &Source) -> bool {
    let Ok(mut demuxer) = Demuxer::open(src.clone()) else {
        return false;
    };
    let Ok(stream) = demuxer.best_video_stream() else {
        return false;
    };
    (0..2).all(|_| matches!(demuxer.read_packet(stream), Ok(Some(_))))
}

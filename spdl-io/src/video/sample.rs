//! Frames picked by index in one call: [`sample_frames`] opens a
//! [`VideoReader`], which indexes the stream, and reads the frames asked
//! for.

use super::clip::Video;
use super::config::VideoConfig;
use super::reader::VideoReader;
use crate::error::Result;
use crate::source::Source;

/// Decodes only the frames at `indices` (presentation order, counted from
/// the stream's content), in the order given; repeated and backward indices
/// are allowed. Seeks to the keyframe before each run of requested frames
/// and decodes forward, reusing decoded work for nearby indices. The
/// config's time window and frame rate are ignored.
///
/// ```no_run
/// let video = spdl_io::sample_frames("clip.mp4", &[0, 30, 60, 30], &Default::default())?;
/// assert_eq!(video.len(), 4);
/// # Ok::<(), spdl_io::Error>(())
/// ```
///
/// # Errors
/// [`Error::FrameIndex`] for an index past the last frame; otherwise as
/// [`load_video`].
pub fn sample_frames(src: impl Into<Source>, indices: &[usize], config: &VideoConfig) -> Result<Video> {
    sample_frames_by(src, |_| indices.to_vec(), config)
}

/// [`sample_frames`] with the indices picked once the frame count is known:
/// `pick(frames)` returns them (for example [`evenly_spaced`]), so a clip
/// sampler needs no second open of the file.
///
/// ```no_run
/// use spdl_io::video::{evenly_spaced, sample_frames_by};
/// let clip = sample_frames_by("clip.mp4", |frames| evenly_spaced(frames, 8), &Default::default())?;
/// assert_eq!(clip.len(), 8);
/// # Ok::<(), spdl_io::Error>(())
/// ```
///
/// # Errors
/// As [`sample_frames`].
pub fn sample_frames_by(
    src: impl Into<Source>,
    pick: impl FnOnce(usize) -> Vec<usize>,
    config: &VideoConfig,
) -> Result<Video> {
    let mut reader = VideoReader::open(src, config)?;
    let indices = pick(reader.len());
    reader.get_frames_at(&indices)
}

/// `n` frame indices of a video of `frames` frames, one at the middle of
/// each of `n` equal segments (the uniform sampling of TSN-style clip
/// loaders); indices repeat when the video has fewer than `n` frames, and
/// there are none when it has no frame.
///
/// ```
/// use spdl_io::video::evenly_spaced;
/// assert_eq!(evenly_spaced(100, 4), [12, 37, 62, 87]);
/// assert_eq!(evenly_spaced(2, 4), [0, 0, 1, 1]);
/// assert!(evenly_spaced(0, 4).is_empty());
/// ```
pub fn evenly_spaced(frames: usize, n: usize) -> Vec<usize> {
    if frames == 0 {
        return Vec::new();
    }
    (0..n).map(|k| ((2 * k + 1) * frames) / (2 * n)).collect()
}

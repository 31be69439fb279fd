//! The FFmpeg path for images: formats only FFmpeg reads (JPEG 2000, EXR,
//! AVIF, TGA, FITS, MSP...) and variants the other decoders refuse. Probed
//! with the demuxer and decoded through `media` directly (the first frame
//! of the one stream), never through the video API.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::media::convert::{packed_16_bit_samples, ConvertConfig, FrameConverter, PixelFormat};
use crate::media::decode::DecoderConfig;
use crate::media::demux::Demuxer;
use crate::media::frames::FrameReader;
use crate::memory;
use crate::orientation::Orientation;
use crate::source::Source;

/// Whether `data` is an AVIF file (an ISOBMFF `ftyp` box with the `avif`
/// or `avis` brand), which FFmpeg demuxes as MP4 with one AV1 frame.
fn is_avif(data: &[u8]) -> bool {
    data.get(4..8) == Some(b"ftyp") && matches!(data.get(8..12), Some(b"avif" | b"avis"))
}

/// Images in formats only FFmpeg reads (JPEG 2000, EXR, AVIF, ...): probed
/// with the demuxer, accepted only when FFmpeg sees an image format (or the
/// file is AVIF); the first frame is the image.
pub(super) fn ffmpeg_probe(data: &Bytes, name: &str, limits: &Limits) -> Result<(usize, usize, String)> {
    let not_image = |reason: String| Error::image(name, "unknown", reason);
    let demuxer = Demuxer::open_with_limits(Source::from_bytes(data.clone(), name), *limits)
        .map_err(|e| not_image(format!("not a known image format ({e})")))?;
    let info = demuxer.info();
    let avif = is_avif(data);
    let image_demuxer = info.format.ends_with("_pipe") || matches!(info.format.as_str(), "image2" | "fits" | "msp");
    if !(avif || image_demuxer) {
        return Err(not_image(format!(
            "{} is a {} container, not an image",
            name, info.format
        )));
    }
    let s = demuxer.stream_info(demuxer.best_video_stream()?)?;
    if s.params.width == 0 || s.params.height == 0 {
        return Err(not_image(format!(
            "not a known image format (FFmpeg's {} reader finds no picture size)",
            info.format
        )));
    }
    // image2 picks its decoder by the file's extension: the format is
    // the decoder's name (`targa`, `pcx`, ...).
    let format = match info.format.as_str() {
        _ if avif => "avif".to_string(),
        "image2" => s.params.codec.clone(),
        f => f.trim_end_matches("_pipe").to_string(),
    };
    Ok((s.params.width as usize, s.params.height as usize, format))
}

/// A decoded image's samples: 8-bit in the output format, or the
/// decoder's own 16-bit samples (`channels` per pixel: gray, gray + alpha,
/// RGB or RGBA) for the caller to convert.
pub(super) enum FirstFrame {
    Converted(Vec<u8>),
    Wide { samples: Vec<u16>, channels: usize },
}

/// The first frame of `data` as FFmpeg decodes it: its samples, width and
/// height. 16-bit samples stay 16-bit (an image shown as stored); any other
/// frame is converted to `pix_fmt`.
pub(super) fn first_frame(
    data: Bytes,
    name: &str,
    pix_fmt: PixelFormat,
    limits: Limits,
) -> Result<(FirstFrame, usize, usize)> {
    let demuxer = Demuxer::open_with_limits(Source::from_bytes(data, name), limits.with_max_frames(1))?;
    let stream = demuxer.best_video_stream()?;
    let decoder = demuxer.video_decoder(stream, &DecoderConfig::default())?;
    let config = ConvertConfig {
        pix_fmt,
        ..ConvertConfig::default()
    };
    let orientation = demuxer.orientation(stream);
    let mut converter = FrameConverter::new(config, orientation, name).with_full_chroma();
    let mut reader = FrameReader::new(demuxer, decoder, stream);
    let mut frame = reader
        .next_frame()?
        .ok_or_else(|| Error::image(name, "unknown", "FFmpeg decodes no frame"))?;
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    if orientation == Orientation::Normal {
        if let Some((samples, channels)) = packed_16_bit_samples(&frame) {
            let bytes = (samples.len() * 2) as u64;
            Limits::check(name, "output size in bytes", bytes, limits.max_output_bytes)?;
            return Ok((FirstFrame::Wide { samples, channels }, w, h));
        }
    }
    let [h, w, c] = converter.layout(&frame)?.shape;
    Limits::check(
        name,
        "output size in bytes",
        (h * w * c) as u64,
        limits.max_output_bytes,
    )?;
    let mut out =
        memory::zeroed(h * w * c).map_err(|n| Error::image(name, "unknown", format!("cannot allocate {n} bytes")))?;
    converter.convert(&mut frame, &mut out)?;
    Ok((FirstFrame::Converted(out), w, h))
}

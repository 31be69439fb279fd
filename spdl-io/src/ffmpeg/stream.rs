//! Facts about one stream of an opened container, read from FFmpeg's
//! structs: codec parameters, the display matrix (rotation and mirroring),
//! the container's own index (MP4 sample tables), and keyframe seeking.

use std::os::raw::{c_char, c_int};
use std::ptr;

use ff::ffi;
use ffmpeg_next as ff;

use super::c_name;
use crate::orientation::Orientation;

/// Seeks `stream` to the keyframe at or before `ts` (in the stream's time
/// base). Falls back to a backward `av_seek_frame` for demuxers that do not
/// implement `avformat_seek_file` ranges.
pub(crate) fn seek_keyframe_before(
    input: &mut ff::format::context::Input,
    stream: usize,
    ts: i64,
) -> std::result::Result<(), ff::Error> {
    // SAFETY: `input` is an opened context and `stream` one of its indices.
    let rc = unsafe { ffi::avformat_seek_file(input.as_mut_ptr(), stream as c_int, i64::MIN, ts, ts, 0) };
    if rc >= 0 {
        return Ok(());
    }
    // SAFETY: as above.
    let rc = unsafe { ffi::av_seek_frame(input.as_mut_ptr(), stream as c_int, ts, ffi::AVSEEK_FLAG_BACKWARD) };
    if rc >= 0 {
        Ok(())
    } else {
        Err(ff::Error::from(rc))
    }
}

/// The stream's display matrix, if it has one.
fn display_matrix(input: &ff::format::context::Input, stream: usize) -> Option<[i32; 9]> {
    let st = input.stream(stream)?;
    let mut size = 0usize;
    // SAFETY: the stream pointer is valid while `input` is borrowed; the
    // returned side data is owned by the stream.
    let data = unsafe {
        ffi::av_stream_get_side_data(
            st.as_ptr(),
            ffi::AVPacketSideDataType::AV_PKT_DATA_DISPLAYMATRIX,
            &mut size,
        )
    };
    if data.is_null() || size < 9 * std::mem::size_of::<i32>() {
        return None;
    }
    // SAFETY: the side data holds a 3x3 i32 display matrix (checked size);
    // it may not be aligned for i32, hence the unaligned read.
    Some(unsafe { ptr::read_unaligned(data as *const [i32; 9]) })
}

/// The clockwise angle in degrees the matrix asks the player to turn by,
/// as the `ffmpeg` CLI computes it (`get_rotation`): whole degrees, in
/// [-0.9, 359.1).
fn clockwise_degrees(matrix: &[i32; 9]) -> Option<f64> {
    // SAFETY: `matrix` is a 3x3 display matrix, as the function expects.
    let ccw = unsafe { ffi::av_display_rotation_get(matrix.as_ptr()) };
    let theta = -ccw.round();
    theta
        .is_finite()
        .then(|| theta - 360.0 * (theta / 360.0 + 0.9 / 360.0).floor())
}

/// The clockwise rotation (0, 90, 180 or 270 degrees) that the stream's
/// display matrix asks for; 0 for an angle more than 1 degree from a right
/// angle, which [`stream_orientation`] does not apply either.
pub(crate) fn stream_rotation(input: &ff::format::context::Input, stream: usize) -> u32 {
    let Some(cw) = display_matrix(input, stream).as_ref().and_then(clockwise_degrees) else {
        return 0;
    };
    let quarter = (cw / 90.0).round();
    match (cw - 90.0 * quarter).abs() < 1.0 {
        true => (quarter.rem_euclid(4.0) as u32) * 90,
        false => 0,
    }
}

/// How to turn decoded frames for display, as the `ffmpeg` CLI's
/// autorotation does: right-angle rotations with the mirroring the matrix
/// adds (a transpose for a mirrored 90 degrees, a flip for a mirrored
/// 0 or 180). Other angles are not applied (the CLI rotates by them and
/// fills the corners with black).
pub(crate) fn stream_orientation(input: &ff::format::context::Input, stream: usize) -> Orientation {
    let Some(m) = display_matrix(input, stream) else {
        return Orientation::Normal;
    };
    let Some(theta) = clockwise_degrees(&m) else {
        return Orientation::Normal;
    };
    let near = |angle: f64| (theta - angle).abs() < 1.0;
    if near(90.0) {
        return if m[3] > 0 {
            Orientation::Transpose
        } else {
            Orientation::Rotate90
        };
    }
    if near(270.0) {
        return if m[3] < 0 {
            Orientation::Transverse
        } else {
            Orientation::Rotate270
        };
    }
    match (near(180.0), near(0.0), m[0] < 0, m[4] < 0) {
        (true, _, true, true) => Orientation::Rotate180,
        (true, _, true, false) => Orientation::FlipHorizontal,
        (true, _, false, true) | (_, true, _, true) => Orientation::FlipVertical,
        _ => Orientation::Normal,
    }
}

/// What a stream's codec headers declare (FFmpeg's `AVCodecParameters`):
/// the codec, the picture's size and formats for video, the rate, channels
/// and formats for audio. Header values can lie; decoding finds the truth.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct CodecParameters {
    /// Codec name (FFmpeg's short name, e.g. `h264`).
    pub codec: String,
    /// Coded width (video).
    pub width: u32,
    /// Coded height (video).
    pub height: u32,
    /// Pixel format (video).
    pub pix_fmt: Option<String>,
    /// Colour matrix (video), e.g. `bt709`.
    pub color_space: Option<String>,
    /// Colour range (video): `tv` (limited) or `pc` (full).
    pub color_range: Option<String>,
    /// Colour primaries (video).
    pub color_primaries: Option<String>,
    /// Transfer characteristic (video).
    pub color_transfer: Option<String>,
    /// Sample rate in Hz (audio).
    pub sample_rate: u32,
    /// Channel count (audio).
    pub channels: u32,
    /// Channel layout (audio), e.g. `stereo` or `5.1`.
    pub channel_layout: Option<String>,
    /// Sample format (audio), e.g. `fltp`.
    pub sample_fmt: Option<String>,
    /// Declared bit rate in bits/s (0 if unknown).
    pub bit_rate: i64,
}

/// Reads the codec parameters of `stream`.
pub(crate) fn codec_params(stream: &ff::format::stream::Stream) -> CodecParameters {
    let params = stream.parameters();
    // SAFETY: the parameters belong to a live stream; every name function
    // accepts any enum value and returns null for unknown ones; formats are
    // range-checked before being turned into enums.
    unsafe {
        let p = &*params.as_ptr();
        let is_video = p.codec_type == ffi::AVMediaType::AVMEDIA_TYPE_VIDEO;
        let is_audio = p.codec_type == ffi::AVMediaType::AVMEDIA_TYPE_AUDIO;
        let mut layout = [0 as c_char; 128];
        let layout_len = if is_audio {
            ffi::av_channel_layout_describe(&p.ch_layout, layout.as_mut_ptr(), layout.len())
        } else {
            -1
        };
        CodecParameters {
            codec: c_name(ffi::avcodec_get_name(p.codec_id)).unwrap_or_default(),
            width: p.width.max(0) as u32,
            height: p.height.max(0) as u32,
            pix_fmt: if is_video && (0..ffi::AVPixelFormat::AV_PIX_FMT_NB as c_int).contains(&p.format) {
                c_name(ffi::av_get_pix_fmt_name(
                    std::mem::transmute::<c_int, ffi::AVPixelFormat>(p.format),
                ))
            } else {
                None
            },
            color_space: is_video
                .then(|| c_name(ffi::av_color_space_name(p.color_space)))
                .flatten(),
            color_range: is_video
                .then(|| c_name(ffi::av_color_range_name(p.color_range)))
                .flatten(),
            color_primaries: is_video
                .then(|| c_name(ffi::av_color_primaries_name(p.color_primaries)))
                .flatten(),
            color_transfer: is_video
                .then(|| c_name(ffi::av_color_transfer_name(p.color_trc)))
                .flatten(),
            sample_rate: p.sample_rate.max(0) as u32,
            channels: if is_audio {
                p.ch_layout.nb_channels.max(0) as u32
            } else {
                0
            },
            channel_layout: (layout_len > 0).then(|| c_name(layout.as_ptr())).flatten(),
            sample_fmt: if is_audio && (0..ffi::AVSampleFormat::AV_SAMPLE_FMT_NB as c_int).contains(&p.format) {
                c_name(ffi::av_get_sample_fmt_name(std::mem::transmute::<
                    c_int,
                    ffi::AVSampleFormat,
                >(p.format)))
            } else {
                None
            },
            bit_rate: p.bit_rate,
        }
    }
}

/// The codec's extradata (for H.264/HEVC in MP4: the `avcC`/`hvcC` box;
/// in Annex B streams: parameter sets), empty when there is none.
pub(crate) fn extradata(stream: &ff::format::stream::Stream) -> Vec<u8> {
    let params = stream.parameters();
    // SAFETY: the parameters belong to a live stream; FFmpeg keeps
    // `extradata_size` bytes at `extradata` when it is not null.
    unsafe {
        let p = &*params.as_ptr();
        match usize::try_from(p.extradata_size) {
            Ok(n) if n > 0 && !p.extradata.is_null() => std::slice::from_raw_parts(p.extradata, n).to_vec(),
            _ => Vec::new(),
        }
    }
}

/// One entry of a container's own index of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    /// The entry's timestamp: for MP4/MOV the sample's decode time.
    pub(crate) timestamp: i64,
    /// Whether the sample is a keyframe.
    pub(crate) key: bool,
    /// Whether the container marks it decoded but not shown (edit lists).
    pub(crate) discard: bool,
    /// Where the sample's bytes end in the file (offset plus size).
    pub(crate) end: i64,
}

/// The container's own index of a stream (for MP4/MOV: the sample table
/// read from the `moov` box, so no packet has to be read), in the index's
/// order, and the stream's container id (an MP4 track id); empty for
/// demuxers without one.
pub(crate) fn container_index(input: &ff::format::context::Input, stream: usize) -> (Vec<IndexEntry>, i32) {
    let Some(st) = input.stream(stream) else {
        return (Vec::new(), 0);
    };
    let id = st.id();
    // SAFETY: `st` is a stream of the open context `input`, which outlives
    // this call; the entries returned are read before anything else touches
    // the context, as the API requires.
    unsafe {
        let st = st.as_ptr() as *mut ffi::AVStream;
        let count = ffi::avformat_index_get_entries_count(st);
        // Grown as read: the count comes from the file.
        let mut entries = Vec::new();
        for i in 0..count {
            let e = ffi::avformat_index_get_entry(st, i);
            if e.is_null() {
                continue;
            }
            entries.push(IndexEntry {
                timestamp: (*e).timestamp,
                key: (*e).flags() & ffi::AVINDEX_KEYFRAME != 0,
                discard: (*e).flags() & ffi::AVINDEX_DISCARD_FRAME != 0,
                end: (*e).pos.saturating_add(i64::from((*e).size())),
            });
        }
        (entries, id)
    }
}

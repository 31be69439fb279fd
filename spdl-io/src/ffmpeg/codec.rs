//! Decoder settings and raw packet/frame fields that ffmpeg-next does not
//! expose: thread count and type, skipping frames, the
//! packet flags it drops, a frame's best-effort timestamp, and NVDEC
//! hardware decoding (a CUDA device attached to a decoder, its frames
//! downloaded to host memory).

#[cfg(feature = "cuda")]
use std::ffi::CString;
use std::os::raw::c_int;
#[cfg(feature = "cuda")]
use std::ptr;

use ff::ffi;
use ffmpeg_next as ff;

/// A packet's raw `AV_PKT_FLAG_*` bits (ffmpeg-next's `flags()` keeps only
/// the key and corrupt bits, dropping `AV_PKT_FLAG_DISCARD`).
pub(crate) fn packet_flags(packet: &ff::Packet) -> c_int {
    use ff::packet::Ref;
    // SAFETY: reading a plain field of a packet we borrow.
    unsafe { (*packet.as_ptr()).flags }
}

/// Sets the timestamp a decoded frame reports (its best-effort pts).
pub(crate) fn set_best_effort_timestamp(frame: &mut ff::Frame, pts: i64) {
    // SAFETY: writing a plain field of a frame we own.
    unsafe { (*frame.as_mut_ptr()).best_effort_timestamp = pts };
}

/// Sets the decoder's thread count (0 lets FFmpeg pick one per core) and
/// allows both frame and slice threading, as the `ffmpeg` CLI does, except
/// where frame threading is known to abort the process: FFmpeg 5.1's WebP
/// decoder, given a lossy image whose alpha plane is corrupt, reports a
/// frame without pixels and trips an assertion in `decode.c` ("frame->buf[0]",
/// the `ffmpeg` CLI with `-threads 2` aborts the same way; fuzz regression
/// `webp_alpha_seed2_259.webp`). WebP has no slice threading, so it decodes
/// on one thread.
pub(crate) fn set_decoder_threads(ctx: &mut ff::codec::Context, threads: usize) {
    let kinds = match ctx.id() {
        ff::codec::Id::WEBP => ffi::FF_THREAD_SLICE,
        _ => ffi::FF_THREAD_FRAME | ffi::FF_THREAD_SLICE,
    };
    // SAFETY: the codec context is not opened yet; these fields are plain
    // integers that avcodec_open2 reads.
    unsafe {
        let c = ctx.as_mut_ptr();
        (*c).thread_count = threads.min(64) as c_int;
        (*c).thread_type = kinds as c_int;
    }
}

/// Sets which frames the decoder skips (`skip_frame`): FFmpeg still
/// parses a skipped picture and keeps it in its reference buffer, without
/// decoding its pixels.
pub(crate) fn set_skip_frame(decoder: &mut ff::decoder::Video, discard: ff::codec::discard::Discard) {
    // SAFETY: `skip_frame` is a plain field that the decoder reads for each
    // packet (frame threads copy it at submission); the context is open and
    // owned by `decoder`.
    unsafe { (*decoder.as_mut_ptr()).skip_frame = discard.into() };
}

/// Turns FFmpeg's error concealment off (`0`) or back to `flags` for the
/// next packet; returns the flags it had. A single-thread decoder reads
/// them when each picture ends.
pub(crate) fn swap_error_concealment(decoder: &mut ff::decoder::Video, flags: c_int) -> c_int {
    // SAFETY: `error_concealment` is a plain integer field of the open
    // context owned by `decoder`.
    unsafe { std::mem::replace(&mut (*decoder.as_mut_ptr()).error_concealment, flags) }
}

/// Whether the open decoder decodes on the calling thread only (no frame
/// or slice threads).
pub(crate) fn is_single_threaded(decoder: &ff::decoder::Video) -> bool {
    // SAFETY: reading a plain field of the open context we borrow.
    unsafe { (*decoder.as_ptr()).active_thread_type == 0 }
}

/// Attaches CUDA device `index` to a decoder context that is not open
/// yet: FFmpeg's NVDEC hwaccel then decodes into GPU memory
/// (`AV_PIX_FMT_CUDA` frames, see [`download_hw_frame`]) where it supports
/// the stream, and the software decoder runs otherwise. FFmpeg loads the
/// driver (`libcuda.so.1`, `libnvcuvid.so.1`) at run time.
///
/// # Errors
/// Why the device cannot be opened (no driver, no such device).
#[cfg(feature = "cuda")]
pub(crate) fn attach_cuda(ctx: &mut ff::codec::Context, index: u32) -> Result<(), String> {
    let name = CString::new(index.to_string()).expect("digits only");
    let mut device: *mut ffi::AVBufferRef = ptr::null_mut();
    super::log::clear_logged_error();
    // SAFETY: av_hwdevice_ctx_create writes a new reference (or nothing)
    // through `device`; `name` is a NUL-terminated string it only reads.
    let rc = unsafe {
        ffi::av_hwdevice_ctx_create(
            &mut device,
            ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_CUDA,
            name.as_ptr(),
            ptr::null_mut(),
            0,
        )
    };
    if rc < 0 || device.is_null() {
        return Err(super::log::logged_error(format!(
            "CUDA device {index} cannot be opened: {}",
            ff::Error::from(rc)
        )));
    }
    // SAFETY: the context is not opened; it takes over our reference to
    // the device (avcodec_free_context unreferences it) and calls
    // `prefer_cuda` from its decoding thread with a list it owns.
    unsafe {
        let c = ctx.as_mut_ptr();
        (*c).hw_device_ctx = device;
        (*c).get_format = Some(prefer_cuda);
    }
    Ok(())
}

/// The decoder's format negotiation: CUDA frames when the hwaccel offers
/// them, else FFmpeg's default choice (a software format).
#[cfg(feature = "cuda")]
unsafe extern "C" fn prefer_cuda(
    ctx: *mut ffi::AVCodecContext,
    formats: *const ffi::AVPixelFormat,
) -> ffi::AVPixelFormat {
    let mut at = formats;
    // SAFETY: FFmpeg passes a list ended by AV_PIX_FMT_NONE.
    unsafe {
        while *at != ffi::AVPixelFormat::AV_PIX_FMT_NONE {
            if *at == ffi::AVPixelFormat::AV_PIX_FMT_CUDA {
                return *at;
            }
            at = at.add(1);
        }
        ffi::avcodec_default_get_format(ctx, formats)
    }
}

/// Whether `frame` lives in GPU memory.
pub(crate) fn is_hw_frame(frame: &ff::frame::Video) -> bool {
    // SAFETY: reading a plain field of a frame we borrow.
    unsafe { (*frame.as_ptr()).format == ffi::AVPixelFormat::AV_PIX_FMT_CUDA as c_int }
}

/// Replaces a GPU frame by its copy in host memory (NV12, P010, ...: the
/// device's software format), timestamps and properties kept.
///
/// # Errors
/// FFmpeg's reason when the download fails.
pub(crate) fn download_hw_frame(frame: &mut ff::frame::Video) -> Result<(), String> {
    let mut host = ff::frame::Video::empty();
    // SAFETY: `host` is an empty frame that av_hwframe_transfer_data
    // allocates and fills from the hardware frame we borrow; props are
    // copied between two valid frames.
    let rc = unsafe {
        let rc = ffi::av_hwframe_transfer_data(host.as_mut_ptr(), frame.as_ptr(), 0);
        if rc >= 0 {
            ffi::av_frame_copy_props(host.as_mut_ptr(), frame.as_ptr())
        } else {
            rc
        }
    };
    if rc < 0 {
        return Err(format!("copying a frame from the GPU failed: {}", ff::Error::from(rc)));
    }
    *frame = host;
    Ok(())
}

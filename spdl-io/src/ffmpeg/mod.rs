//! The FFI edge: every FFmpeg call that needs `unsafe` lives under this
//! module, split by concern. It knows FFmpeg and the byte readers and
//! sinks of [`crate::source`], nothing above them (no `Source`, no store):
//!
//! - [`log`]: FFmpeg's log routed to `tracing`, and the last error it
//!   logged on this thread (added to error messages);
//! - [`input`]: opening a container over a [`RandomRead`](crate::source::read::RandomRead)
//!   through a custom AVIO context (or FFmpeg's own file reader for pipes,
//!   devices and playlists), with a protocol whitelist;
//! - [`output`]: a muxer writing into a [`ByteSink`](crate::source::sink::ByteSink)
//!   through a custom AVIO context;
//! - [`stream`]: per-stream facts (codec parameters, display matrix,
//!   container index) and keyframe seeking;
//! - [`codec`]: decoder settings and raw packet/frame fields;
//! - [`scale`]: crop and swscale straight into caller memory;
//! - [`filter`]: libavfilter graphs for the `filter_desc` escape hatch;
//! - [`resample`]: swresample to f32 and channel layouts.
//!
//! Every type here that owns an FFmpeg context frees it in `Drop`; where
//! two contexts depend on each other the owning struct's field order says
//! which is freed first.

pub(crate) mod codec;
pub(crate) mod filter;
pub(crate) mod input;
pub(crate) mod log;
pub(crate) mod output;
pub(crate) mod resample;
pub(crate) mod scale;
pub(crate) mod stream;

use std::ffi::CStr;
use std::os::raw::c_char;
use std::sync::Once;

use ff::ffi;
use ffmpeg_next as ff;

use crate::error::FfmpegError;

/// Initialises FFmpeg once per process and routes its log to `tracing`.
pub(crate) fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // Registers error strings; cannot fail on FFmpeg >= 4.
        let _ = ff::init();
        // SAFETY: setting the log level and callback is allowed at any time;
        // the callback below is a plain `extern "C"` function that lives for
        // the whole program.
        unsafe {
            ffi::av_log_set_level(ffi::AV_LOG_WARNING);
            ffi::av_log_set_callback(Some(log::log_to_tracing));
        }
    });
}

/// An FFmpeg error as a message. Decoders sometimes return private codes
/// (AC-3's header errors, say) that `av_strerror` knows nothing of: those
/// read as rejected data with the code, not as "Unknown error N".
pub(crate) fn describe(e: ff::Error) -> String {
    match e.to_string() {
        s if s.starts_with("Unknown error") => {
            format!("the data was rejected (FFmpeg error code {})", i32::from(e))
        }
        s => s,
    }
}

/// An FFmpeg error as the cause an [`Error`](crate::error::Error) keeps.
pub(crate) fn cause(e: ff::Error) -> FfmpegError {
    FfmpegError::new(i32::from(e), e.to_string())
}

/// Adds a hint to a demuxer read error: an I/O error in the middle of a
/// file usually means the file ends early.
pub(crate) fn describe_read(e: ff::Error) -> String {
    match e {
        ff::Error::Other { errno } if errno == libc::EIO => format!("{} (the file may be truncated)", describe(e)),
        e => describe(e),
    }
}

/// A C string owned by FFmpeg (static name tables) as an owned `String`.
pub(crate) fn c_name(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: FFmpeg's name functions return NUL-terminated static strings.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

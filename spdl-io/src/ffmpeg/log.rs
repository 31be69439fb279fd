//! FFmpeg's log, routed to `tracing` (target `ffmpeg`), and the last
//! error it logged on each thread, so that a failed call's error message
//! can say what FFmpeg said (its return codes alone are often vague).

use std::cell::RefCell;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};

use ff::ffi;
use ffmpeg_next as ff;

/// Formats one FFmpeg log line and emits it as a `tracing` event.
pub(super) unsafe extern "C" fn log_to_tracing(
    avcl: *mut c_void,
    level: c_int,
    fmt: *const c_char,
    vl: *mut ffi::__va_list_tag,
) {
    // SAFETY: reading the global log level has no preconditions.
    if level > unsafe { ffi::av_log_get_level() } {
        return;
    }
    let mut line = [0 as c_char; 1024];
    let mut print_prefix: c_int = 1;
    // SAFETY: FFmpeg hands us a valid format string and va_list for this
    // call; `line` is a writable buffer of the size we pass.
    let written = unsafe {
        ffi::av_log_format_line2(
            avcl,
            level,
            fmt,
            vl,
            line.as_mut_ptr(),
            line.len() as c_int,
            &mut print_prefix,
        )
    };
    if written < 0 {
        return;
    }
    // SAFETY: av_log_format_line2 always NUL-terminates within the buffer.
    let text = unsafe { CStr::from_ptr(line.as_ptr()) }.to_string_lossy();
    let text = text.trim_end();
    match level {
        l if l <= ffi::AV_LOG_ERROR => {
            LOGGED_ERROR.with(|e| *e.borrow_mut() = Some(without_address(text)));
            tracing::error!(target: "ffmpeg", "{text}")
        }
        l if l <= ffi::AV_LOG_WARNING => tracing::warn!(target: "ffmpeg", "{text}"),
        l if l <= ffi::AV_LOG_INFO => tracing::info!(target: "ffmpeg", "{text}"),
        _ => tracing::debug!(target: "ffmpeg", "{text}"),
    }
}

thread_local! {
    /// The last error FFmpeg logged on this thread since
    /// [`clear_logged_error`]: its return codes alone are often vague
    /// ("Invalid argument" for a picture size it refuses).
    static LOGGED_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Forgets the error FFmpeg last logged on this thread; call before the
/// FFmpeg call whose failure [`logged_error`] should explain.
pub(crate) fn clear_logged_error() {
    LOGGED_ERROR.with(|e| e.borrow_mut().take());
}

/// `reason` followed by what FFmpeg logged on this thread since
/// [`clear_logged_error`], if anything.
pub(crate) fn logged_error(reason: String) -> String {
    match LOGGED_ERROR.with(|e| e.borrow_mut().take()) {
        Some(logged) => format!("{reason} (FFmpeg: {logged})"),
        None => reason,
    }
}

/// A log line without the context's address: `[h264 @ 0x5581...] text`
/// becomes `[h264] text`.
fn without_address(line: &str) -> String {
    match (line.strip_prefix('['), line.find(" @ 0x"), line.find("] ")) {
        (Some(_), Some(at), Some(end)) if at < end => format!("{}{}", &line[..at], &line[end..]),
        _ => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_address;

    #[test]
    fn log_lines_lose_the_context_address_only() {
        assert_eq!(without_address("[h264 @ 0x55d0c0a1] no frame!"), "[h264] no frame!");
        assert_eq!(
            without_address("[mov,mp4 @ 0x1] moov atom not found"),
            "[mov,mp4] moov atom not found"
        );
        for kept in ["no prefix @ 0x1] here", "[h264] no address", "[a] b @ 0x1] c"] {
            assert_eq!(without_address(kept), kept);
        }
    }
}

//! The crate's one error type: every variant names the source (a path, a
//! URL, or the caller-given name of an in-memory buffer) and what failed.

use std::fmt;

/// Where in a stream a failure happened.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Position {
    /// No position is known (for example, the failure came at open time).
    Unknown,
    /// A presentation timestamp, in seconds.
    Pts(f64),
    /// A frame index in presentation order.
    Frame(usize),
    /// The end of the stream (while draining the decoder).
    EndOfStream,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Unknown => write!(f, "unknown position"),
            Position::Pts(t) => write!(f, "pts {t:.6}s"),
            Position::Frame(i) => write!(f, "frame {i}"),
            Position::EndOfStream => write!(f, "end of stream"),
        }
    }
}

/// A status an FFmpeg call returned: the cause kept by [`Error::Open`],
/// [`Error::Demux`] and [`Error::Decode`] (their `reason` adds what FFmpeg
/// logged and where).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FfmpegError {
    code: i32,
    message: String,
}

impl FfmpegError {
    /// Made by the FFmpeg layer from a status and FFmpeg's text for it.
    pub(crate) fn new(code: i32, message: String) -> Self {
        FfmpegError { code, message }
    }

    /// FFmpeg's status code (a negative `AVERROR` value, such as
    /// `AVERROR_INVALIDDATA` or `AVERROR(EIO)`).
    pub fn code(&self) -> i32 {
        self.code
    }
}

/// Everything that can go wrong in spdl-io.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The source does not exist.
    #[error("{src}: no such file")]
    NotFound {
        /// The path that was not found.
        src: String,
    },
    /// The source exists but could not be read or opened as media.
    #[error("{src}: cannot open as media: {reason}")]
    Open {
        /// The source name.
        src: String,
        /// What FFmpeg or the OS reported.
        reason: String,
        /// The status FFmpeg returned, when an FFmpeg call failed.
        #[source]
        cause: Option<FfmpegError>,
    },
    /// The media has no stream of the requested kind, or the index is wrong.
    #[error("{src}: {reason}")]
    Stream {
        /// The source name.
        src: String,
        /// Which stream was asked for and what exists.
        reason: String,
    },
    /// Reading packets from the container failed.
    #[error("{src}: stream {stream}: demuxing failed at {at}: {reason}")]
    Demux {
        /// The source name.
        src: String,
        /// The stream index.
        stream: usize,
        /// Where it failed.
        at: Position,
        /// What FFmpeg reported.
        reason: String,
        /// The status FFmpeg returned, when an FFmpeg call failed.
        #[source]
        cause: Option<FfmpegError>,
    },
    /// The decoder rejected the stream or a packet.
    #[error("{src}: stream {stream}: decoding failed at {at}: {reason}")]
    Decode {
        /// The source name.
        src: String,
        /// The stream index.
        stream: usize,
        /// Where it failed.
        at: Position,
        /// What FFmpeg reported.
        reason: String,
        /// The status FFmpeg returned, when an FFmpeg call failed.
        #[source]
        cause: Option<FfmpegError>,
    },
    /// An image could not be decoded (or is not an image).
    #[error("{src}: cannot decode {format} image: {reason}")]
    Image {
        /// The source name.
        src: String,
        /// The format detected from the first bytes (or "unknown").
        format: String,
        /// What the decoder reported.
        reason: String,
    },
    /// Pixel-format conversion, resizing or rotation failed.
    #[error("{src}: converting frames failed: {reason}")]
    Convert {
        /// The source name.
        src: String,
        /// What failed.
        reason: String,
    },
    /// Encoding or muxing media being written failed.
    #[error("{src}: encoding failed: {reason}")]
    Encode {
        /// The destination name.
        src: String,
        /// What failed.
        reason: String,
    },
    /// A declared or actual size is over a configured [`Limits`](crate::Limits) value.
    #[error("{src}: {what} is {value}, over the limit of {limit} (raise it in Limits if this input is trusted)")]
    Limit {
        /// The source name.
        src: String,
        /// What was measured (for example "pixels per frame").
        what: &'static str,
        /// The value found.
        value: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A requested frame index is not in the video.
    #[error("{src}: frame index {index} is out of range: the stream has {frames} frames")]
    FrameIndex {
        /// The source name.
        src: String,
        /// The index asked for.
        index: usize,
        /// The number of frames found in the stream's content.
        frames: usize,
    },
    /// A NumPy `.npy`/`.npz` file could not be read.
    #[error("{src}: cannot read NumPy array: {reason}")]
    Array {
        /// The source name (for an `.npz` member, `archive!member`).
        src: String,
        /// What failed.
        reason: String,
    },
    /// A requested time is outside the video's frames.
    #[error("{src}: no frame is shown at {seconds} s: the stream's frames cover {start} s to {end} s")]
    FrameTime {
        /// The source name.
        src: String,
        /// The time asked for, in seconds.
        seconds: f64,
        /// The first frame's time.
        start: f64,
        /// The end of the last frame.
        end: f64,
    },
    /// A tar shard could not be read; the samples before this one were
    /// delivered.
    #[error("{src}: shard member {member}: {reason}")]
    Shard {
        /// The shard path or URL.
        src: String,
        /// The member (or the last member read) where it failed.
        member: String,
        /// What failed.
        reason: String,
    },
    /// Reading a local source failed (anything but "not found": a
    /// permission, a directory, an I/O error).
    #[error("{src}: cannot read: {source}")]
    Io {
        /// The path.
        src: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Writing to a destination (a file, object storage) failed.
    #[error("{src}: cannot write: {}", chain(.source.as_ref()))]
    Write {
        /// The path or URL written to.
        src: String,
        /// The operating system's or the store's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Fetching from object storage failed after the configured retries.
    #[error("{src}: fetch failed: {}", chain(.source.as_ref()))]
    Remote {
        /// The URL.
        src: String,
        /// What the store reported (HTTP status, timeout, connection
        /// error), with its own causes.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A configuration value is invalid (independent of any source).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The caller cancelled the work (see [`Cancel`](crate::image::Cancel)).
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// An image that could not be decoded, `format` as detected.
    pub(crate) fn image(src: &str, format: &str, reason: impl ToString) -> Error {
        Error::Image {
            src: src.into(),
            format: format.into(),
            reason: reason.to_string(),
        }
    }

    /// [`Error::Write`] to `src`.
    pub(crate) fn write(src: &str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        Error::Write {
            src: src.into(),
            source: source.into(),
        }
    }

    /// A file-system error on `src`: [`Error::NotFound`] or [`Error::Io`].
    pub(crate) fn io(src: &str, source: std::io::Error) -> Error {
        match source.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound { src: src.into() },
            _ => Error::Io {
                src: src.into(),
                source,
            },
        }
    }
}

/// Runs `f`, catching a panic inside it (an assertion in a third-party
/// decoder, on input it did not expect) as `Err` with the panic's message,
/// so that the caller can turn it into an error naming the source, or try
/// another decoder. Panics are bugs, ours included: this is the boundary
/// that keeps one bad file from taking the process down.
///
/// A caught panic is logged through `tracing` (a warning with where it
/// happened) instead of the default hook's message and backtrace on
/// stderr: the process wraps the panic hook it had once, on first use,
/// and defers to it for every panic outside this function.
pub(crate) fn catch_panic<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    install_quiet_hook();
    let outer = CATCHING.with(|c| c.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(outer));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into())
    })
}

thread_local! {
    /// Whether this thread is inside [`catch_panic`].
    static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Wraps the process's panic hook (once) so that panics [`catch_panic`]
/// catches are logged, not printed.
fn install_quiet_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| match CATCHING.with(|c| c.get()) {
            true => tracing::warn!(target: "spdl_io", "caught a panic: {info}"),
            false => previous(info),
        }));
    });
}

/// An error and its causes on one line, each cause said once (stores nest
/// the same text at several levels).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        cause = c.source();
    }
    text
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn io_and_remote_errors_keep_their_cause() {
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let err = Error::io("a.jpg", denied);
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        let cause = err.source().expect("the io::Error");
        assert_eq!(
            cause.downcast_ref::<std::io::Error>().map(std::io::Error::kind),
            Some(std::io::ErrorKind::PermissionDenied)
        );
        let missing = Error::io("b.jpg", std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(matches!(missing, Error::NotFound { .. }));

        let inner = std::io::Error::other("connection reset");
        let outer = Error::Io {
            src: "proxy".into(),
            source: inner,
        };
        let err = Error::Remote {
            src: "s3://b/k".into(),
            source: Box::new(outer),
        };
        assert_eq!(
            err.to_string(),
            "s3://b/k: fetch failed: proxy: cannot read: connection reset"
        );
        assert!(err.source().and_then(|e| e.source()).is_some(), "the chain is kept");
    }
}

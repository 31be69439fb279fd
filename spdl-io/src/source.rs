//! Where media comes from: a file path or bytes already in memory.

use std::path::{Path, PathBuf};

use bytes::Bytes;

/// A media source: a path on the local file system, or an in-memory buffer
/// with a name used in error messages.
///
/// ```
/// use spdl_io::Source;
/// let from_path = Source::from("clip.mp4");
/// let from_memory = Source::from_bytes(vec![0u8; 4], "shard-7/clip.mp4");
/// assert_eq!(from_path.name(), "clip.mp4");
/// assert_eq!(from_memory.name(), "shard-7/clip.mp4");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Source {
    /// A file on the local file system.
    Path(PathBuf),
    /// Bytes in memory, demuxed through a custom I/O context (no temp file).
    Bytes {
        /// The encoded media.
        data: Bytes,
        /// A name for messages (for example the URL the bytes came from).
        name: String,
    },
}

impl Source {
    /// An in-memory source named `name` in messages.
    pub fn from_bytes(data: impl Into<Bytes>, name: impl Into<String>) -> Self {
        Source::Bytes {
            data: data.into(),
            name: name.into(),
        }
    }

    /// The name used in error messages and logs.
    pub fn name(&self) -> String {
        match self {
            Source::Path(p) => p.display().to_string(),
            Source::Bytes { name, .. } => name.clone(),
        }
    }
}

impl From<&str> for Source {
    fn from(p: &str) -> Self {
        Source::Path(PathBuf::from(p))
    }
}

impl From<String> for Source {
    fn from(p: String) -> Self {
        Source::Path(PathBuf::from(p))
    }
}

impl From<&Path> for Source {
    fn from(p: &Path) -> Self {
        Source::Path(p.to_path_buf())
    }
}

impl From<PathBuf> for Source {
    fn from(p: PathBuf) -> Self {
        Source::Path(p)
    }
}

impl From<&PathBuf> for Source {
    fn from(p: &PathBuf) -> Self {
        Source::Path(p.clone())
    }
}

impl From<Bytes> for Source {
    fn from(data: Bytes) -> Self {
        Source::from_bytes(data, "<bytes>")
    }
}

impl From<Vec<u8>> for Source {
    fn from(data: Vec<u8>) -> Self {
        Source::from_bytes(data, "<bytes>")
    }
}

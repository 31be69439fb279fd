//! Where media comes from: a file path, bytes already in memory, or an
//! object-storage URL.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::remote::Store;

/// A media source: a path on the local file system, an in-memory buffer
/// with a name used in error messages, or a URL in object storage.
///
/// Strings with a scheme (`s3://`, `gs://`, `az://`, `http(s)://`) become
/// [`Source::Remote`] read through the shared default [`Store`] for that
/// bucket or host; `file://` URLs and plain strings are paths.
///
/// ```
/// use spdl_io::Source;
/// let from_path = Source::from("clip.mp4");
/// let from_memory = Source::from_bytes(vec![0u8; 4], "shard-7/clip.mp4");
/// let from_s3 = Source::from("s3://bucket/train/clip.mp4");
/// assert_eq!(from_path.name(), "clip.mp4");
/// assert_eq!(from_memory.name(), "shard-7/clip.mp4");
/// assert!(matches!(from_s3, Source::Remote { .. }));
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
    /// An object in storage. Images and audio are fetched whole; video is
    /// demuxed over ranged reads, so sampling a few frames of a large file
    /// fetches only the parts it needs.
    Remote {
        /// The object's URL.
        url: String,
        /// The store to read it through; `None`: the default store for the
        /// URL ([`Store::for_url`]).
        store: Option<Store>,
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
            Source::Remote { url, .. } => url.clone(),
        }
    }

    /// The store and URL of a remote source.
    pub(crate) fn remote(url: &str, store: Option<&Store>) -> Result<Store> {
        store.map_or_else(|| Store::for_url(url), |s| Ok(s.clone()))
    }

    /// Reads the whole source into memory (a remote object is fetched in
    /// one request), checking its size against `limits`.
    pub(crate) fn read_all(&self, limits: &Limits) -> Result<Bytes> {
        let name = self.name();
        let check = |len: u64| Limits::check(&name, "input size in bytes", len, limits.max_input_bytes);
        match self {
            Source::Path(path) => {
                let io = |e: std::io::Error| io_error(&name, e);
                check(std::fs::metadata(path).map_err(io)?.len())?;
                Ok(Bytes::from(std::fs::read(path).map_err(io)?))
            }
            Source::Bytes { data, .. } => {
                check(data.len() as u64)?;
                Ok(data.clone())
            }
            Source::Remote { url, store } => {
                // One GET; the size limit is checked from its headers.
                let store = Self::remote(url, store.as_ref())?;
                Ok(store.get_sized_blocking(url, None, limits.max_input_bytes)?.0)
            }
        }
    }

    /// This source with a remote object fetched whole into memory.
    pub(crate) fn fetched(self, limits: &Limits) -> Result<Source> {
        match self {
            Source::Remote { ref url, .. } => Ok(Source::from_bytes(self.read_all(limits)?, url.clone())),
            local => Ok(local),
        }
    }
}

/// Maps a file-system error to [`Error::NotFound`] or [`Error::Open`].
pub(crate) fn io_error(name: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::NotFound { src: name.into() }
    } else {
        Error::Open {
            src: name.into(),
            reason: e.to_string(),
        }
    }
}

/// A path, or a URL if `s` starts with a scheme other than `file`.
fn parse(s: &str) -> Source {
    match s.split_once("://") {
        Some(("file", path)) => Source::Path(PathBuf::from(path)),
        Some((scheme, _)) if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || c == '+') => {
            Source::Remote {
                url: s.to_string(),
                store: None,
            }
        }
        _ => Source::Path(PathBuf::from(s)),
    }
}

impl From<&str> for Source {
    fn from(p: &str) -> Self {
        parse(p)
    }
}

impl From<String> for Source {
    fn from(p: String) -> Self {
        parse(&p)
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

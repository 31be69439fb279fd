//! The bottom layer: where media bytes come from. A [`Source`] is a local
//! path, bytes in memory or an object-storage URL; [`Source::open_random`]
//! decides which reader of [`read`] (or [`ranged`], for remote objects) a
//! demuxer gets, and [`Source::read_all`] fetches a whole source for the
//! decoders that want one buffer (images, audio). Object storage itself is
//! [`store`] (feature `remote`).
//!
//! Nothing in this layer knows about media formats or FFmpeg.

pub(crate) mod path;
#[cfg(feature = "remote")]
pub(crate) mod ranged;
pub(crate) mod read;
pub(crate) mod sink;
#[cfg(feature = "remote")]
pub(crate) mod store;

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::limits::Limits;
#[cfg(feature = "remote")]
use ranged::RangedReader;
use read::{ByteInput, FileReader, MemoryReader, RandomRead};
pub use sink::Destination;

#[cfg(feature = "remote")]
pub use ranged::ObjectReader;
#[cfg(feature = "remote")]
pub use store::{FetchStats, ObjectEntry, Store, StoreConfig};

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
        #[cfg(feature = "remote")]
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

    /// The store a remote source reads through.
    #[cfg(feature = "remote")]
    fn store(url: &str, store: Option<&Store>) -> Result<Store> {
        store.map_or_else(|| Store::for_url(url), |s| Ok(s.clone()))
    }

    /// Reads the whole source into memory (a remote object is fetched in
    /// one request), checking its size against `limits`.
    pub(crate) fn read_all(&self, limits: &Limits) -> Result<Bytes> {
        let name = self.name();
        let check = |len: u64| Limits::check(&name, "input size in bytes", len, limits.max_input_bytes);
        match self {
            Source::Path(path) => {
                let meta = readable_metadata(path, &name)?;
                check(meta.len())?;
                let io = |e: std::io::Error| Error::io(&name, e);
                if meta.is_file() {
                    // Huge pages for large files (an `.npy` of features):
                    // the read's first touch faults once per 2 MiB.
                    let mut data = crate::memory::with_capacity(meta.len() as usize + 1)
                        .map_err(|n| Error::io(&name, std::io::Error::other(format!("cannot allocate {n} bytes"))))?;
                    let mut file = std::fs::File::open(path).map_err(io)?;
                    std::io::Read::read_to_end(&mut file, &mut data).map_err(io)?;
                    return Ok(Bytes::from(data));
                }
                // A pipe: no length to check first, so read at most the limit.
                let limit = limits.max_input_bytes.min(UNKNOWN_LENGTH_MAX);
                let mut data = Vec::new();
                let file = std::fs::File::open(path).map_err(io)?;
                std::io::Read::read_to_end(&mut std::io::Read::take(file, limit + 1), &mut data).map_err(io)?;
                Limits::check(
                    &name,
                    "input size in bytes (read from a pipe)",
                    data.len() as u64,
                    limit,
                )?;
                Ok(Bytes::from(data))
            }
            Source::Bytes { data, .. } => {
                check(data.len() as u64)?;
                Ok(data.clone())
            }
            #[cfg(feature = "remote")]
            Source::Remote { url, store } => {
                // One GET; the size limit is checked from its headers.
                let store = Self::store(url, store.as_ref())?;
                Ok(store.get_sized_blocking(url, None, limits.max_input_bytes)?.0)
            }
            #[cfg(not(feature = "remote"))]
            Source::Remote { url } => Err(no_remote(url)),
        }
    }

    /// This source with a remote object fetched whole into memory.
    pub(crate) fn fetched(self, limits: &Limits) -> Result<Source> {
        match self {
            Source::Remote { ref url, .. } => Ok(Source::from_bytes(self.read_all(limits)?, url.clone())),
            local => Ok(local),
        }
    }

    /// Decides which reader a demuxer reads this source through, checking
    /// the input size against `limits`:
    /// - a regular file: `pread` at the demuxer's own position (see
    ///   [`FileReader`]); a pipe, a device or (with
    ///   [`Limits::trusted_input`]) an HLS playlist: FFmpeg's own file
    ///   reader;
    /// - bytes: read in place;
    /// - a remote object: ranged GETs with read-ahead ([`RangedReader`]),
    ///   or the whole object in one GET when the server cannot serve ranges.
    pub(crate) fn open_random(&self, limits: &Limits) -> Result<ByteInput> {
        let name = self.name();
        let reader: Box<dyn RandomRead> = match self {
            Source::Path(path) => return open_path(path, &name, limits),
            Source::Bytes { data, .. } => Box::new(MemoryReader(data.clone())),
            #[cfg(feature = "remote")]
            Source::Remote { url, store } => match RangedReader::open(Self::store(url, store.as_ref())?, url)? {
                Some(reader) => Box::new(reader),
                // A server without range requests (`python -m http.server`).
                None => Box::new(MemoryReader(self.read_all(limits)?)),
            },
            #[cfg(not(feature = "remote"))]
            Source::Remote { url } => return Err(no_remote(url)),
        };
        Limits::check(&name, "input size in bytes", reader.size(), limits.max_input_bytes)?;
        Ok(ByteInput::Random(reader))
    }
}

#[cfg(feature = "remote")]
impl Store {
    /// A [`Source`] for `key` in this store (a path relative to the bucket
    /// or origin, or a full URL of this store).
    pub fn source(&self, key: &str) -> Source {
        Source::Remote {
            url: self.url_of(key),
            store: Some(self.clone()),
        }
    }
}

/// The most bytes read whole from an input of unknown length (a pipe),
/// whatever [`Limits::max_input_bytes`] allows.
const UNKNOWN_LENGTH_MAX: u64 = 1 << 30;

/// The metadata of a local path, refusing devices and sockets before any
/// read: they are not media files, and some never end (`/dev/zero`,
/// `/dev/urandom`). Regular files, pipes and (for their own error)
/// directories pass.
fn readable_metadata(path: &Path, name: &str) -> Result<std::fs::Metadata> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(path).map_err(|e| Error::io(name, e))?;
    let kind = meta.file_type();
    let what = match () {
        _ if kind.is_char_device() || kind.is_block_device() => "a device",
        _ if kind.is_socket() => "a socket",
        _ => return Ok(meta),
    };
    Err(Error::Open {
        src: name.into(),
        reason: format!("{what}, not a media file: not read"),
        cause: None,
    })
}

/// The reader for a local path (see [`Source::open_random`]).
fn open_path(path: &Path, name: &str, limits: &Limits) -> Result<ByteInput> {
    let meta = readable_metadata(path, name)?;
    Limits::check(name, "input size in bytes", meta.len(), limits.max_input_bytes)?;
    if !meta.is_file() {
        return Ok(ByteInput::SequentialFile(path.to_path_buf()));
    }
    let file = std::fs::File::open(path).map_err(|e| Error::io(name, e))?;
    let mut reader = FileReader::new(file, meta.len());
    // A trusted HLS playlist opens its segments as local files itself
    // (untrusted, the demuxer refuses its format).
    let mut head = [0u8; 7];
    if limits.trusted_input && reader.read_at(0, &mut head).is_ok_and(|n| head[..n] == *b"#EXTM3U") {
        return Ok(ByteInput::SequentialFile(path.to_path_buf()));
    }
    Ok(ByteInput::Random(Box::new(reader)))
}

/// The error for a remote source in a build without the `remote` feature.
#[cfg(not(feature = "remote"))]
fn no_remote(url: &str) -> Error {
    Error::Open {
        src: url.into(),
        reason: "remote sources need spdl-io's `remote` feature, which this build lacks".into(),
        cause: None,
    }
}

/// A path, or a URL if `s` starts with a scheme other than `file`.
fn parse(s: &str) -> Source {
    match s.split_once("://") {
        Some(("file", path)) => Source::Path(PathBuf::from(path)),
        Some((scheme, _)) if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || c == '+') => {
            Source::Remote {
                url: s.to_string(),
                #[cfg(feature = "remote")]
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

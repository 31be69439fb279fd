//! Where written bytes go: the mirror of [`Source`](super::Source) for the
//! writers. A [`Destination`] is a local path, a buffer in memory or an
//! object-storage URL; [`ByteSink`] is the open destination the muxer and
//! the image encoder write through.
//!
//! An object is written by a streaming multipart upload: parts of
//! 8 MiB go up while the next one fills, at most two at once, so memory stays bounded however long the
//! stream; the object appears only when the upload completes (a writer
//! dropped before finishing aborts it). Such a sink cannot seek, which the
//! muxer knows ([`ByteSink::seekable`]).

use std::fs::File;
use std::io::{Cursor, Seek, SeekFrom, Write};
use std::path::PathBuf;

#[cfg(feature = "remote")]
use super::store::{ObjectUpload, Store};
use crate::error::{Error, Result};

/// Where a writer puts its bytes.
///
/// Strings with a scheme (`s3://`, `gs://`, `az://`, `http(s)://`,
/// `file://`) are objects written through the default [`Store`] for that
/// bucket; other strings are paths.
///
/// ```
/// use spdl_io::source::Destination;
/// assert!(matches!(Destination::from("out/clip.mp4"), Destination::Path(_)));
/// assert!(matches!(Destination::from("s3://bucket/clip.mp4"), Destination::Remote { .. }));
/// assert_eq!(Destination::memory("clip.mp4").name(), "clip.mp4");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Destination {
    /// A file, created or truncated.
    Path(PathBuf),
    /// A buffer in memory, returned when the writer finishes; the name
    /// gives the format by its extension and appears in messages.
    Memory {
        /// A name such as `clip.mp4`.
        name: String,
    },
    /// An object, written by a multipart upload.
    Remote {
        /// The object's URL.
        url: String,
        /// The store to write through; `None`: the default store for the
        /// URL.
        #[cfg(feature = "remote")]
        store: Option<Store>,
    },
}

impl Destination {
    /// An in-memory destination named `name` (its extension names the
    /// format).
    pub fn memory(name: impl Into<String>) -> Self {
        Destination::Memory { name: name.into() }
    }

    /// The name used in messages, and whose extension names the format.
    pub fn name(&self) -> String {
        match self {
            Destination::Path(p) => p.display().to_string(),
            Destination::Memory { name } => name.clone(),
            Destination::Remote { url, .. } => url.clone(),
        }
    }

    /// Opens the destination for writing.
    pub(crate) fn open(&self) -> Result<ByteSink> {
        let name = self.name();
        let kind = match self {
            Destination::Path(path) => SinkKind::File(File::create(path).map_err(|e| Error::write(&name, e))?),
            Destination::Memory { .. } => SinkKind::Memory(Cursor::new(Vec::new())),
            #[cfg(feature = "remote")]
            Destination::Remote { url, store } => {
                let store = store.as_ref().map_or_else(|| Store::for_url(url), |s| Ok(s.clone()))?;
                SinkKind::Remote(store.upload(url)?)
            }
            #[cfg(not(feature = "remote"))]
            Destination::Remote { .. } => {
                return Err(Error::InvalidConfig(format!(
                    "{name}: writing to object storage needs spdl-io's `remote` feature"
                )))
            }
        };
        Ok(ByteSink { kind, name, written: 0 })
    }
}

impl From<&str> for Destination {
    fn from(s: &str) -> Self {
        match s.contains("://") {
            true => Destination::Remote {
                url: s.into(),
                #[cfg(feature = "remote")]
                store: None,
            },
            false => Destination::Path(s.into()),
        }
    }
}

impl From<String> for Destination {
    fn from(s: String) -> Self {
        Destination::from(s.as_str())
    }
}

impl From<PathBuf> for Destination {
    fn from(p: PathBuf) -> Self {
        Destination::Path(p)
    }
}

impl From<&PathBuf> for Destination {
    fn from(p: &PathBuf) -> Self {
        Destination::Path(p.clone())
    }
}

impl From<&std::path::Path> for Destination {
    fn from(p: &std::path::Path) -> Self {
        Destination::Path(p.into())
    }
}

#[cfg(feature = "remote")]
impl Store {
    /// A [`Destination`] for `key` in this store.
    pub fn destination(&self, key: &str) -> Destination {
        Destination::Remote {
            url: self.url_of(key),
            store: Some(self.clone()),
        }
    }
}

enum SinkKind {
    File(File),
    Memory(Cursor<Vec<u8>>),
    #[cfg(feature = "remote")]
    Remote(ObjectUpload),
}

/// An open [`Destination`].
pub(crate) struct ByteSink {
    kind: SinkKind,
    name: String,
    written: u64,
}

impl ByteSink {
    /// The destination's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Whether [`ByteSink::seek`] works (not for an upload).
    pub(crate) fn seekable(&self) -> bool {
        !self.is_remote()
    }

    fn is_remote(&self) -> bool {
        #[cfg(feature = "remote")]
        return matches!(self.kind, SinkKind::Remote(_));
        #[cfg(not(feature = "remote"))]
        false
    }

    /// Writes all of `data` at the current position.
    pub(crate) fn write_all(&mut self, data: &[u8]) -> Result<()> {
        let result = match &mut self.kind {
            SinkKind::File(f) => f.write_all(data).map_err(|e| Error::write(&self.name, e)),
            SinkKind::Memory(c) => c.write_all(data).map_err(|e| Error::write(&self.name, e)),
            #[cfg(feature = "remote")]
            SinkKind::Remote(u) => u.write(data),
        };
        self.written += data.len() as u64;
        result
    }

    /// Moves the write position; `None` where the sink cannot seek.
    pub(crate) fn seek(&mut self, to: SeekFrom) -> Option<std::io::Result<u64>> {
        match &mut self.kind {
            SinkKind::File(f) => Some(f.seek(to)),
            SinkKind::Memory(c) => Some(c.seek(to)),
            #[cfg(feature = "remote")]
            SinkKind::Remote(_) => None,
        }
    }

    /// The sink's length so far (for a seek from the end).
    pub(crate) fn len(&mut self) -> Option<u64> {
        match &mut self.kind {
            SinkKind::File(f) => f.metadata().ok().map(|m| m.len()),
            SinkKind::Memory(c) => Some(c.get_ref().len() as u64),
            #[cfg(feature = "remote")]
            SinkKind::Remote(_) => Some(self.written),
        }
    }

    /// Completes the destination: flushes a file, completes an upload,
    /// returns a memory buffer.
    pub(crate) fn finish(self) -> Result<Option<Vec<u8>>> {
        match self.kind {
            SinkKind::File(mut f) => f.flush().map(|()| None).map_err(|e| Error::write(&self.name, e)),
            SinkKind::Memory(c) => Ok(Some(c.into_inner())),
            #[cfg(feature = "remote")]
            SinkKind::Remote(u) => u.finish().map(|()| None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sinks_seek_and_return_their_bytes() {
        let mut sink = Destination::memory("x.bin").open().unwrap();
        sink.write_all(b"hello world").unwrap();
        assert_eq!(sink.seek(SeekFrom::Start(0)).unwrap().unwrap(), 0);
        sink.write_all(b"J").unwrap();
        assert_eq!(sink.len(), Some(11));
        assert_eq!(sink.finish().unwrap().unwrap(), b"Jello world");
    }

    #[test]
    fn a_file_that_cannot_be_created_names_its_path() {
        let err = Destination::from("/nonexistent-dir/x.mp4").open().err().unwrap();
        assert!(matches!(err, Error::Write { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent-dir/x.mp4"), "{err}");
    }
}

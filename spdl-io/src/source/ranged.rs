//! Random access to a remote object over ranged GETs, with a read-ahead
//! window that grows while reads are sequential and shrinks back on a seek.
//!
//! This is what FFmpeg's demuxer reads through for remote video: opening a
//! file fetches its header, and each seek of `sample_frames` fetches only
//! the GOPs it decodes.

use bytes::Bytes;

use super::read::RandomRead;
use super::store::Store;
use crate::error::{Error, Result};

/// How many times the smallest window a sequential run may grow to.
const MAX_GROWTH: usize = 16;

/// A remote object read through blocking ranged requests.
pub(crate) struct RangedReader {
    store: Store,
    url: String,
    size: u64,
    /// The last range fetched, starting at `cached_at`.
    cached: Bytes,
    cached_at: u64,
    window: usize,
}

impl RangedReader {
    /// Fetches the first window, which also tells the object's size (one
    /// request, no HEAD); `None` when the server does not serve ranges. An
    /// empty object, which has no first byte to ask for, is recognised by a
    /// HEAD after the ranged GET fails.
    pub(crate) fn open(store: Store, url: &str) -> Result<Option<Self>> {
        let window = store.read_ahead();
        let (cached, size) = match store.get_first_blocking(url, window as u64) {
            Ok(Some(first)) => first,
            Ok(None) => return Ok(None),
            Err(e) => match store.size_blocking(url) {
                Ok(0) => (Bytes::new(), 0),
                _ => return Err(e),
            },
        };
        Ok(Some(RangedReader {
            window,
            store,
            url: url.into(),
            size,
            cached,
            cached_at: 0,
        }))
    }

    /// Fetches the window starting at `pos`, growing it if `pos` continues
    /// the previous one.
    fn fill(&mut self, pos: u64, wanted: usize) -> std::io::Result<()> {
        let min = self.store.read_ahead();
        self.window = if pos == self.cached_at + self.cached.len() as u64 {
            (self.window * 2).min(min * MAX_GROWTH)
        } else {
            min
        };
        let end = (pos + self.window.max(wanted) as u64).min(self.size);
        self.cached = self
            .store
            .get_range_blocking(&self.url, pos..end)
            .map_err(std::io::Error::other)?;
        self.cached_at = pos;
        Ok(())
    }
}

impl RandomRead for RangedReader {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        if pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let cached_end = self.cached_at + self.cached.len() as u64;
        if !(self.cached_at..cached_end).contains(&pos) {
            self.fill(pos, buf.len())?;
        }
        let from = (pos - self.cached_at) as usize;
        let n = (self.cached.len() - from).min(buf.len());
        if n == 0 {
            let e = format!("{}: the server returned no bytes at {pos}", self.url);
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, e));
        }
        buf[..n].copy_from_slice(&self.cached[from..from + n]);
        Ok(n)
    }
}

impl Store {
    /// A sequential reader over the object at `url` (for example a tar
    /// shard for [`ShardReader`](crate::dataset::ShardReader)), fetched in
    /// ranged reads as it is consumed.
    ///
    /// # Errors
    /// As [`Store::get`] (the object's size is asked for first), or
    /// [`Error::Remote`] for a server that does not serve ranges.
    pub fn reader(&self, url: &str) -> Result<ObjectReader> {
        ObjectReader::open(self.clone(), &self.url_of(url))
    }
}

/// A remote object as a sequential [`std::io::Read`] (and [`std::io::Seek`]),
/// fetched in growing ranged reads: a tar shard streams through it without
/// being downloaded first. Made by [`Store::reader`].
pub struct ObjectReader {
    inner: RangedReader,
    pos: u64,
}

impl ObjectReader {
    fn open(store: Store, url: &str) -> Result<Self> {
        let inner = RangedReader::open(store, url)?.ok_or_else(|| Error::Remote {
            src: url.into(),
            source: "the server does not serve byte ranges".into(),
        })?;
        Ok(ObjectReader { inner, pos: 0 })
    }

    /// The object's size in bytes.
    pub fn size(&self) -> u64 {
        self.inner.size
    }
}

impl std::io::Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for ObjectReader {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            std::io::SeekFrom::Start(p) => Some(p),
            std::io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            std::io::SeekFrom::End(d) => self.inner.size.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| std::io::Error::other("seek before the start of the object"))?;
        Ok(self.pos)
    }
}

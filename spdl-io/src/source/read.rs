//! The byte readers under every demuxer: a random-access trait and its
//! implementations for local files and memory (remote objects implement it
//! in [`super::ranged`]). Nothing here knows about media or FFmpeg; the
//! FFmpeg layer reads through [`ByteInput`] without knowing where the
//! bytes come from.

use std::path::PathBuf;

use bytes::Bytes;

/// What a demuxer opens: random-access bytes, or a path that only FFmpeg's
/// own sequential file reader can read (a pipe or a device, which cannot
/// seek; an HLS playlist, which opens its segments as local files itself).
pub(crate) enum ByteInput {
    /// Bytes served through a custom I/O context.
    Random(Box<dyn RandomRead>),
    /// A path for FFmpeg's `file` protocol.
    SequentialFile(PathBuf),
}

/// Random-access bytes: what a demuxer reads (FFmpeg through a custom AVIO
/// context). Implementations say nothing about media.
pub(crate) trait RandomRead: Send {
    /// Total size in bytes.
    fn size(&self) -> u64;
    /// Reads up to `buf.len()` bytes at `pos`; 0 only at the end.
    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> std::io::Result<usize>;
}

/// A regular file, read with `pread` at the position the demuxer keeps:
/// a forked child reading the same open file cannot move the parent's
/// offset (it could with FFmpeg's `file` protocol, which seeks the shared
/// descriptor, so a parent's stream read the child's positions).
pub(crate) struct FileReader {
    file: std::fs::File,
    size: u64,
}

impl RandomRead for FileReader {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        loop {
            match self.file.read_at(buf, pos) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                read => return read,
            }
        }
    }
}

/// Bytes already in memory.
pub(crate) struct MemoryReader(pub(crate) Bytes);

impl RandomRead for MemoryReader {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = self.0.get(pos as usize..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }
}

impl FileReader {
    /// Wraps an open regular file of `size` bytes.
    pub(crate) fn new(file: std::fs::File, size: u64) -> Self {
        FileReader { file, size }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_reads_stop_at_the_end() {
        let mut r = MemoryReader(Bytes::from_static(b"abcdef"));
        let mut buf = [0u8; 4];
        assert_eq!(r.read_at(4, &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"ef");
        assert_eq!(r.read_at(6, &mut buf).unwrap(), 0);
        assert_eq!(r.read_at(60, &mut buf).unwrap(), 0);
    }
}

//! Webdataset-style `.tar` shards, streamed sample by sample.
//!
//! A shard is a tar archive whose members are grouped into samples by key:
//! `train/000123.jpg` and `train/000123.cls` form the sample `train/000123`
//! with the fields `jpg` and `cls` (the key is the path up to the first dot
//! of the file name, as webdataset does). Members are read from any
//! [`Read`] (a local file, or a remote object streamed through
//! [`Store::reader`](crate::Store::reader)) and never extracted to disk.
//!
//! The reader parses ustar, GNU (long names, base-256 sizes) and PAX
//! (`path`, `size`) headers itself, so it owns its input and can be an
//! `Iterator` without borrowing. A broken shard (truncated member, bad
//! header checksum) yields one `Err` naming the shard and the member, then
//! ends: nothing after an unreadable header can be found reliably.

use std::collections::BTreeMap;
use std::io::Read;

use bytes::Bytes;

use crate::error::{Error, Result};

const BLOCK: usize = 512;

/// One sample of a shard: its key and its fields by extension.
///
/// ```
/// # use spdl_io::ShardSample;
/// # fn label(sample: &ShardSample) -> Option<u32> {
/// let cls = sample.fields.get("cls")?;
/// std::str::from_utf8(cls).ok()?.trim().parse().ok()
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ShardSample {
    /// The shard this sample came from (path or URL).
    pub shard: String,
    /// The sample key: member path up to the first dot of its file name.
    pub key: String,
    /// Member contents by extension (`"jpg"`, `"cls"`, `"seg.png"`).
    pub fields: BTreeMap<String, Bytes>,
}

/// Iterator over the samples of one tar shard.
///
/// ```no_run
/// let file = std::fs::File::open("shard-000.tar")?;
/// for sample in spdl_io::ShardReader::new(file, "shard-000.tar", 1 << 30) {
///     let sample = sample?;
///     println!("{}: {:?}", sample.key, sample.fields.keys().collect::<Vec<_>>());
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a ShardReader does nothing unless iterated"]
pub struct ShardReader<R> {
    input: R,
    name: String,
    max_member_bytes: u64,
    /// The member (or error) read past the end of the current sample.
    next: Option<Result<Member>>,
    done: bool,
}

/// A regular file read from the archive.
struct Member {
    path: String,
    data: Bytes,
}

/// What a header block announces.
struct Header {
    path: String,
    size: u64,
    kind: u8,
}

impl<R: Read> ShardReader<R> {
    /// Reads samples from `input`; `name` appears in errors. Members larger
    /// than `max_member_bytes` are an error (a forged size cannot make the
    /// reader allocate more than that).
    pub fn new(input: R, name: impl Into<String>, max_member_bytes: u64) -> Self {
        ShardReader {
            input,
            name: name.into(),
            max_member_bytes,
            next: None,
            done: false,
        }
    }

    fn error(&self, member: &str, reason: impl Into<String>) -> Error {
        Error::Shard {
            src: self.name.clone(),
            member: member.into(),
            reason: reason.into(),
        }
    }

    /// Reads one 512-byte block; `None` at a clean end of input.
    fn block(&mut self, member: &str) -> Result<Option<[u8; BLOCK]>> {
        let mut block = [0u8; BLOCK];
        let mut filled = 0;
        while filled < BLOCK {
            match self.input.read(&mut block[filled..]) {
                Ok(0) if filled == 0 => return Ok(None),
                Ok(0) => return Err(self.error(member, "truncated header")),
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.error(member, format!("read failed: {e}"))),
            }
        }
        Ok(Some(block))
    }

    /// Reads `size` bytes of member data plus the padding to a block.
    fn data(&mut self, member: &str, size: u64) -> Result<Vec<u8>> {
        if size > self.max_member_bytes {
            return Err(self.error(
                member,
                format!("size {size} is over the limit of {} bytes", self.max_member_bytes),
            ));
        }
        let mut data = Vec::new();
        let read = (&mut self.input)
            .take(size)
            .read_to_end(&mut data)
            .map_err(|e| self.error(member, format!("read failed: {e}")))?;
        if (read as u64) < size {
            return Err(self.error(member, format!("truncated: {read} of {size} bytes")));
        }
        let pad = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        let skipped = std::io::copy(&mut (&mut self.input).take(pad), &mut std::io::sink())
            .map_err(|e| self.error(member, format!("read failed: {e}")))?;
        if skipped < pad {
            return Err(self.error(member, "truncated padding"));
        }
        Ok(data)
    }

    /// The next regular file, following GNU long-name and PAX headers.
    fn member(&mut self) -> Result<Option<Member>> {
        let (mut long_name, mut pax_size) = (None::<String>, None::<u64>);
        let mut last = String::from("<first header>");
        loop {
            let Some(block) = self.block(&last)? else {
                return Ok(None);
            };
            if block.iter().all(|&b| b == 0) {
                return Ok(None); // end-of-archive marker
            }
            let header = parse_header(&block).map_err(|reason| self.error(&last, reason))?;
            let path = long_name.take().unwrap_or(header.path);
            let size = pax_size.take().unwrap_or(header.size);
            last.clone_from(&path);
            let data = self.data(&path, size)?;
            match header.kind {
                b'L' => long_name = Some(c_string(&data)),
                b'x' => {
                    let pax = parse_pax(&data);
                    long_name = pax.path;
                    pax_size = pax.size;
                }
                b'0' | 0 | b'7' => {
                    return Ok(Some(Member {
                        path,
                        data: data.into(),
                    }))
                }
                _ => {} // directories, links, global PAX headers: no sample data
            }
        }
    }
}

impl<R: Read> Iterator for ShardReader<R> {
    type Item = Result<ShardSample>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut sample: Option<ShardSample> = None;
        loop {
            let member = match self.next.take().or_else(|| self.member().transpose()) {
                None => {
                    self.done = true;
                    return sample.map(Ok);
                }
                Some(Err(e)) if sample.is_some() => {
                    self.next = Some(Err(e)); // deliver the complete sample first
                    return sample.map(Ok);
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Some(Ok(m)) => m,
            };
            let Some((key, ext)) = split_key(&member.path) else {
                continue; // no extension: not part of any sample (as webdataset)
            };
            match &mut sample {
                Some(s) if s.key != key => {
                    self.next = Some(Ok(member));
                    return sample.map(Ok);
                }
                Some(s) => {
                    s.fields.insert(ext.into(), member.data);
                }
                None => {
                    let fields = BTreeMap::from([(ext.to_string(), member.data)]);
                    sample = Some(ShardSample {
                        shard: self.name.clone(),
                        key: key.into(),
                        fields,
                    });
                }
            }
        }
    }
}

/// Splits `dir/name.ext.more` into (`dir/name`, `ext.more`).
fn split_key(path: &str) -> Option<(&str, &str)> {
    let base_start = path.rfind('/').map_or(0, |i| i + 1);
    let dot = path[base_start..].find('.')? + base_start;
    (dot > base_start && dot + 1 < path.len()).then(|| (&path[..dot], &path[dot + 1..]))
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn parse_header(block: &[u8; BLOCK]) -> std::result::Result<Header, String> {
    let stored = parse_number(&block[148..156]).ok_or("header checksum field is not a number")?;
    let sum: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u64::from(b) })
        .sum();
    if sum != stored {
        return Err(format!(
            "bad header checksum (stored {stored}, computed {sum}): not a tar file or corrupt"
        ));
    }
    let name = c_string(&block[0..100]);
    let path = if &block[257..262] == b"ustar" && block[345] != 0 {
        format!("{}/{name}", c_string(&block[345..500]))
    } else {
        name
    };
    let size = parse_number(&block[124..136]).ok_or_else(|| format!("{path}: size field is not a number"))?;
    Ok(Header {
        path,
        size,
        kind: block[156],
    })
}

/// Octal (NUL/space padded) or GNU base-256 numbers.
fn parse_number(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        if field[0] & 0x40 != 0 {
            return None; // negative
        }
        let mut value = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            value = value.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(value);
    }
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

#[derive(Default)]
struct Pax {
    path: Option<String>,
    size: Option<u64>,
}

/// Reads the `path` and `size` records of a PAX extended header
/// (`"<len> <key>=<value>\n"` records).
fn parse_pax(data: &[u8]) -> Pax {
    let mut pax = Pax::default();
    let mut rest = data;
    while let Some(space) = rest.iter().position(|&b| b == b' ') {
        let Some(len) = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            break;
        };
        if len <= space || len > rest.len() {
            break;
        }
        let record = String::from_utf8_lossy(&rest[space + 1..len]);
        if let Some((key, value)) = record.trim_end_matches('\n').split_once('=') {
            match key {
                "path" => pax.path = Some(value.to_string()),
                "size" => pax.size = value.parse().ok(),
                _ => {}
            }
        }
        rest = &rest[len..];
    }
    pax
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ustar writer for tests (no long names).
    fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (path, data) in members {
            let mut h = [0u8; BLOCK];
            h[..path.len()].copy_from_slice(path.as_bytes());
            h[100..107].copy_from_slice(b"0000644");
            h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
            h[156] = b'0';
            h[257..263].copy_from_slice(b"ustar\0");
            h[263..265].copy_from_slice(b"00");
            h[148..156].fill(b' ');
            let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
            h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
            out.extend_from_slice(&h);
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
        }
        out.extend_from_slice(&[0u8; 2 * BLOCK]);
        out
    }

    #[test]
    fn groups_members_by_key() {
        let data = tar(&[
            ("a/1.jpg", b"J1"),
            ("a/1.cls", b"3"),
            ("a/2.jpg", b"J2"),
            ("README", b"x"),
        ]);
        let samples: Vec<_> = ShardReader::new(&data[..], "t.tar", 1 << 20)
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].key, "a/1");
        assert_eq!(samples[0].fields["cls"], Bytes::from_static(b"3"));
        assert_eq!(samples[1].fields.keys().collect::<Vec<_>>(), ["jpg"]);
    }

    #[test]
    fn truncated_member_is_an_error_naming_it() {
        let data = tar(&[("a/1.jpg", b"J1"), ("a/2.jpg", &[7u8; 3000])]);
        let cut = &data[..BLOCK * 3 + 100];
        let items: Vec<_> = ShardReader::new(cut, "t.tar", 1 << 20).collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().unwrap().key, "a/1");
        let err = items[1].as_ref().unwrap_err().to_string();
        assert!(
            err.contains("t.tar") && err.contains("a/2.jpg") && err.contains("truncated"),
            "{err}"
        );
    }

    #[test]
    fn garbage_and_forged_sizes_are_errors() {
        let garbage = vec![0x5au8; 4096];
        let err = ShardReader::new(&garbage[..], "g.tar", 1 << 20)
            .next()
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        let big = tar(&[("a/1.jpg", &[1u8; 2048])]);
        let err = ShardReader::new(&big[..], "b.tar", 1024).next().unwrap().unwrap_err();
        assert!(err.to_string().contains("over the limit"), "{err}");
    }

    #[test]
    fn keys_split_at_the_first_dot_of_the_file_name() {
        assert_eq!(split_key("d.x/a.seg.png"), Some(("d.x/a", "seg.png")));
        assert_eq!(split_key("noext"), None);
        assert_eq!(split_key("d/.hidden"), None);
        assert_eq!(parse_number(b"0000012\0"), Some(10));
        assert_eq!(parse_number(&[0x80, 0, 0, 1, 0]), Some(256));
    }
}

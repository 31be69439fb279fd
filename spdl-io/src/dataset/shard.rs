//! Webdataset-style `.tar` shards, streamed sample by sample.
//!
//! A shard is a tar archive whose members are grouped into samples by key:
//! `train/000123.jpg` and `train/000123.cls` form the sample `train/000123`
//! with the fields `jpg` and `cls` (the key is the path up to the first dot
//! of the file name, as webdataset does). Members are read from any
//! [`Read`] (a local file, or a remote object streamed through
//! `Store::reader`) and never extracted to disk.
//!
//! The reader parses ustar, GNU (long names, base-256 sizes) and PAX
//! (`path`, `size`) headers itself, so it owns its input and can be an
//! `Iterator` without borrowing. A broken shard (truncated member, bad
//! header checksum) yields one `Err` naming the shard and the member, then
//! ends: nothing after an unreadable header can be found reliably. A sample
//! with a repeated field, or with a member that is a link or a sparse file
//! (not read), is an `Err` naming that member, and reading goes on.

use std::collections::BTreeMap;
use std::io::Read;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::source::Source;

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
    /// The path of the last member whose header was read.
    last: String,
    done: bool,
}

/// A regular file read from the archive, or a member that holds no data
/// of its own (a link, a sparse file), with why it cannot be read.
struct Member {
    path: String,
    data: std::result::Result<Bytes, &'static str>,
}

/// What a header block announces.
struct Header {
    path: String,
    size: u64,
    kind: u8,
}

impl ShardReader<Box<dyn Read + Send>> {
    /// Opens the shard `source` (a file, bytes, or an object streamed in
    /// ranged reads) and reads its samples as [`ShardReader::new`] does.
    ///
    /// ```no_run
    /// let shard = spdl_io::Source::from("shards/train-000.tar");
    /// for sample in spdl_io::ShardReader::open(&shard, 1 << 30)? {
    ///     println!("{}", sample?.key);
    /// }
    /// # Ok::<(), spdl_io::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`] or [`Error::Io`] for a file that cannot be
    /// opened; as [`Store::reader`](crate::source::Store::reader) for an object.
    pub fn open(source: &Source, max_member_bytes: u64) -> Result<Self> {
        let name = source.name();
        let input: Box<dyn Read + Send> = match source {
            Source::Path(path) => Box::new(std::io::BufReader::new(
                std::fs::File::open(path).map_err(|e| Error::io(&name, e))?,
            )),
            Source::Bytes { data, .. } => Box::new(std::io::Cursor::new(data.clone())),
            #[cfg(feature = "remote")]
            Source::Remote { url, store } => {
                let store = store.clone().map_or_else(|| crate::source::Store::for_url(url), Ok)?;
                Box::new(std::io::BufReader::new(store.reader(url)?))
            }
            #[cfg(not(feature = "remote"))]
            Source::Remote { url } => {
                return Err(Error::InvalidConfig(format!(
                    "{url}: reading a URL needs spdl-io's `remote` feature, which this build lacks"
                )))
            }
        };
        Ok(ShardReader::new(input, name, max_member_bytes))
    }
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
            last: "<the first header>".into(),
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
        loop {
            let after = format!("the header after {}", self.last);
            let Some(block) = self.block(&after)? else {
                return Ok(None);
            };
            if block.iter().all(|&b| b == 0) {
                return Ok(None); // end-of-archive marker
            }
            let header = parse_header(&block)
                .map_err(|reason| self.error(&after, format!("{reason}; the rest of the shard is skipped")))?;
            let path = long_name.take().unwrap_or(header.path);
            let size = pax_size.take().unwrap_or(header.size);
            self.last.clone_from(&path);
            let data = self.data(&path, size)?;
            let unread = match header.kind {
                b'L' => {
                    long_name = Some(c_string(&data));
                    continue;
                }
                b'x' => {
                    let pax = parse_pax(&data);
                    (long_name, pax_size) = (pax.path, pax.size);
                    continue;
                }
                b'0' | 0 | b'7' => {
                    return Ok(Some(Member {
                        path,
                        data: Ok(data.into()),
                    }))
                }
                b'1' => "a hard link (links are not followed)",
                b'2' => "a symbolic link (links are not followed)",
                b'S' => "a GNU sparse file (not supported)",
                _ => continue, // directories, global PAX headers: no sample data
            };
            return Ok(Some(Member {
                path,
                data: Err(unread),
            }));
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
        // The first member that makes the sample unusable (a repeated
        // field, a link): the sample is then this error, and reading goes on.
        let mut problem: Option<Error> = None;
        let finish = |sample: Option<ShardSample>, problem: Option<Error>| match problem {
            Some(e) => Some(Err(e)),
            None => sample.map(Ok),
        };
        loop {
            let member = match self.next.take().or_else(|| self.member().transpose()) {
                None => {
                    self.done = true;
                    return finish(sample, problem);
                }
                Some(Err(e)) if sample.is_some() => {
                    self.next = Some(Err(e)); // deliver the complete sample first
                    return finish(sample, problem);
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
            let s = match &mut sample {
                Some(s) if s.key != key => {
                    self.next = Some(Ok(member));
                    return finish(sample, problem);
                }
                Some(s) => s,
                None => sample.insert(ShardSample {
                    shard: self.name.clone(),
                    key: key.into(),
                    fields: BTreeMap::new(),
                }),
            };
            let reason = match member.data {
                Ok(_) if s.fields.contains_key(ext) => Some(format!("repeats the sample's .{ext} field")),
                Ok(data) => {
                    s.fields.insert(ext.into(), data);
                    None
                }
                Err(why) => Some(format!("is {why}")),
            };
            if let Some(reason) = reason.filter(|_| problem.is_none()) {
                problem = Some(self.error(&member.path, reason));
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

    /// A minimal ustar writer for tests (no long names), regular files.
    fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
        let typed: Vec<_> = members.iter().map(|&(p, d)| (p, d, b'0')).collect();
        tar_typed(&typed)
    }

    /// The same with each member's type flag.
    fn tar_typed(members: &[(&str, &[u8], u8)]) -> Vec<u8> {
        let mut out = Vec::new();
        for &(path, data, kind) in members {
            let mut h = [0u8; BLOCK];
            h[..path.len()].copy_from_slice(path.as_bytes());
            h[100..107].copy_from_slice(b"0000644");
            h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
            h[156] = kind;
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

    /// A repeated field or a link member makes its sample an error naming
    /// the member; the samples after it are still read.
    #[test]
    fn repeated_fields_and_links_fail_their_sample_only() {
        let data = tar_typed(&[
            ("a/1.jpg", b"J1", b'0'),
            ("a/1.jpg", b"J1bis", b'0'),
            ("a/2.jpg", b"", b'1'),
            ("a/3.jpg", b"J3", b'0'),
            ("a/4.jpg", b"", b'2'),
        ]);
        let items: Vec<_> = ShardReader::new(&data[..], "t.tar", 1 << 20).collect();
        let text = |i: usize| {
            items[i]
                .as_ref()
                .map(|s| s.key.clone())
                .unwrap_or_else(|e| e.to_string())
        };
        assert_eq!(items.len(), 4, "{items:?}");
        assert!(
            text(0).contains("a/1.jpg") && text(0).contains("repeats"),
            "{}",
            text(0)
        );
        assert!(
            text(1).contains("a/2.jpg") && text(1).contains("hard link"),
            "{}",
            text(1)
        );
        assert_eq!(text(2), "a/3");
        assert!(text(3).contains("symbolic link"), "{}", text(3));
    }

    /// A bad header ends the shard, naming the member before it.
    #[test]
    fn a_bad_header_names_the_member_before_it() {
        let mut data = tar(&[("a/1.jpg", b"J1"), ("a/2.jpg", b"J2"), ("a/3.jpg", b"J3")]);
        data[2 * BLOCK + 148] ^= 1; // the second header's checksum
        let items: Vec<_> = ShardReader::new(&data[..], "t.tar", 1 << 20).collect();
        assert_eq!(items.len(), 2);
        let err = items[1].as_ref().unwrap_err().to_string();
        assert!(
            err.contains("the header after a/1.jpg") && err.contains("rest of the shard is skipped"),
            "{err}"
        );
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

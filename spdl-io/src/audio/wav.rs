//! A direct reader for PCM WAV: parses the RIFF header and converts the
//! samples in one pass, straight into the output layout. WAV is mostly
//! memory bandwidth, and a general decoder's packets and interleaved
//! copies cost more than the conversion itself.
//!
//! Conversions are FFmpeg's (`u8`: (x - 128) / 128, `s16`: x / 2^15, `s24`:
//! x / 2^23, `s32`: x / 2^31, `f64` cast), so the samples equal the other
//! backends' bit for bit. Anything else (ADPCM, A-law, odd sizes) is left to
//! them.

use super::sinks::SampleWindow;

/// Sample encodings read directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    U8,
    S16,
    S24,
    S32,
    F32,
    F64,
}

impl Encoding {
    fn bytes(self) -> usize {
        match self {
            Encoding::U8 => 1,
            Encoding::S16 => 2,
            Encoding::S24 => 3,
            Encoding::S32 | Encoding::F32 => 4,
            Encoding::F64 => 8,
        }
    }
}

/// A PCM WAV file's layout: where the samples are and how they are coded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PcmWav {
    pub(crate) rate: u32,
    pub(crate) channels: u32,
    encoding: Encoding,
    /// Byte range of whole frames in the data chunk.
    data: std::ops::Range<usize>,
}

fn u16_at(d: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(i..i + 2)?.try_into().ok()?))
}

fn u32_at(d: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(i..i + 4)?.try_into().ok()?))
}

impl PcmWav {
    /// Parses the header; `None` if this is not a PCM WAV read here (the
    /// other backends then take it, and report any error).
    pub(crate) fn parse(d: &[u8]) -> Option<PcmWav> {
        if d.get(0..4)? != b"RIFF" || d.get(8..12)? != b"WAVE" {
            return None;
        }
        let (mut pos, mut format) = (12usize, None);
        while pos + 8 <= d.len() {
            let (id, size) = (&d[pos..pos + 4], u32_at(d, pos + 4)? as usize);
            let body = pos + 8;
            if id == b"fmt " {
                format = Some(Self::format(d.get(body..body.checked_add(size)?)?)?);
            } else if id == b"data" {
                let (rate, channels, encoding) = format?;
                let frame = encoding.bytes() * channels as usize;
                // A streamed WAV may declare 0 or 0xFFFFFFFF: read to the end.
                let end = body.saturating_add(size).min(d.len());
                let end = if size == 0 || size == u32::MAX as usize {
                    d.len()
                } else {
                    end
                };
                let whole = (end - body) / frame * frame;
                return Some(PcmWav {
                    rate,
                    channels,
                    encoding,
                    data: body..body + whole,
                });
            }
            pos = body.checked_add(size)?.checked_add(size & 1)?;
        }
        None
    }

    /// (rate, channels, encoding) of a `fmt ` chunk, for the codes read here.
    fn format(f: &[u8]) -> Option<(u32, u32, Encoding)> {
        let mut tag = u16_at(f, 0)?;
        let channels = u32::from(u16_at(f, 2)?);
        let rate = u32_at(f, 4)?;
        let bits = u16_at(f, 14)?;
        if tag == 0xFFFE {
            tag = u16_at(f, 24)?; // WAVE_FORMAT_EXTENSIBLE: the sub-format's first bytes
            if u16_at(f, 18)? != bits {
                return None; // valid bits differ from container bits: leave it to FFmpeg
            }
        }
        let encoding = match (tag, bits) {
            (1, 8) => Encoding::U8,
            (1, 16) => Encoding::S16,
            (1, 24) => Encoding::S24,
            (1, 32) => Encoding::S32,
            (3, 32) => Encoding::F32,
            (3, 64) => Encoding::F64,
            _ => return None,
        };
        let valid = rate > 0 && rate <= i32::MAX as u32 && (1..=64).contains(&channels);
        valid.then_some((rate, channels, encoding))
    }

    /// Frames (samples per channel) in the file.
    pub(crate) fn frames(&self) -> usize {
        self.data.len() / (self.encoding.bytes() * self.channels as usize)
    }

    /// The samples inside `window`, channels-first (`planar`) or
    /// interleaved, converted in one pass.
    pub(crate) fn decode(&self, d: &[u8], window: &mut SampleWindow, planar: bool) -> Vec<f32> {
        let (ch, width) = (self.channels as usize, self.encoding.bytes());
        let (skip, keep) = window.claim(0.0, self.rate, self.frames());
        let frame = ch * width;
        let bytes = &d[self.data.start + skip * frame..self.data.start + (skip + keep) * frame];
        let layout = Layout { ch, width, planar };
        match self.encoding {
            Encoding::U8 => layout.gather(bytes, |b| (f32::from(b[0]) - 128.0) / 128.0),
            Encoding::S16 => layout.gather(bytes, |b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0),
            Encoding::S24 => layout.gather(bytes, |b| {
                (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 / 8_388_608.0
            }),
            Encoding::S32 => layout.gather(bytes, |b| {
                i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 * (1.0 / 2_147_483_648.0)
            }),
            Encoding::F32 => layout.gather(bytes, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            Encoding::F64 => layout.gather(bytes, |b| {
                f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
            }),
        }
    }
}

/// Where converted samples go: interleaved, or one plane per channel.
struct Layout {
    ch: usize,
    width: usize,
    planar: bool,
}

impl Layout {
    /// Converts every sample of `bytes` with `sample` (monomorphised per
    /// encoding, so the loop has no per-sample dispatch).
    fn gather(&self, bytes: &[u8], sample: impl Fn(&[u8]) -> f32) -> Vec<f32> {
        // Bounded by the bytes already read; huge pages cut first-touch cost.
        let mut out = crate::memory::with_capacity(bytes.len() / self.width).unwrap_or_default();
        if self.planar {
            let frame = self.ch * self.width;
            for c in 0..self.ch {
                let at = c * self.width;
                out.extend(bytes.chunks_exact(frame).map(|f| sample(&f[at..at + self.width])));
            }
        } else {
            out.extend(bytes.chunks_exact(self.width).map(&sample));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(tag: u16, bits: u16, channels: u16, samples: &[u8]) -> Vec<u8> {
        let mut d = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        d.extend(16u32.to_le_bytes());
        d.extend(tag.to_le_bytes());
        d.extend(channels.to_le_bytes());
        d.extend(8000u32.to_le_bytes());
        d.extend((8000 * u32::from(bits / 8) * u32::from(channels)).to_le_bytes());
        d.extend((bits / 8 * channels).to_le_bytes());
        d.extend(bits.to_le_bytes());
        d.extend(b"data");
        d.extend((samples.len() as u32).to_le_bytes());
        d.extend(samples);
        d
    }

    #[test]
    fn s16_stereo_converts_like_ffmpeg() {
        let d = wav(1, 16, 2, &[0, 0x80, 0xff, 0x7f, 0, 0x40, 0, 0]);
        let w = PcmWav::parse(&d).unwrap();
        assert_eq!((w.frames(), w.channels), (2, 2));
        let planar = w.decode(&d, &mut SampleWindow::new(None, None), true);
        assert_eq!(planar, [-1.0, 0.5, 32767.0 / 32768.0, 0.0]);
        let interleaved = w.decode(&d, &mut SampleWindow::new(None, None), false);
        assert_eq!(interleaved, [-1.0, 32767.0 / 32768.0, 0.5, 0.0]);
    }

    #[test]
    fn unsupported_and_truncated_headers_are_left_to_other_backends() {
        assert!(PcmWav::parse(&wav(0x11, 4, 1, &[0; 8])).is_none()); // IMA ADPCM
        assert!(PcmWav::parse(b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0").is_none());
        assert!(PcmWav::parse(&[0u8; 64]).is_none());
        // A data chunk cut short keeps its whole frames.
        let mut d = wav(1, 16, 2, &[1, 0, 2, 0, 3, 0, 4, 0]);
        d.truncate(d.len() - 3);
        assert_eq!(PcmWav::parse(&d).unwrap().frames(), 1);
    }
}

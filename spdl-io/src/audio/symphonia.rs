//! Audio decoding with symphonia (pure Rust): WAV/PCM, FLAC, MP3, AAC,
//! Vorbis, ALAC in WAV, FLAC, MP3, MP4/M4A and Ogg containers.
//!
//! [`AudioBackend::Auto`](super::config::AudioBackend::Auto) uses it for the codecs
//! where it measured faster than FFmpeg with identical samples (see
//! [`prefers_symphonia`]); FFmpeg handles everything else, and every
//! request that needs resampling or remixing. Samples are converted to f32
//! as FFmpeg converts them (`s16 / 32768`, `s32 / 2^31`), so the two
//! backends agree bit for bit on PCM and FLAC.

use std::io::Cursor;

use symphonia::core::audio::{AudioBuffer, SampleBuffer, Signal};
use symphonia::core::codecs::{CodecType, DecoderOptions, CODEC_TYPE_FLAC, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::sinks::{oom, ChannelPlanes, SampleWindow};
use crate::error::{catch_panic, Error, Position, Result};
use crate::source::Source;

/// Whether auto selection uses symphonia for `codec`: FLAC, and PCM the
/// direct reader leaves over (big-endian, in other containers), where it
/// decodes the same samples as FFmpeg faster (BENCHMARKS.md, audio).
pub(crate) fn prefers_symphonia(codec: CodecType) -> bool {
    codec == CODEC_TYPE_FLAC || is_pcm(codec)
}

fn is_pcm(codec: CodecType) -> bool {
    use symphonia::core::codecs::*;
    [
        CODEC_TYPE_PCM_S16LE,
        CODEC_TYPE_PCM_S24LE,
        CODEC_TYPE_PCM_S32LE,
        CODEC_TYPE_PCM_F32LE,
        CODEC_TYPE_PCM_U8,
        CODEC_TYPE_PCM_S16BE,
        CODEC_TYPE_PCM_F64LE,
    ]
    .contains(&codec)
}

/// An opened file: its format reader, the track to decode and its codec.
pub(crate) struct SymphoniaInput {
    reader: Box<dyn FormatReader>,
    track: u32,
    pub(crate) codec: CodecType,
    name: String,
}

fn error(name: &str, at: Position, e: impl std::fmt::Display) -> Error {
    Error::Decode {
        src: name.into(),
        stream: 0,
        at,
        reason: format!("symphonia: {e}"),
        cause: None,
    }
}

/// Whether a WAV (`fmt ` chunk) or FLAC (STREAMINFO) header declares a
/// sample rate of 0. Symphonia's readers panic on it, and a caught panic
/// still prints its message and backtrace on stderr.
fn declares_no_sample_rate(data: &[u8]) -> bool {
    if data.starts_with(b"fLaC") {
        // STREAMINFO first: 4-byte block header, then the rate in the 20
        // bits after the block and frame sizes (10 bytes in).
        return data
            .get(18..21)
            .is_some_and(|r| r[0] == 0 && r[1] == 0 && r[2] >> 4 == 0);
    }
    if !(data.starts_with(b"RIFF") || data.starts_with(b"RF64")) || data.get(8..12) != Some(b"WAVE") {
        return false;
    }
    let mut at = 12;
    while let Some(head) = data.get(at..at + 8) {
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        if &head[..4] == b"fmt " {
            return data.get(at + 12..at + 16) == Some(&[0, 0, 0, 0]);
        }
        at = at.saturating_add(8).saturating_add(size + (size & 1));
    }
    false
}

/// Whether an MP4's sample tables declare more entries than their atoms
/// hold. Symphonia's MP4 reader reserves memory for the declared count
/// before reading a table (`Vec::with_capacity(entry_count)`): a forged
/// count of 0x7FFFFFFF asks for 8 GiB and aborts the process under a memory
/// cap (found by `examples/fuzz_mutants.rs`). FFmpeg checks these counts.
fn mp4_tables_overstate(data: &[u8]) -> bool {
    data.get(4..8) == Some(b"ftyp") && !mp4_boxes_fit(data, 0)
}

/// Whether every sample table in the boxes of `data` (nested up to a few
/// levels) declares no more entries than its bytes hold.
fn mp4_boxes_fit(data: &[u8], depth: usize) -> bool {
    let be32 = |b: &[u8], at: usize| b.get(at..at + 4).map(|v| u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
    let mut pos = 0usize;
    while let (Some(size), Some(kind)) = (be32(data, pos), data.get(pos + 4..pos + 8)) {
        let (head, size) = match size {
            0 => (8, data.len() - pos),
            1 => match data.get(pos + 8..pos + 16) {
                Some(v) => (
                    16,
                    u64::from_be_bytes(v.try_into().expect("8 bytes")).min(usize::MAX as u64) as usize,
                ),
                None => return true,
            },
            s => (8, s as usize),
        };
        if size < head {
            return true; // malformed: symphonia stops here, allocating nothing
        }
        let body = &data[(pos + head).min(data.len())..pos.saturating_add(size).min(data.len())];
        // (bytes before the entries, bytes per entry); stsz has entries
        // only when its fixed sample size is 0.
        let table = match kind {
            b"stco" | b"stss" => Some((8, 4)),
            b"co64" | b"stts" | b"ctts" => Some((8, 8)),
            b"stsc" => Some((8, 12)),
            b"stsz" if be32(body, 4) == Some(0) => Some((12, 4)),
            _ => None,
        };
        let fits = match table {
            Some((start, entry)) => be32(body, start - 4)
                .is_none_or(|n| (n as usize).saturating_mul(entry) <= body.len().saturating_sub(start)),
            None if depth < 8 && matches!(kind, b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl" | b"edts") => {
                mp4_boxes_fit(body, depth + 1)
            }
            None => true,
        };
        if !fits {
            return false;
        }
        pos = pos.saturating_add(size);
    }
    true
}

impl SymphoniaInput {
    /// Probes in-memory (or local) media; `None` if symphonia does not
    /// read this container or has no decoder for its first audio track.
    pub(crate) fn open(source: &Source, data: bytes::Bytes) -> Option<SymphoniaInput> {
        if declares_no_sample_rate(&data) {
            return None; // symphonia panics on it (a zero time base); FFmpeg refuses it cleanly
        }
        if mp4_tables_overstate(&data) {
            return None; // symphonia would reserve memory for the forged count; FFmpeg checks it
        }
        let name = source.name();
        let mut hint = Hint::new();
        if let Some(ext) = name.rsplit_once('.').map(|(_, e)| e) {
            hint.with_extension(ext);
        }
        let stream = MediaSourceStream::new(Box::new(Cursor::new(data)), Default::default());
        let options = FormatOptions {
            enable_gapless: true,
            ..Default::default()
        };
        // symphonia may panic on hostile input; a panic is "cannot read".
        let probe = || symphonia::default::get_probe().format(&hint, stream, &options, &MetadataOptions::default());
        let probed = catch_panic(probe).ok()?.ok()?;
        let track = probed
            .format
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)?;
        symphonia::default::get_codecs().get_codec(track.codec_params.codec)?;
        Some(SymphoniaInput {
            track: track.id,
            codec: track.codec_params.codec,
            reader: probed.format,
            name,
        })
    }

    /// Decodes the track into f32 within `window`: channel planes one after
    /// another when `planar`, else interleaved; returns the samples, the
    /// sample rate and the channel count. `None` when the stream ended
    /// before the length its header declares: symphonia stops at bytes it
    /// cannot place (an ID3v1 tag after a FLAC's last frame loses that
    /// frame), so FFmpeg should read it. A panic inside symphonia (hostile
    /// input) is returned as an error, not propagated.
    pub(crate) fn decode(
        self,
        window: &mut SampleWindow,
        max_samples: u64,
        planar: bool,
    ) -> Result<Option<(Vec<f32>, u32, u32)>> {
        let name = self.name.clone();
        let decode = || self.decode_all(window, max_samples, planar);
        catch_panic(decode)
            .unwrap_or_else(|what| Err(error(&name, Position::Unknown, format!("decoder panicked: {what}"))))
    }

    fn decode_all(
        mut self,
        window: &mut SampleWindow,
        max_samples: u64,
        planar: bool,
    ) -> Result<Option<(Vec<f32>, u32, u32)>> {
        let name = self.name.clone();
        let track = self
            .reader
            .tracks()
            .iter()
            .find(|t| t.id == self.track)
            .ok_or_else(|| error(&name, Position::Unknown, "the track disappeared"))?;
        let params = track.codec_params.clone();
        let time_base = params.time_base;
        let mut decoder = symphonia::default::get_codecs()
            .make(&params, &DecoderOptions::default())
            .map_err(|e| error(&name, Position::Unknown, e))?;
        let (mut rate, mut channels) = (0u32, 0u32);
        // Sized from the header when it declares a length (bounded by the
        // sample limit, so a forged header cannot make it allocate more).
        let declared = params.n_frames.unwrap_or(0).min(max_samples) as usize;
        let declared_channels = params.channels.map_or(1, |c| c.count()).min(64);
        let oom = |bytes| oom(&name, bytes);
        let mut planes: Option<ChannelPlanes> = None;
        let mut out: Vec<f32> = match planar {
            true => Vec::new(),
            false => crate::memory::with_capacity(declared.saturating_mul(declared_channels)).map_err(oom)?,
        };
        let mut scratch: Option<SampleBuffer<f32>> = None;
        let mut planar_scratch: Option<AudioBuffer<f32>> = None;
        let mut decoded_frames = 0u64;
        loop {
            let packet = match self.reader.next_packet() {
                Ok(p) => p,
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    if params.n_frames.is_some_and(|n| decoded_frames < n) {
                        return Ok(None);
                    }
                    break;
                }
                Err(e) => return Err(error(&name, Position::Unknown, e)),
            };
            if packet.track_id() != self.track {
                continue;
            }
            let at = || Position::Pts(seconds(time_base, packet.ts()));
            let decoded = decoder.decode(&packet).map_err(|e| error(&name, at(), e))?;
            decoded_frames += decoded.frames() as u64;
            let spec = *decoded.spec();
            if rate == 0 {
                (rate, channels) = (spec.rate, spec.channels.count() as u32);
                // The same bounds as the FFmpeg path, so both refuse the same headers.
                if rate == 0 || rate > i32::MAX as u32 || channels == 0 || channels > 64 {
                    return Err(error(
                        &name,
                        at(),
                        format!("the header declares {channels} channels at {rate} Hz"),
                    ));
                }
                window.begin(seconds(time_base, packet.ts()), rate);
            } else if (spec.rate, spec.channels.count() as u32) != (rate, channels) {
                return Err(error(
                    &name,
                    at(),
                    "the sample rate or channel count changed mid-stream",
                ));
            }
            let kept = if planar {
                let buf = match &mut planar_scratch {
                    Some(b) if b.capacity() >= decoded.capacity() && *b.spec() == spec => b,
                    slot => slot.insert(AudioBuffer::new(decoded.capacity() as u64, spec)),
                };
                decoded.convert(buf);
                let range = window.range(buf.frames());
                // Sized from the header, bounded (a header can lie).
                let planes = match &mut planes {
                    Some(p) => p,
                    slot => slot.insert(ChannelPlanes::new(channels as usize, declared).map_err(oom)?),
                };
                planes.push(range.len(), |c| &buf.chan(c)[range.clone()]).map_err(oom)?;
                planes.len()
            } else {
                let buf = match &mut scratch {
                    Some(b) if b.capacity() >= decoded.capacity() * channels as usize => b,
                    slot => slot.insert(SampleBuffer::new(decoded.capacity() as u64, spec)),
                };
                buf.copy_interleaved_ref(decoded);
                window.push(buf.samples(), channels as usize, &mut out);
                out.len() / channels as usize
            };
            if kept as u64 > max_samples || window.is_full() {
                break;
            }
        }
        if let Some(planes) = planes {
            out = planes.into_vec();
        }
        Ok(Some((out, rate, channels)))
    }
}

/// A packet timestamp in seconds (0 without a time base).
fn seconds(time_base: Option<symphonia::core::units::TimeBase>, ts: u64) -> f64 {
    time_base.map_or(0.0, |tb| {
        let t = tb.calc_time(ts);
        t.seconds as f64 + t.frac
    })
}

#[cfg(test)]
mod tests {
    use super::{declares_no_sample_rate, mp4_tables_overstate};

    #[test]
    fn mp4_sample_tables_are_checked_against_their_atoms() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/audio");
        let m4a = std::fs::read(dir.join("aac_lc_44100_stereo.m4a")).unwrap();
        assert!(!mp4_tables_overstate(&m4a), "a valid file passes");
        let at = m4a.windows(4).position(|w| w == b"stco").expect("an stco atom");
        let mut forged = m4a.clone();
        forged[at + 8..at + 12].copy_from_slice(&0x7FFF_FFFFu32.to_be_bytes());
        assert!(mp4_tables_overstate(&forged));
        // A cut file is checked without panicking (a panic fails the test).
        for cut in [at + 6, at + 12, m4a.len() / 2] {
            mp4_tables_overstate(&m4a[..cut]);
        }
    }

    fn wav(rate: u32) -> Vec<u8> {
        let mut d = b"RIFF\0\0\0\0WAVEJUNK\x02\0\0\0\0\0fmt \x10\0\0\0\x01\0\x01\0".to_vec();
        d.extend(rate.to_le_bytes());
        d.extend([0; 8]);
        d
    }

    /// Symphonia panics on a zero sample rate; such headers skip it.
    #[test]
    fn zero_sample_rates_are_found_in_wav_and_flac_headers() {
        assert!(declares_no_sample_rate(&wav(0)));
        assert!(!declares_no_sample_rate(&wav(8000)));
        let mut flac = b"fLaC\0\0\0\x22".to_vec();
        flac.extend([0x10, 0, 0x10, 0, 0, 0, 0, 0, 0, 0]); // block and frame sizes
        assert!(declares_no_sample_rate(&[&flac[..], &[0, 0, 0x02]].concat()));
        assert!(!declares_no_sample_rate(&[&flac[..], &[0x0A, 0xC4, 0x42]].concat())); // 44.1 kHz
        assert!(!declares_no_sample_rate(b"ID3\x03"));
    }
}

//! What may be left out of a decode when a packet's picture is not wanted:
//! H.264 and HEVC packets are read NAL unit by NAL unit (headers only, in
//! the stream's framing: length-prefixed `avcC`/`hvcC` or Annex B start
//! codes) to tell whether nothing else references the picture.
//!
//! Two measured reasons, both from FFmpeg's own non-reference skip
//! (`AVDISCARD_NONREF`, which decides inside the decoder):
//! - With frame threading, a packet the decoder skips still takes a turn
//!   in its round-robin of threads, and each turn waits for the oldest
//!   thread's frame to finish, so with skipped pictures between them the
//!   reference frames decode one at a time. A packet of only
//!   non-reference slices is not sent at all ([`Unwanted::Drop`]).
//! - FFmpeg's HEVC skip treats every sub-layer non-reference picture
//!   (`TRAIL_N`, `RASL_N`, ...) as unreferenced, but pictures of higher
//!   temporal sub-layers may reference it. Only pictures of the highest
//!   sub-layer are skipped here ([`Unwanted::Decode`] otherwise).
//!
//! Anything not understood (other codecs, malformed lengths, parameter
//! sets inside the packet) falls back to FFmpeg's skip or a full decode.

/// What to do with a packet whose picture nobody asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unwanted {
    /// Nothing references it and it carries nothing the decoder keeps:
    /// not sent to the decoder at all.
    Drop,
    /// Sent with FFmpeg's non-reference skip on (the decoder decides).
    Skip,
    /// A B picture that is a reference but that no picture decoded from
    /// here on uses (see `h264_refs`): a stand-in packet is sent in its
    /// place, which the decoder files as the same reference picture
    /// without decoding its pixels.
    SkipReference,
    /// Sent and decoded: a picture the decoder would skip may be
    /// referenced later.
    Decode,
}

/// How NAL units are delimited in a stream's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Each NAL unit follows its big-endian length in this many bytes.
    Length(usize),
    /// NAL units follow `00 00 01` start codes.
    AnnexB,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    H264,
    /// With the stream's highest temporal sub-layer id, when known.
    Hevc(Option<u8>),
}

/// Classifies a stream's unwanted packets (see the module docs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NalUnits {
    codec: Codec,
    framing: Framing,
}

impl NalUnits {
    /// For a stream of `codec` (FFmpeg's name) with these codec
    /// extradata bytes; `None` for codecs other than H.264 and HEVC.
    pub(crate) fn new(codec: &str, extradata: &[u8]) -> Option<Self> {
        match codec {
            "h264" => Some(NalUnits {
                codec: Codec::H264,
                framing: match extradata {
                    [1, _, _, _, b, ..] => Framing::Length(usize::from(b & 3) + 1),
                    _ => Framing::AnnexB,
                },
            }),
            "hevc" => {
                let (framing, sps) = match extradata {
                    [1, ..] if extradata.len() >= 23 => (
                        Framing::Length(usize::from(extradata[21] & 3) + 1),
                        hvcc_units(extradata).find(|u| hevc_type(u) == Some(HEVC_SPS)),
                    ),
                    _ => (
                        Framing::AnnexB,
                        annex_b_units(extradata).find(|u| hevc_type(u) == Some(HEVC_SPS)),
                    ),
                };
                // sps_video_parameter_set_id (4 bits), sps_max_sub_layers_minus1 (3 bits).
                let top = sps.and_then(|u| u.get(2)).map(|b| (b >> 1) & 7);
                Some(NalUnits {
                    codec: Codec::Hevc(top),
                    framing,
                })
            }
            _ => None,
        }
    }

    /// The stream's framing when it is H.264 (for the reference model).
    pub(crate) fn h264_framing(&self) -> Option<Framing> {
        (self.codec == Codec::H264).then_some(self.framing)
    }

    /// What to do with `packet` (one access unit) when its picture is not
    /// wanted.
    pub(crate) fn unwanted(&self, packet: &[u8]) -> Unwanted {
        let mut verdict = Unwanted::Drop;
        let mut slices = 0;
        let mut each = |unit: &[u8]| {
            let v = match self.codec {
                Codec::H264 => h264_unit(unit),
                Codec::Hevc(top) => hevc_unit(unit, top),
            };
            slices += usize::from(v == Some(Unwanted::Drop));
            verdict = match (verdict, v) {
                (_, Some(Unwanted::Decode)) | (Unwanted::Decode, _) => Unwanted::Decode,
                (Unwanted::Drop, Some(Unwanted::Drop) | None) => Unwanted::Drop,
                _ => Unwanted::Skip,
            };
        };
        let whole = match self.framing {
            Framing::Length(n) => length_units(packet, n).all(|u| u.map(&mut each).is_some()),
            Framing::AnnexB => {
                annex_b_units(packet).for_each(&mut each);
                true
            }
        };
        match verdict {
            Unwanted::Drop if !whole || slices == 0 => Unwanted::Skip,
            v => v,
        }
    }
}

/// One H.264 NAL unit: `Drop` for a non-reference slice, `None` for units
/// that go with a picture but no other (SEI, delimiters, filler), `Skip`
/// for anything the decoder must see (reference slices, parameter sets).
fn h264_unit(unit: &[u8]) -> Option<Unwanted> {
    let &header = unit.first()?;
    let (ref_idc, kind) = (header >> 5 & 3, header & 0x1f);
    match kind {
        1 if ref_idc == 0 => Some(Unwanted::Drop),
        6 | 9 | 12 => None,
        _ => Some(Unwanted::Skip),
    }
}

const HEVC_SPS: u8 = 33;

fn hevc_type(unit: &[u8]) -> Option<u8> {
    unit.first().map(|b| b >> 1 & 0x3f)
}

/// One HEVC NAL unit, as [`h264_unit`]; a sub-layer non-reference picture
/// below the stream's highest sub-layer (or with that layer unknown) is
/// `Decode`: pictures of higher sub-layers may reference it.
fn hevc_unit(unit: &[u8], top: Option<u8>) -> Option<Unwanted> {
    let kind = hevc_type(unit)?;
    let temporal_id = unit.get(1).map(|b| (b & 7).saturating_sub(1));
    match kind {
        // Sub-layer non-reference VCL types: TRAIL_N, TSA_N, STSA_N,
        // RADL_N, RASL_N and the reserved RSV_VCL_N10/12/14.
        0..=14 if kind % 2 == 0 => match (temporal_id, top) {
            (Some(t), Some(top)) if t >= top => Some(Unwanted::Drop),
            _ => Some(Unwanted::Decode),
        },
        // Access unit delimiter, end of sequence/bitstream excluded, filler,
        // prefix and suffix SEI.
        35 | 38 | 39 | 40 => None,
        _ => Some(Unwanted::Skip),
    }
}

/// The NAL units of length-prefixed data (`n`-byte lengths); an item is
/// `None` where a length runs past the data.
pub(crate) fn length_units(data: &[u8], n: usize) -> impl Iterator<Item = Option<&[u8]>> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let data = rest.filter(|d| !d.is_empty())?;
        let Some((len, tail)) = data.split_at_checked(n) else {
            rest = None;
            return Some(None);
        };
        let len = len.iter().fold(0usize, |acc, &b| acc << 8 | usize::from(b));
        match tail.split_at_checked(len) {
            Some((unit, after)) => {
                rest = Some(after);
                Some(Some(unit))
            }
            None => {
                rest = None;
                Some(None)
            }
        }
    })
}

/// The NAL units of Annex B data (after each `00 00 01` start code, up to
/// the next one; trailing zero bytes stay with the unit, which only its
/// header is read from).
pub(crate) fn annex_b_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let next_start = |d: &[u8]| d.windows(3).position(|w| w == [0, 0, 1]);
    let mut rest = next_start(data).map(|i| &data[i + 3..]);
    std::iter::from_fn(move || {
        let d = rest?;
        let end = next_start(d);
        rest = end.map(|i| &d[i + 3..]);
        Some(&d[..end.unwrap_or(d.len())])
    })
}

/// The NAL units stored in an `hvcC` box's arrays (after its 23-byte
/// header); stops at the first length that runs past the data.
fn hvcc_units(hvcc: &[u8]) -> impl Iterator<Item = &[u8]> {
    let arrays = hvcc.get(22).copied().unwrap_or(0);
    let mut at = 23;
    let mut left_in_array = 0u16;
    let mut arrays_left = arrays;
    std::iter::from_fn(move || {
        while left_in_array == 0 {
            arrays_left = arrays_left.checked_sub(1)?;
            let count = hvcc.get(at + 1..at + 3)?;
            left_in_array = u16::from_be_bytes([count[0], count[1]]);
            at += 3;
        }
        left_in_array -= 1;
        let len = hvcc.get(at..at + 2)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let unit = hvcc.get(at + 2..at + 2 + len)?;
        at += 2 + len;
        Some(unit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avcc(units: &[&[u8]]) -> Vec<u8> {
        units
            .iter()
            .flat_map(|u| (u.len() as u32).to_be_bytes().into_iter().chain(u.iter().copied()))
            .collect()
    }

    const H264_AVCC: [u8; 7] = [1, 0x64, 0, 0x1f, 0xff, 0xe1, 0];

    #[test]
    fn h264_non_reference_slices_are_dropped() {
        let units = NalUnits::new("h264", &H264_AVCC).unwrap();
        // AUD, SEI, a slice with nal_ref_idc 0.
        assert_eq!(
            units.unwanted(&avcc(&[&[0x09, 0xf0], &[0x06, 5, 1], &[0x01, 0x9a]])),
            Unwanted::Drop
        );
        // nal_ref_idc 2: referenced.
        assert_eq!(units.unwanted(&avcc(&[&[0x41, 0x9a]])), Unwanted::Skip);
        // A parameter set rides along: the decoder must see it.
        assert_eq!(units.unwanted(&avcc(&[&[0x68, 1], &[0x01, 0x9a]])), Unwanted::Skip);
        // No slice at all, or a length past the end: not understood.
        assert_eq!(units.unwanted(&avcc(&[&[0x06, 5]])), Unwanted::Skip);
        let mut cut = avcc(&[&[0x01, 0x9a, 0x10]]);
        cut.pop();
        assert_eq!(units.unwanted(&cut), Unwanted::Skip);
        assert_eq!(units.unwanted(&[]), Unwanted::Skip);
    }

    #[test]
    fn h264_annex_b_is_read_by_start_codes() {
        let units = NalUnits::new("h264", &[]).unwrap();
        assert_eq!(
            units.unwanted(&[0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x01, 0x9a, 0x00]),
            Unwanted::Drop
        );
        assert_eq!(
            units.unwanted(&[0, 0, 1, 0x01, 0x9a, 0, 0, 1, 0x65, 0x88]),
            Unwanted::Skip
        );
    }

    /// An hvcC box with one SPS whose sps_max_sub_layers_minus1 is `top`.
    fn hvcc(top: u8) -> Vec<u8> {
        let mut b = vec![1u8; 21];
        b.extend([0x0f, 1]); // 4-byte lengths; one array
        b.extend([HEVC_SPS, 0, 1, 0, 3, HEVC_SPS << 1, 1, top << 1]);
        b
    }

    fn hevc_nal(kind: u8, temporal_id: u8) -> [u8; 3] {
        [kind << 1, temporal_id + 1, 0xaf]
    }

    #[test]
    fn hevc_drops_only_the_top_sub_layer() {
        let flat = NalUnits::new("hevc", &hvcc(0)).unwrap();
        assert_eq!(flat.unwanted(&avcc(&[&hevc_nal(0, 0)])), Unwanted::Drop); // TRAIL_N
        assert_eq!(flat.unwanted(&avcc(&[&hevc_nal(1, 0)])), Unwanted::Skip); // TRAIL_R
        assert_eq!(
            flat.unwanted(&avcc(&[&hevc_nal(35, 0), &hevc_nal(8, 0)])),
            Unwanted::Drop
        ); // AUD, RASL_N
        let layered = NalUnits::new("hevc", &hvcc(2)).unwrap();
        assert_eq!(layered.unwanted(&avcc(&[&hevc_nal(0, 1)])), Unwanted::Decode);
        assert_eq!(layered.unwanted(&avcc(&[&hevc_nal(0, 2)])), Unwanted::Drop);
        // No SPS to read the layer count from: never skipped.
        let unknown = NalUnits::new("hevc", &[]).unwrap();
        assert_eq!(unknown.unwanted(&[0, 0, 1, 0, 1, 0xaf]), Unwanted::Decode);
        assert_eq!(unknown.unwanted(&[0, 0, 1, 2, 1, 0xaf]), Unwanted::Skip);
    }

    /// Packets and extradata of random bytes (lengths past the end, start
    /// codes anywhere) get a verdict, never a panic.
    #[test]
    fn random_bytes_get_a_verdict() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0x9e37_79b9_7f4a_7c15);
        let mut next = move || rng.random::<u64>();
        for _ in 0..5000 {
            let len = (next() % 64) as usize;
            // Half of them small, which makes start codes and short lengths common.
            let small = next() % 2 == 0;
            let bytes: Vec<u8> = (0..len)
                .map(|_| if small { (next() % 3) as u8 } else { next() as u8 })
                .collect();
            let mut extradata = bytes.clone();
            extradata.insert(0, (next() % 2) as u8);
            for codec in ["h264", "hevc"] {
                for extra in [&extradata[..], &H264_AVCC, &hvcc(1), &[]] {
                    let units = NalUnits::new(codec, extra).unwrap();
                    let _ = units.unwanted(&bytes);
                }
            }
        }
    }

    #[test]
    fn other_codecs_are_left_to_ffmpeg() {
        assert!(NalUnits::new("vp9", &[]).is_none());
    }
}

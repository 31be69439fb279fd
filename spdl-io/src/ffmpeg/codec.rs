//! Decoder settings and raw packet/frame fields that ffmpeg-next does not
//! expose: thread count and type, skipping non-reference frames, the
//! packet flags it drops, a frame's best-effort timestamp.

use std::os::raw::c_int;

use ff::ffi;
use ffmpeg_next as ff;

/// A packet's raw `AV_PKT_FLAG_*` bits (ffmpeg-next's `flags()` keeps only
/// the key and corrupt bits, dropping `AV_PKT_FLAG_DISCARD`).
pub(crate) fn packet_flags(packet: &ff::Packet) -> c_int {
    use ff::packet::Ref;
    // SAFETY: reading a plain field of a packet we borrow.
    unsafe { (*packet.as_ptr()).flags }
}

/// Sets the timestamp a decoded frame reports (its best-effort pts).
pub(crate) fn set_best_effort_timestamp(frame: &mut ff::Frame, pts: i64) {
    // SAFETY: writing a plain field of a frame we own.
    unsafe { (*frame.as_mut_ptr()).best_effort_timestamp = pts };
}

/// Sets the decoder's thread count (0 lets FFmpeg pick one per core) and
/// allows both frame and slice threading, as the `ffmpeg` CLI does.
pub(crate) fn set_decoder_threads(ctx: &mut ff::codec::Context, threads: usize) {
    // SAFETY: the codec context is not opened yet; these fields are plain
    // integers that avcodec_open2 reads.
    unsafe {
        let c = ctx.as_mut_ptr();
        (*c).thread_count = threads.min(64) as c_int;
        (*c).thread_type = (ffi::FF_THREAD_FRAME | ffi::FF_THREAD_SLICE) as c_int;
    }
}

/// Makes the decoder skip (or stop skipping) frames that no other frame
/// references. Reference frames still decode, so every frame that is output
/// is bit-identical to a full decode.
pub(crate) fn set_skip_nonref(decoder: &mut ff::decoder::Video, skip: bool) {
    // SAFETY: `skip_frame` is a plain field that the decoder reads for each
    // packet (frame threads copy it at submission); the context is open and
    // owned by `decoder`.
    unsafe {
        (*decoder.as_mut_ptr()).skip_frame = if skip {
            ffi::AVDiscard::AVDISCARD_NONREF
        } else {
            ffi::AVDiscard::AVDISCARD_DEFAULT
        };
    }
}

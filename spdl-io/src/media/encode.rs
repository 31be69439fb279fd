//! The muxing step the video and audio writers share: every packet an
//! encoder has ready, timed in the container's time base, written to
//! stream 0 of the output.

use ffmpeg_next as ff;

/// Writes the packets `encoder` has ready. A packet without a duration
/// gets `default_duration` (encoder time base), so the container's length
/// (and an MP4 edit list) covers the last frame; an empty packet (FLAC's
/// final header update, side data only, which FFmpeg 5.1's muxer refuses)
/// is skipped, so that header keeps the values written at the start.
pub(crate) fn write_packets(
    encoder: &mut ff::encoder::Encoder,
    output: &mut ff::format::context::Output,
    encoder_tb: ff::Rational,
    default_duration: i64,
) -> Result<(), ff::Error> {
    let stream_tb = output.stream(0).map_or(encoder_tb, |s| s.time_base());
    let mut packet = ff::Packet::empty();
    while encoder.receive_packet(&mut packet).is_ok() {
        if packet.size() == 0 {
            continue;
        }
        if packet.duration() == 0 {
            packet.set_duration(default_duration);
        }
        packet.set_stream(0);
        packet.rescale_ts(encoder_tb, stream_tb);
        packet.write_interleaved(output)?;
    }
    Ok(())
}

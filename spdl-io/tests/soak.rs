//! Memory stays flat over thousands of decodes: every FFmpeg context,
//! custom I/O context, symphonia reader and output buffer is freed. RSS is
//! read after a warm-up (allocator pools, thread-local decoders and
//! scalers settle) and again at the end.

use std::path::PathBuf;

use spdl_io::{
    load_audio, load_image, load_video, sample_frames, AudioBackend, AudioConfig, ImageConfig, Source, VideoConfig,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(name)
}

/// Resident set size of this process in KiB (Linux).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn rss_is_flat_over_thousands_of_decodes() {
    let video = std::fs::read(fixture("h264_yuv420p.mp4")).unwrap();
    let broken = std::fs::read(fixture("truncated_h264.mp4")).unwrap();
    let round = |i: usize| {
        let small = VideoConfig::default().with_size(32, 32);
        let v = load_video(Source::from_bytes(video.clone(), format!("v{i}")), &small).unwrap();
        assert!(!v.is_empty());
        sample_frames(fixture("h264_yuv420p.mp4"), &[3, 1], &small).unwrap();
        let _ = load_video(Source::from_bytes(broken.clone(), "broken"), &small);
        load_image(
            fixture("images/jpeg_baseline_420.jpg"),
            &ImageConfig::default().with_size(64, 64),
        )
        .unwrap();
        load_image(fixture("images/png_rgba8.png"), &ImageConfig::default()).unwrap();
        let _ = load_image(fixture("images/truncated.jpg"), &ImageConfig::default());
        for (file, backend) in [
            ("audio/flac_s16_44100_stereo.flac", AudioBackend::Symphonia),
            ("audio/pcm_s16le_44100_stereo.wav", AudioBackend::Pcm),
            ("audio/mp3_cbr_128k_44100_stereo.mp3", AudioBackend::Ffmpeg),
        ] {
            load_audio(fixture(file), &AudioConfig::default().with_backend(backend)).unwrap();
        }
    };
    for i in 0..40 {
        round(i);
    }
    let warm = rss_kib();
    let rounds = 300; // 3,000 decodes
    for i in 0..rounds {
        round(i);
    }
    let end = rss_kib();
    let growth = end.saturating_sub(warm);
    eprintln!("RSS {warm} -> {end} KiB over {rounds} rounds");
    // A leak of one small frame or context per decode would add megabytes
    // over 3,000 decodes; allow 8 MiB of allocator noise.
    assert!(
        growth < 8 * 1024,
        "RSS grew {growth} KiB over {rounds} rounds ({warm} -> {end} KiB)"
    );
}

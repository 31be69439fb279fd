//! Bad input returns an error naming the source, never a crash: missing,
//! empty, non-media, truncated at many prefixes, and bit-flipped files, and
//! limits that stop forged sizes before allocation.

mod common;

use common::*;
use spdl_io::{load_video, sample_frames, Error, Limits, Source, VideoConfig};

#[test]
fn missing_file_is_not_found() {
    let err = load_video("/nonexistent/clip.mp4", &VideoConfig::default()).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/clip.mp4"));
}

#[test]
fn broken_fixtures_fail_cleanly_or_decode_partially() {
    for e in manifest().into_iter().filter(|e| e.expect != "ok") {
        let path = fixture(&e.file);
        match load_video(&path, &VideoConfig::default()) {
            Ok(v) => assert_eq!(e.expect, "partial", "{} decoded {} frames", e.file, v.len()),
            Err(err) => assert!(err.to_string().contains(&e.file), "{}: {err}", e.file),
        }
    }
}

#[test]
fn a_truncated_file_is_reported_as_truncated_where_it_is_cut() {
    let err = load_video(fixture("truncated_h264.mp4"), &VideoConfig::default()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Decode {
                at: spdl_io::Position::Pts(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("the file is truncated or corrupt here"),
        "{err}"
    );
    // Frames before the cut still load.
    let head = load_video(
        fixture("truncated_h264.mp4"),
        &VideoConfig::default().with_window(0.0, 0.8),
    )
    .unwrap();
    assert_eq!(head.len(), 20);
}

#[test]
fn empty_and_non_media_files_are_open_errors() {
    for name in ["empty.mp4", "not_media.mp4"] {
        let err = load_video(fixture(name), &VideoConfig::default()).unwrap_err();
        assert!(matches!(err, Error::Open { .. }), "{name}: {err:?}");
    }
    // FFmpeg's log says more than its return code ("Invalid data found").
    let err = load_video(fixture("not_media.mp4"), &VideoConfig::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("(FFmpeg: [mov,mp4,m4a,3gp,3g2,mj2] moov atom not found)"),
        "{err}"
    );
}

/// A deterministic xorshift generator, so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn decode_bytes(data: Vec<u8>, name: &str) -> Result<usize, Error> {
    let config = VideoConfig::default().with_size(32, 32);
    load_video(Source::from_bytes(data, name), &config).map(|v| v.len())
}

#[test]
fn every_fixture_truncated_at_many_prefixes_never_crashes() {
    for e in decodable() {
        let data = std::fs::read(fixture(&e.file)).unwrap();
        let cuts = 24;
        for k in 0..cuts {
            let len = data.len() * k / cuts;
            let name = format!("{}[..{len}]", e.file);
            if let Err(err) = decode_bytes(data[..len].to_vec(), &name) {
                assert!(err.to_string().contains(&name), "{err}");
            }
        }
    }
}

#[test]
fn every_fixture_with_flipped_bytes_never_crashes() {
    let mut rng = Rng(0x5eed);
    for e in decodable() {
        let data = std::fs::read(fixture(&e.file)).unwrap();
        for round in 0..12 {
            let mut bad = data.clone();
            let flips = 1 + (rng.next() % 16) as usize;
            for _ in 0..flips {
                let i = (rng.next() % bad.len() as u64) as usize;
                bad[i] ^= 1 << (rng.next() % 8);
            }
            let name = format!("{}#flip{round}", e.file);
            if let Err(err) = decode_bytes(bad.clone(), &name) {
                assert!(err.to_string().contains(&name), "{err}");
            }
            let _ = sample_frames(Source::from_bytes(bad, name), &[0, 5, 2], &VideoConfig::default());
        }
    }
}

#[test]
fn pixel_limit_stops_large_frames_before_decoding() {
    let limits = Limits::default().with_max_pixels(100 * 100);
    let err = load_video(fixture("h264_yuv420p.mp4"), &VideoConfig::default().with_limits(limits)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Limit {
                what: "pixels per frame",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn frame_and_byte_limits_stop_the_output() {
    let limits = Limits::default().with_max_frames(10);
    let err = load_video(fixture("long_h264.mp4"), &VideoConfig::default().with_limits(limits)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Limit {
                what: "frame count",
                limit: 10,
                ..
            }
        ),
        "{err:?}"
    );
    let limits = Limits::default().with_max_output_bytes(1 << 20);
    let err = load_video(fixture("long_h264.mp4"), &VideoConfig::default().with_limits(limits)).unwrap_err();
    assert!(matches!(err, Error::Limit { .. }), "{err:?}");
}

#[test]
fn input_size_limit_is_checked_before_opening() {
    let limits = Limits::default().with_max_input_bytes(1000);
    let err = load_video(fixture("h264_yuv420p.mp4"), &VideoConfig::default().with_limits(limits)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Limit {
                what: "input size in bytes",
                ..
            }
        ),
        "{err:?}"
    );
}

/// An HLS playlist naming `segments`, one per line.
fn playlist(segments: &[String]) -> String {
    let mut text = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n");
    for s in segments {
        text.push_str(&format!("#EXTINF:1.0,\n{s}\n"));
    }
    text + "#EXT-X-ENDLIST\n"
}

/// A playlist (HLS) can name other files and URLs. By default it is
/// refused by format; from bytes or a remote object it may open none of
/// them even when trusted; from a trusted local path only local files,
/// never the network. Hostile media cannot read other files into frames.
#[test]
fn playlists_cannot_open_other_files_or_the_network() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("playlists");
    std::fs::create_dir_all(&dir).unwrap();
    let segment = dir.join("segment.ts");
    std::fs::copy(fixture("mpeg2_yuv420p.ts"), &segment).unwrap();
    let local = playlist(&[format!("file://{}", segment.display())]);
    let trusted = VideoConfig::default().with_limits(Limits::default().with_trusted_input(true));
    // As bytes, even trusted: the local segment is refused.
    let from_bytes = load_video(Source::from_bytes(local.clone().into_bytes(), "list.m3u8"), &trusted);
    assert!(
        from_bytes.map_or(true, |v| v.frames.is_empty()),
        "a playlist in memory read a local file"
    );
    // From a path: refused by default, naming the format ...
    let path = dir.join("local.mp4");
    std::fs::write(&path, &local).unwrap();
    let err = load_video(&path, &VideoConfig::default()).unwrap_err();
    assert!(err.to_string().contains("`hls`"), "{err}");
    // ... and trusted, local segments play (a local HLS copy).
    let video = load_video(&path, &trusted).unwrap();
    assert!(!video.frames.is_empty());
    // A URL segment is never requested, trusted or not.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/segment.ts", listener.local_addr().unwrap());
    let path = dir.join("remote.m3u8");
    std::fs::write(&path, playlist(&[url])).unwrap();
    for config in [VideoConfig::default(), trusted] {
        let remote = load_video(&path, &config);
        assert!(remote.map_or(true, |v| v.frames.is_empty()));
    }
    assert!(
        listener.accept().is_err(),
        "FFmpeg connected to the URL a playlist named"
    );
}

#[test]
fn ffmpeg_failures_keep_ffmpegs_status_as_the_cause() {
    use std::error::Error as _;
    // AVERROR_INVALIDDATA: FFERRTAG('I','N','D','A').
    const INVALIDDATA: i32 = -0x41444e49;
    let err = load_video(fixture("not_media.mp4"), &VideoConfig::default()).unwrap_err();
    let cause = err.source().and_then(|c| c.downcast_ref::<spdl_io::FfmpegError>());
    assert_eq!(cause.map(spdl_io::FfmpegError::code), Some(INVALIDDATA), "{err:?}");
    // A decode failure mid-stream keeps the decoder's status too.
    let err = load_video(fixture("truncated_h264.mp4"), &VideoConfig::default()).unwrap_err();
    match &err {
        Error::Decode { cause, .. } | Error::Demux { cause, .. } => {
            assert!(cause.as_ref().is_some_and(|c| c.code() < 0), "{err:?}")
        }
        other => panic!("{other:?}"),
    }
}

/// Devices are refused before any read (`/dev/zero` never ends); a pipe
/// still works, read at most up to the input limit.
#[test]
fn devices_are_refused_and_pipes_are_bounded() {
    use spdl_io::{load_audio, load_image, AudioConfig, ImageConfig};
    for device in ["/dev/zero", "/dev/urandom"] {
        let errors = [
            load_image(device, &ImageConfig::default()).unwrap_err(),
            load_video(device, &VideoConfig::default()).unwrap_err(),
            load_audio(device, &AudioConfig::default()).unwrap_err(),
        ];
        for err in errors {
            assert!(err.to_string().contains("a device, not a media file"), "{err}");
        }
    }
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fifos");
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = |name: &str, data: Vec<u8>| {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        let status = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
        assert!(status.success());
        let writer_path = path.clone();
        // The writer may hit a closed pipe once the reader has had enough.
        std::thread::spawn(move || drop(std::fs::write(writer_path, data)));
        path
    };
    let png = std::fs::read(fixture("images/png_rgb8.png")).unwrap();
    let image = load_image(fifo("image.png", png.clone()), &ImageConfig::default()).unwrap();
    assert_eq!(image.shape()[2], 3);
    let small = ImageConfig::default().with_limits(Limits::default().with_max_input_bytes(100));
    let err = load_image(fifo("big.png", png), &small).unwrap_err();
    assert!(matches!(err, Error::Limit { .. }), "{err:?}");
}

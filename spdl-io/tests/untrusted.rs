//! Untrusted inputs: a file can make the loader read nothing but itself.
//! Formats that reference other files or URLs, or turn text into video,
//! are refused by default, naming the format and the switch that allows
//! them; nothing they name is ever opened. (Playlists over HTTP and local
//! files: `bad_input.rs`.)

mod common;

use std::path::PathBuf;

use common::fixture;
use spdl_io::{load_audio, load_video, probe, AudioConfig, Error, Limits, Source, VideoConfig};

fn dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("untrusted");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `contents` written as `name` is refused by default, naming `format`.
fn refused(name: &str, contents: &str, format: &str) -> PathBuf {
    let path = dir().join(name);
    std::fs::write(&path, contents).unwrap();
    let err = probe(&path).unwrap_err();
    assert!(matches!(err, Error::Open { .. }), "{name}: {err:?}");
    let text = err.to_string();
    assert!(text.contains(&format!("`{format}`")), "{name}: {text}");
    assert!(text.contains("trusted_input"), "{name}: says how to allow it: {text}");
    path
}

#[test]
fn reference_following_and_text_formats_are_refused_by_name() {
    let target = fixture("h264_yuv420p.mp4");
    // A concat list naming a real fixture (as a file any name could have).
    refused(
        "clip.mp4",
        &format!("ffconcat version 1.0\nfile '{}'\n", target.display()),
        "concat",
    );
    // A DASH manifest naming a segment.
    let mpd = format!(
        r#"<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011" type="static" mediaPresentationDuration="PT1S"><Period><AdaptationSet><Representation id="1" bandwidth="1"><BaseURL>{}</BaseURL></Representation></AdaptationSet></Period></MPD>"#,
        target.display()
    );
    refused("manifest.mpd", &mpd, "dash");
    // Text (ANSI art) rendered as video frames.
    let ansi = "\x1b\r\n\t\x1b\r\n\tplain text with a few control codes, drawn as video frames by FFmpeg\r\n";
    refused("art.ans", ansi, "tty");
}

#[test]
fn the_same_from_memory_and_in_audio_loads() {
    let list = format!(
        "ffconcat version 1.0\nfile '{}'\n",
        fixture("audio/pcm_s16le_16000_mono.wav").display()
    );
    let err = load_audio(Source::from_bytes(list.into_bytes(), "a.wav"), &AudioConfig::default()).unwrap_err();
    assert!(err.to_string().contains("`concat`"), "{err}");
}

#[test]
fn trusted_input_demuxes_them_but_still_opens_nothing_from_memory() {
    let list = format!(
        "ffconcat version 1.0\nfile '{}'\n",
        fixture("h264_yuv420p.mp4").display()
    );
    let trusted = VideoConfig::default().with_limits(Limits::default().with_trusted_input(true));
    // Allowed as a format, the list still cannot open the file it names.
    let result = load_video(Source::from_bytes(list.into_bytes(), "list.txt"), &trusted);
    assert!(
        result.map_or(true, |v| v.frames.is_empty()),
        "a list in memory read a file"
    );
}

#[test]
fn every_fixture_container_is_allowed_by_default() {
    // Each container kind of the fixtures opens with the default limits.
    for name in [
        "h264_yuv420p.mp4",
        "hevc_yuv420p.mkv",
        "vp9_yuv420p.webm",
        "mpeg4_yuv420p.avi",
        "mpeg2_yuv420p.ts",
        "mpeg2_yuv420p.mpg",
        "h264_annexb.h264",
        "mjpeg_raw.mjpeg",
        "mjpeg_yuvj420p.mov",
        "audio/pcm_s16le_16000_mono.wav",
        "audio/flac_s16_44100_stereo.flac",
        "audio/flac_s16_44100_stereo.oga",
        "audio/mp3_cbr_128k_44100_stereo.mp3",
        "audio/aac_lc_48000_stereo.aac",
        "images/jpeg2000_rgb.jp2",
        "images/avif_lossless_rgb.avif",
    ] {
        let info = probe(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!info.streams.is_empty(), "{name}");
    }
}

/// A file whose name is an image-sequence pattern reads only itself: the
/// pattern is never expanded into other files' names.
#[test]
fn an_image_sequence_pattern_reads_only_its_own_file() {
    let dir = dir().join("pattern");
    std::fs::create_dir_all(&dir).unwrap();
    let own = std::fs::read(fixture("images/png_rgb8.png")).unwrap();
    let other = std::fs::read(fixture("images/png_gray8.png")).unwrap();
    std::fs::write(dir.join("seq%d.png"), &own).unwrap();
    for n in 0..3 {
        std::fs::write(dir.join(format!("seq{n}.png")), &other).unwrap();
    }
    let video = load_video(dir.join("seq%d.png"), &VideoConfig::default()).unwrap();
    let alone = load_video(Source::from_bytes(own, "own.png"), &VideoConfig::default()).unwrap();
    assert_eq!(video.frames, alone.frames, "decoded another file than the one named");
}

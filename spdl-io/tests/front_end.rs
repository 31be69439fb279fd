//! What the front ends (CLI, Python) rely on the library for: every enum a
//! user passes as text parses with `FromStr` and refuses other names with
//! the accepted ones listed; configs check themselves with `validate()`;
//! `probe_kind` tells images, videos and audio apart.

mod common;

use common::fixture;
use spdl_io::audio::{AudioBackend, AudioConfig, ChannelOrder};
use spdl_io::image::{FailurePolicy, Fit, ImageConfig};
use spdl_io::media::{Interpolation, PixelFormat};
use spdl_io::video::VideoConfig;
use spdl_io::{probe_kind, Error, MediaKind};

/// `names` parse to `values`; `bad` is an InvalidConfig listing `listed`.
fn parses<T: std::str::FromStr<Err = Error> + PartialEq + std::fmt::Debug>(
    names: &[(&str, T)],
    bad: &str,
    listed: &str,
) {
    for (name, want) in names {
        assert_eq!(&name.parse::<T>().unwrap(), want, "{name}");
    }
    let err = bad.parse::<T>().unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err:?}");
    assert!(err.to_string().contains(listed), "{err}");
}

#[test]
fn every_text_option_parses_and_lists_the_choices_when_wrong() {
    parses(
        &[("rgb24", PixelFormat::Rgb24), ("gray", PixelFormat::Gray8)],
        "rgb48",
        "yuv444p",
    );
    parses(&[("lanczos", Interpolation::Lanczos)], "cubic", "bicubic");
    parses(
        &[("cover", Fit::Cover), ("stretch", Fit::Stretch)],
        "contain",
        "stretch, cover",
    );
    parses(
        &[("pcm", AudioBackend::Pcm), ("auto", AudioBackend::Auto)],
        "sox",
        "symphonia",
    );
    parses(
        &[("interleaved", ChannelOrder::Interleaved)],
        "planar",
        "channels_first",
    );
    parses(
        &[("raise", FailurePolicy::Strict), ("skip", FailurePolicy::Skip)],
        "ignore",
        "strict",
    );
}

#[test]
fn configs_validate_what_does_not_depend_on_a_source() {
    assert!(ImageConfig::default().with_size(224, 224).validate().is_ok());
    let err = ImageConfig::default().with_size(0, 224).validate().unwrap_err();
    assert!(err.to_string().contains("size must be 1..=65536"), "{err}");
    let yuv = ImageConfig::default().with_pix_fmt(PixelFormat::Yuv420p);
    assert!(yuv
        .validate()
        .unwrap_err()
        .to_string()
        .contains("not an image output format"));

    assert!(VideoConfig::default().with_window(1.0, 2.0).validate().is_ok());
    assert!(VideoConfig::default().with_window(2.0, 1.0).validate().is_err());
    assert!(VideoConfig::default().with_frame_rate(0, 1).validate().is_err());
    assert!(VideoConfig::default().with_frame_rate(20_000, 1).validate().is_err());
    assert!(VideoConfig::default().with_frame_rate(30_000, 1001).validate().is_ok());

    assert!(AudioConfig::default().with_sample_rate(16_000).validate().is_ok());
    let err = AudioConfig::default().with_sample_rate(0).validate().unwrap_err();
    assert!(err.to_string().contains("sample_rate must be 1000..=768000"), "{err}");
    // Accepted rates give audio: 1 Hz used to pass the check and then fail
    // as "no audio samples could be decoded".
    assert!(AudioConfig::default().with_sample_rate(1).validate().is_err());
    let low = AudioConfig::default().with_sample_rate(1000);
    let audio = spdl_io::load_audio(fixture("audio/flac_s16_44100_stereo.flac"), &low).unwrap();
    assert_eq!(audio.samples.shape()[1], 1000);
    assert!(AudioConfig::default().with_channels(65).validate().is_err());
    assert!(AudioConfig::default().with_window(f64::NAN, 1.0).validate().is_err());
}

#[test]
fn loads_refuse_a_config_that_does_not_validate() {
    let err = spdl_io::load_image(
        fixture("images/png_rgb8.png"),
        &ImageConfig::default().with_size(70_000, 10),
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err:?}");
    let audio = AudioConfig::default().with_channels(0);
    let err = spdl_io::load_audio(fixture("audio/pcm_s16le_16000_mono.wav"), &audio).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err:?}");
}

#[test]
fn probe_kind_tells_images_videos_and_audio_apart() {
    let kind = |name: &str| probe_kind(fixture(name));
    match kind("images/jpeg_baseline_420.jpg").unwrap() {
        MediaKind::Image(info) => assert_eq!(info.format, "jpeg"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(kind("h264_aac.mp4").unwrap(), MediaKind::Video(_)));
    // JPEG frames back to back: a video, not an image.
    assert!(matches!(kind("mjpeg_raw.mjpeg").unwrap(), MediaKind::Video(_)));
    match kind("audio/pcm_s16le_16000_mono.wav").unwrap() {
        MediaKind::Audio(info) => assert_eq!(info.streams[0].params.sample_rate, 16_000),
        other => panic!("{other:?}"),
    }
    // Cover art is not a video.
    assert!(matches!(
        kind("audio/mp3_cover_art_44100_mono.mp3").unwrap(),
        MediaKind::Audio(_)
    ));
    // A recognised but broken image keeps its own error.
    let err = kind("images/bad_crc_ihdr.png").unwrap_err();
    assert!(
        matches!(err, Error::Image { ref format, .. } if format == "png"),
        "{err:?}"
    );
    assert!(matches!(kind("not_media.mp4").unwrap_err(), Error::Open { .. }));
    assert!(matches!(kind("no_such_file.mp4").unwrap_err(), Error::NotFound { .. }));
}

#[test]
fn stream_info_serializes_its_codec_parameters_inline() {
    let info = spdl_io::probe(fixture("h264_aac.mp4")).unwrap();
    let video = &info.streams[0];
    assert_eq!(video.params.codec, "h264");
    let json = serde_json::to_value(video).unwrap();
    assert_eq!(json["codec"], "h264");
    assert_eq!(json["width"], u64::from(video.params.width));
    assert!(json.get("params").is_none());
}

//! FFmpeg filter chains (`VideoConfig::with_filter`) against the `ffmpeg`
//! CLI running the same chain: byte for byte, frame counts and times; the
//! typed path and the filter path agree where they express the same
//! operation; a broken chain is a clean error naming it and the source.

mod common;

use common::*;
use spdl_io::video::VideoReader;
use spdl_io::{load_video, stream_video, Error, VideoConfig};

const CHAINS: [&str; 5] = [
    "hflip",
    "crop=120:80:10:20",
    "pad=360:360:10:10:black",
    "eq=brightness=0.1:contrast=1.2,vflip",
    "fps=10",
];

#[test]
fn filter_chains_match_the_ffmpeg_cli_byte_for_byte() {
    for file in [
        "h264_yuv420p.mp4",
        "vp9_yuv420p.webm",
        "mpeg2_yuv420p.ts",
        "h264_start_offset.mp4",
        "h264_rotate90.mp4",
        "h264_rotate270.mp4",
    ] {
        let path = fixture(file);
        for chain in CHAINS {
            let config = VideoConfig::default().with_filter(chain);
            let video = load_video(&path, &config).unwrap_or_else(|e| panic!("{file} {chain}: {e}"));
            let expected = ffmpeg_raw(&path, "rgb24", Some(chain), "bilinear");
            let what = format!("{file} with {chain:?}: {:?}", video.frames.shape());
            assert_eq!(video.frames.len(), expected.len(), "{what}");
            assert_eq!(diff(video.frames.as_slice().unwrap(), &expected).0, 0, "{what}");
            assert!(video.pts.windows(2).all(|w| w[1] > w[0]), "{what}: increasing times");
        }
    }
}

#[test]
fn fps_filter_times_frames_on_its_grid() {
    let path = fixture("h264_yuv420p.mp4"); // 2 s at 25 fps
    let video = load_video(&path, &VideoConfig::default().with_filter("fps=10")).unwrap();
    assert_eq!(video.len(), 20);
    for (k, t) in video.pts.iter().enumerate() {
        assert!((t - k as f64 / 10.0).abs() < 1e-9, "frame {k} at {t}");
    }
}

#[test]
fn typed_crop_and_filter_crop_agree() {
    let path = fixture("h264_yuv444p.mp4");
    let typed = load_video(
        &path,
        &VideoConfig::default().with_crop(spdl_io::media::Crop {
            left: 10,
            top: 20,
            width: 120,
            height: 80,
        }),
    )
    .unwrap();
    let filtered = load_video(&path, &VideoConfig::default().with_filter("crop=120:80:10:20")).unwrap();
    assert_eq!(typed.frames, filtered.frames);
    assert_eq!(typed.pts, filtered.pts);
}

#[test]
fn streamed_and_windowed_loads_filter_too() {
    let path = fixture("long_h264.mp4");
    let config = VideoConfig::default().with_size(64, 48).with_filter("hflip");
    let whole = load_video(&path, &config).unwrap();
    let chunks: Vec<_> = stream_video(&path, &config, 32).unwrap().map(|c| c.unwrap()).collect();
    let joined: usize = chunks.iter().map(|c| c.len()).sum();
    assert_eq!(joined, whole.len());
    assert_eq!(chunks[1].frames, whole.frames.slice(ndarray::s![32..64, .., .., ..]));
    let window = load_video(&path, &config.clone().with_window(2.0, 3.0)).unwrap();
    let inside: Vec<f64> = whole.pts.iter().copied().filter(|t| (2.0..3.0).contains(t)).collect();
    assert_eq!(window.pts, inside);
}

#[test]
fn broken_chains_and_unsupported_combinations_are_clean_errors() {
    let path = fixture("h264_yuv420p.mp4");
    // scale=...:flags=nope crashes FFmpeg 5.1 itself; it is refused first.
    for chain in [
        "nosuchfilter",
        "crop=w=oops",
        "scale=-5:-5:flags=nope",
        "scale=64:48:nope",
        "hflip,,",
        "a\0b",
        "",
    ] {
        let err = load_video(&path, &VideoConfig::default().with_filter(chain)).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::InvalidConfig(_)), "{chain:?}: {text}");
        assert!(text.contains("h264_yuv420p.mp4"), "{chain:?}: {text}");
    }
    let rate = VideoConfig::default().with_filter("hflip").with_frame_rate(10, 1);
    assert!(matches!(load_video(&path, &rate), Err(Error::InvalidConfig(_))));
    let reader = VideoReader::open(&path, &VideoConfig::default().with_filter("hflip"));
    assert!(matches!(reader, Err(Error::InvalidConfig(_))));
}

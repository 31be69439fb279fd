//! spdl-io's video decode against the `ffmpeg` CLI on every fixture:
//! frame counts, timestamps and pixels.

mod common;

use common::*;
use spdl_io::{load_video, Interpolation, PixelFormat, VideoConfig};

/// Native-size rgb24 with the same swscale flags as the CLI is bit-exact:
/// both run the same libswscale conversion with the same colour matrix and
/// range, and rotation is a lossless permutation on both sides.
#[test]
fn native_rgb24_matches_ffmpeg_bit_exactly() {
    for e in decodable() {
        let path = fixture(&e.file);
        let video = load_video(&path, &VideoConfig::default()).unwrap_or_else(|err| panic!("{err}"));
        let expected = ffmpeg_raw(&path, "rgb24", None, "bilinear");
        let shape = video.frames.shape().to_vec();
        assert_eq!(
            video.frames.len(),
            expected.len(),
            "{}: {shape:?} vs {} bytes from ffmpeg",
            e.file,
            expected.len()
        );
        if let Some(n) = e.frames {
            assert_eq!(shape[0], n, "{}: frame count", e.file);
        }
        let (max, mean) = diff(video.frames.as_slice().unwrap(), &expected);
        assert_eq!(max, 0, "{}: max diff {max}, mean {mean:.4}", e.file);
    }
}

#[test]
fn pts_match_ffprobe() {
    for e in decodable() {
        let path = fixture(&e.file);
        let video = load_video(&path, &VideoConfig::default()).unwrap();
        let expected = ffprobe_pts(&path);
        assert_eq!(video.pts.len(), expected.len(), "{}", e.file);
        for (i, (a, b)) in video.pts.iter().zip(&expected).enumerate() {
            // ffprobe prints 6 decimals. A frame FFmpeg gives no timestamp
            // (the AVI's last, flushed B-frame; every frame of a raw H.264
            // stream) gets the one after the previous frame's, 40 ms later
            // at 25 fps, and a first frame without one is at 0.
            let after_previous = match i {
                0 => *a == 0.0,
                _ => (a - video.pts[i - 1] - 0.04).abs() < 1e-5,
            };
            assert!(
                (a - b).abs() < 1e-5 || (b.is_nan() && after_previous),
                "{} frame {i}: {a} vs {b}",
                e.file
            );
        }
    }
}

/// Resizing with the same filter as the CLI's `scale` is bit-exact, rotated
/// clips included: like the CLI, spdl-io turns the decoded planes first and
/// then scales.
#[test]
fn resize_224_matches_ffmpeg_scale() {
    for e in decodable() {
        let path = fixture(&e.file);
        let config = VideoConfig::default().with_size(224, 224);
        let video = load_video(&path, &config).unwrap();
        let expected = ffmpeg_raw(&path, "rgb24", Some("scale=224:224"), "bilinear");
        assert_eq!(video.frames.shape()[1..], [224, 224, 3]);
        let (max, mean) = diff(video.frames.as_slice().unwrap(), &expected);
        assert_eq!(max, 0, "{}: max diff {max}, mean {mean:.4}", e.file);
    }
}

/// Every output pixel format against the CLI's `-pix_fmt`, bit-exact.
#[test]
fn pixel_formats_match_ffmpeg() {
    let formats = [
        (PixelFormat::Bgr24, "bgr24"),
        (PixelFormat::Rgba, "rgba"),
        (PixelFormat::Gray8, "gray"),
        (PixelFormat::Yuv420p, "yuv420p"),
        (PixelFormat::Yuv444p, "yuv444p"),
    ];
    for file in [
        "h264_yuv420p.mp4",
        "h264_fullrange.mp4",
        "h264_yuv420p10le.mp4",
        "vp9_yuv420p.webm",
    ] {
        let path = fixture(file);
        for (fmt, name) in formats {
            let video = load_video(&path, &VideoConfig::default().with_pix_fmt(fmt)).unwrap();
            let expected = ffmpeg_raw(&path, name, None, "bilinear");
            let (max, mean) = diff(video.frames.as_slice().unwrap(), &expected);
            assert_eq!(max, 0, "{file} as {name}: max diff {max}, mean {mean:.4}");
        }
    }
}

/// Other interpolation filters map to the same swscale flags as the CLI.
#[test]
fn interpolations_match_ffmpeg() {
    let path = fixture("h264_yuv420p.mp4");
    for (interp, flags) in [
        (Interpolation::Bicubic, "bicubic"),
        (Interpolation::Area, "area"),
        (Interpolation::Nearest, "neighbor"),
        (Interpolation::Lanczos, "lanczos"),
    ] {
        let config = VideoConfig::default().with_size(160, 90).with_interpolation(interp);
        let video = load_video(&path, &config).unwrap();
        let expected = ffmpeg_raw(&path, "rgb24", Some("scale=160:90"), flags);
        let (max, mean) = diff(video.frames.as_slice().unwrap(), &expected);
        assert_eq!(max, 0, "{flags}: max diff {max}, mean {mean:.4}");
    }
}

/// Full and limited range, BT.601 and BT.709 give different RGB for the
/// same YUV; each must follow its tags (checked against the CLI above) and
/// the tags must actually change the output (so the test would catch a
/// converter that ignores them).
#[test]
fn colour_tags_change_the_output() {
    let a = load_video(fixture("h264_yuv420p.mp4"), &VideoConfig::default()).unwrap();
    let b = load_video(fixture("h264_bt601.mp4"), &VideoConfig::default()).unwrap();
    let c = load_video(fixture("h264_fullrange.mp4"), &VideoConfig::default()).unwrap();
    assert_eq!(a.frames.shape(), b.frames.shape());
    assert_ne!(a.frames, b.frames);
    assert_ne!(a.frames, c.frames);
}

#[test]
fn rotation_is_applied_by_default_with_an_opt_out() {
    for e in decodable().into_iter().filter(|e| e.rotation != 0) {
        let path = fixture(&e.file);
        let rotated = load_video(&path, &VideoConfig::default()).unwrap();
        let coded = load_video(&path, &VideoConfig::default().with_rotation(false)).unwrap();
        let (r, c) = (rotated.frames.shape(), coded.frames.shape());
        assert_eq!(
            (r[1], r[2]),
            (c[2], c[1]),
            "{}: a quarter turn swaps width and height",
            e.file
        );
        let expected = ffmpeg_raw(&path, "rgb24", None, "bilinear");
        assert_eq!(rotated.frames.as_slice().unwrap(), &expected[..]);
        let unrotated = {
            let mut cmd = std::process::Command::new("ffmpeg");
            cmd.args(["-v", "error", "-noautorotate", "-i"]).arg(&path);
            cmd.args([
                "-vsync",
                "passthrough",
                "-sws_flags",
                "bilinear",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "rgb24",
                "-",
            ]);
            cmd.output().unwrap().stdout
        };
        assert_eq!(coded.frames.as_slice().unwrap(), &unrotated[..]);
    }
}

/// Every right-angle display matrix, mirrored ones included (a
/// front-camera flip, a transpose), turns frames as the CLI's autorotation
/// does: each is patched into the MP4 track header of a copy of a fixture
/// and decoded both ways. Other angles are not applied.
#[test]
fn display_matrices_with_mirroring_match_the_cli() {
    let data = std::fs::read(fixture("h264_yuv420p.mp4")).unwrap();
    let tkhd = data.windows(4).position(|w| w == b"tkhd").unwrap();
    let version_skip = if data[tkhd + 4] == 1 { 32 } else { 20 };
    let matrix_at = tkhd + 4 + 4 + version_skip + 8 + 8;
    let dir = std::env::temp_dir().join(format!("spdl-display-matrix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let one = 1 << 16;
    let cases = [
        ("hflip", [-one, 0, 0, one]),
        ("vflip", [one, 0, 0, -one]),
        ("rotate180", [-one, 0, 0, -one]),
        ("rotate90", [0, one, -one, 0]),
        ("rotate270", [0, -one, one, 0]),
        ("transpose", [0, one, one, 0]),
        ("transverse", [0, -one, -one, 0]),
        ("rotate45", [46341, 46341, -46341, 46341]),
    ];
    for (name, [a, b, c, d]) in cases {
        let mut patched = data.clone();
        for (k, v) in [a, b, 0, c, d, 0, 0, 0, 1 << 30].into_iter().enumerate() {
            patched[matrix_at + 4 * k..matrix_at + 4 * k + 4].copy_from_slice(&i32::to_be_bytes(v));
        }
        let path = dir.join(format!("{name}.mp4"));
        std::fs::write(&path, patched).unwrap();
        let video = load_video(&path, &VideoConfig::default()).unwrap();
        let rotation = spdl_io::probe(&path).unwrap().streams[0].rotation;
        if name == "rotate45" {
            let coded = load_video(&path, &VideoConfig::default().with_rotation(false)).unwrap();
            assert_eq!(video.frames, coded.frames, "{name} is not applied");
            assert_eq!(rotation, 0, "nor reported");
            continue;
        }
        let turns = [("rotate90", 90), ("rotate180", 180), ("rotate270", 270)];
        if let Some((_, degrees)) = turns.iter().find(|t| t.0 == name) {
            assert_eq!(rotation, *degrees, "{name}");
        }
        let expected = ffmpeg_raw(&path, "rgb24", None, "bilinear");
        assert_eq!(video.frames.as_slice().unwrap(), &expected[..], "{name}");
    }
    std::fs::remove_dir_all(dir).ok();
}

/// Frame-rate conversion follows FFmpeg's `fps` filter (round to nearest):
/// the same frames repeated or dropped, so the same count and bit-exact
/// pixels, on a constant-rate clip (down and up), the VFR clip and the clip
/// that starts at 1.5 s.
#[test]
fn frame_rate_matches_ffmpeg_fps_filter() {
    for (file, fps) in [
        ("long_h264.mp4", 10),
        ("h264_yuv420p.mp4", 60),
        ("h264_vfr.mkv", 25),
        ("h264_start_offset.mp4", 12),
    ] {
        let path = fixture(file);
        let config = VideoConfig::default().with_size(64, 48).with_frame_rate(fps, 1);
        let video = load_video(&path, &config).unwrap();
        let expected = ffmpeg_raw(&path, "rgb24", Some(&format!("fps={fps},scale=64:48")), "bilinear");
        assert_eq!(
            video.frames.len(),
            expected.len(),
            "{file} at {fps} fps: {} frames",
            video.len()
        );
        assert_eq!(video.frames.as_slice().unwrap(), &expected[..], "{file} at {fps} fps");
        for w in video.pts.windows(2) {
            assert!((w[1] - w[0] - 1.0 / f64::from(fps)).abs() < 1e-9, "{file}: {w:?}");
        }
    }
}

/// A rate whose first output frame falls after the stream's end gives no
/// frame, as FFmpeg's `fps` filter does, and the error says why.
#[test]
fn a_frame_rate_slower_than_the_clip_is_long_is_explained() {
    let path = fixture("h264_yuv420p.mp4");
    let expected = ffmpeg_raw(&path, "rgb24", Some("fps=1/10"), "bilinear");
    assert!(
        expected.is_empty(),
        "FFmpeg gives no frame for a 2 s clip at 0.1 frame/s"
    );
    let err = load_video(&path, &VideoConfig::default().with_frame_rate(1, 10)).unwrap_err();
    assert!(err.to_string().contains("no frame at 1/10 frames/s"), "{err}");
}

/// Header and content counts are reported separately, so a short decode
/// of a damaged file is visible.
#[test]
fn header_frame_count_is_reported_beside_the_content() {
    let video = load_video(fixture("h264_yuv420p.mp4"), &VideoConfig::default()).unwrap();
    assert_eq!(video.header_frames, Some(video.len() as u64));
    let window = load_video(fixture("long_h264.mp4"), &VideoConfig::default().with_window(1.0, 2.0)).unwrap();
    assert_eq!(window.header_frames, Some(250));
    assert_eq!(window.len(), 25);
}

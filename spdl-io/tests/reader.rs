//! `VideoReader`: one open file read many times gives what a full decode
//! gives at those frames, by index, by time, by range and by clip; a saved
//! index reads the same frames; approximate seeking agrees with exact
//! seeking where the header tells the truth.

mod common;

use common::*;
use ndarray::{s, Axis};
use spdl_io::video::{ClipSampling, FrameIndex, IndexOrigin, SeekMode, VideoReader};
use spdl_io::{load_video, Error, Video, VideoConfig};

fn config() -> VideoConfig {
    VideoConfig::default().with_size(64, 48)
}

fn assert_frames(got: &Video, full: &Video, indices: &[usize], what: &str) {
    assert_eq!(got.len(), indices.len(), "{what}");
    for (k, &i) in indices.iter().enumerate() {
        if !full.pts[i].is_nan() {
            assert_eq!(got.pts[k], full.pts[i], "{what}: pts of frame {i}");
        }
        assert!(
            got.frames.index_axis(Axis(0), k) == full.frames.index_axis(Axis(0), i),
            "{what}: pixels of frame {i}"
        );
    }
}

/// Several calls on one reader, forward, backward, repeated and at the
/// cursor, on every decodable fixture, with one decoder and with frames
/// split by GOP over two: each equals the full decode.
#[test]
fn repeated_calls_on_one_reader_equal_the_full_decode() {
    for (e, threads) in decodable().into_iter().flat_map(|e| [(e.clone(), 1), (e, 2)]) {
        let path = fixture(&e.file);
        let full = load_video(&path, &config()).unwrap();
        let n = full.len();
        let mut reader =
            VideoReader::open(&path, &config().with_threads(threads)).unwrap_or_else(|err| panic!("{}: {err}", e.file));
        assert_eq!(reader.len(), n, "{}: frame count", e.file);
        let calls = [
            vec![n / 2, n / 2 + 1],
            vec![n / 2 + 1],
            vec![0, n - 1],
            vec![n / 3, n / 4, n / 3],
            vec![n - 1],
        ];
        for indices in calls {
            let got = reader
                .get_frames_at(&indices)
                .unwrap_or_else(|err| panic!("{}: {err}", e.file));
            assert_frames(&got, &full, &indices, &format!("{} {indices:?}", e.file));
        }
        let range = reader.get_frames_in_range(1, n, 3).unwrap();
        assert_frames(&range, &full, &(1..n).step_by(3).collect::<Vec<_>>(), &e.file);
        assert!(matches!(reader.get_frames_at(&[n]), Err(Error::FrameIndex { .. })));
    }
}

/// The frame shown at a time is the last frame at or before it: at each
/// frame's own time (as ffprobe reports it), and just before the next.
#[test]
fn frames_played_at_times_match_ffprobe() {
    for name in [
        "h264_yuv420p.mp4",
        "h264_vfr.mkv",
        "h264_start_offset.mp4",
        "vp9_yuv420p.webm",
        "h264_edit_list.mp4",
    ] {
        let path = fixture(name);
        let full = load_video(&path, &config()).unwrap();
        let mut reader = VideoReader::open(&path, &config()).unwrap();
        let probe = ffprobe_pts(&path);
        let times = reader.index().frame_seconds();
        for (t, p) in times.iter().zip(probe.iter().filter(|&&p| p >= times[0] - 1e-9)) {
            assert!((t - p).abs() < 1e-6, "{name}: index {t} vs ffprobe {p}");
        }
        let n = full.len();
        let at: Vec<f64> = (0..n - 1)
            .step_by(4)
            .flat_map(|i| [full.pts[i], full.pts[i + 1] - 1e-4])
            .collect();
        let expect: Vec<usize> = (0..n - 1).step_by(4).flat_map(|i| [i, i]).collect();
        let got = reader.get_frames_played_at(&at).unwrap();
        assert_frames(&got, &full, &expect, name);
        let window = reader.get_frames_played_in(full.pts[2], full.pts[7]).unwrap();
        assert_frames(&window, &full, &[2, 3, 4, 5, 6], name);
        let before = reader.get_frames_played_at(&[full.pts[0] - 0.5]).unwrap_err();
        assert!(matches!(before, Error::FrameTime { .. }), "{name}: {before}");
        assert!(before.to_string().contains(name), "{before}");
        assert!(
            reader.get_frames_played_at(&[full.pts[n - 1] + 60.0]).is_err(),
            "{name}: past the end"
        );
    }
}

/// An index saved as bytes and loaded for a new reader reads the same
/// frames without indexing again; an index of another stream is refused.
#[test]
fn saved_index_reads_the_same_frames() {
    for name in [
        "h264_yuv420p.mp4",
        "h264_midgop_start.mkv",
        "mpeg2_yuv420p.ts",
        "h264_edit_list.mp4",
    ] {
        let path = fixture(name);
        let mut first = VideoReader::open(&path, &config()).unwrap();
        let bytes = first.index().to_bytes();
        let index = FrameIndex::from_bytes(&bytes).unwrap();
        assert_eq!(&index, first.index(), "{name}");
        let mut again = VideoReader::open_with_index(&path, &config(), index).unwrap();
        let indices = [first.len() - 1, 0, first.len() / 2];
        let (a, b) = (
            first.get_frames_at(&indices).unwrap(),
            again.get_frames_at(&indices).unwrap(),
        );
        assert_eq!(a.frames, b.frames, "{name}");
        assert_eq!(a.pts, b.pts, "{name}");
    }
    let mp4 = VideoReader::open(fixture("h264_yuv420p.mp4"), &config()).unwrap();
    let other = VideoReader::open_with_index(fixture("vp9_yuv420p.webm"), &config(), mp4.index().clone());
    assert!(matches!(other, Err(Error::InvalidConfig(_))), "{:?}", other.err());
}

/// MP4/MOV files are indexed from their sample table (no packet scan),
/// B-frames and edit lists included; other containers by scanning.
#[test]
fn mp4_is_indexed_from_its_sample_table() {
    for (name, origin) in [
        ("h264_yuv420p.mp4", IndexOrigin::SampleTable),
        ("h264_edit_list.mp4", IndexOrigin::SampleTable),
        ("hevc_yuv420p.mp4", IndexOrigin::SampleTable),
        ("mjpeg_yuvj420p.mov", IndexOrigin::SampleTable),
        ("h264_fragmented.mp4", IndexOrigin::Scan),
        ("vp9_yuv420p.webm", IndexOrigin::Scan),
    ] {
        let reader = VideoReader::open(fixture(name), &config()).unwrap();
        assert_eq!(reader.index().origin(), origin, "{name}");
    }
}

/// Approximate seeking reads the header only; on constant-rate streams
/// whose headers are right it gives exact seeking's frames.
#[test]
fn approximate_seeking_agrees_on_constant_rate_streams() {
    let approx = config().with_seek_mode(SeekMode::Approximate);
    for name in [
        "vp9_yuv420p.webm",
        "hevc_yuv420p.mkv",
        "mpeg2_yuv420p.ts",
        "h264_yuv420p.mp4",
    ] {
        let path = fixture(name);
        let full = load_video(&path, &config()).unwrap();
        let mut reader = VideoReader::open(&path, &approx).unwrap();
        let n = reader.len().min(full.len());
        let indices = [n - 1, 0, n / 2, n / 3];
        let got = reader.get_frames_at(&indices).unwrap();
        assert_frames(&got, &full, &indices, &format!("{name} (approximate)"));
    }
    let webm = VideoReader::open(fixture("vp9_yuv420p.webm"), &approx).unwrap();
    assert_eq!(webm.index().origin(), IndexOrigin::Header);
}

/// Clips: evenly spread clips are the full decode's frames at the clip
/// indices; random clips repeat with the seed and change with it.
#[test]
fn clips_equal_the_full_decode_and_follow_the_seed() {
    let path = fixture("long_h264.mp4");
    let full = load_video(&path, &config()).unwrap();
    let n = full.len();
    let mut reader = VideoReader::open(&path, &config()).unwrap();
    let even = ClipSampling::default()
        .with_clips(3)
        .with_frames_per_clip(5)
        .with_stride(2);
    let clips = reader.get_clips(&even).unwrap();
    assert_eq!(clips.frames.shape(), [3, 5, 48, 64, 3]);
    assert_eq!(clips.starts, [0, (n - 9) / 2, n - 9]);
    for (c, &start) in clips.starts.iter().enumerate() {
        for k in 0..5 {
            let i = start + 2 * k;
            assert!(
                clips.frames.slice(s![c, k, .., .., ..]) == full.frames.index_axis(Axis(0), i),
                "clip {c} frame {k}"
            );
            assert_eq!(clips.pts[[c, k]], full.pts[i]);
        }
    }
    let random = even
        .clone()
        .with_clips(4)
        .with_frames_per_clip(16)
        .with_stride(1)
        .with_random(11);
    let a = reader.get_clips(&random).unwrap();
    let b = VideoReader::open(&path, &config()).unwrap().get_clips(&random).unwrap();
    assert_eq!(a.starts, b.starts);
    assert_eq!(a.frames, b.frames);
    let c = reader.get_clips(&random.clone().with_random(12)).unwrap();
    assert_ne!(a.starts, c.starts);
    // A clip longer than the video repeats its last frame.
    let short = VideoReader::open(fixture("h264_start_offset.mp4"), &config())
        .unwrap()
        .len();
    let long = ClipSampling::default().with_frames_per_clip(short + 3);
    let clip = VideoReader::open(fixture("h264_start_offset.mp4"), &config())
        .unwrap()
        .get_clips(&long)
        .unwrap();
    assert_eq!(clip.frames.shape()[1], short + 3);
    assert!(clip.frames.slice(s![0, short - 1, .., .., ..]) == clip.frames.slice(s![0, short + 2, .., .., ..]));
}

/// One frame per call, forward then backward, as `reader[i]` in a loop:
/// a frame the decoder was told to skip in one call (it was not wanted
/// then) is still found in the next (before the fix, frame 2 of the H.264
/// fixture came back as frame 3 after a call for frame 1).
#[test]
fn a_frame_skipped_as_unwanted_in_one_call_is_found_in_the_next() {
    for name in ["h264_yuv420p.mp4", "hevc_yuv420p.mkv", "mpeg4_yuv420p.avi"] {
        let path = fixture(name);
        let full = load_video(&path, &config()).unwrap();
        let mut reader = VideoReader::open(&path, &config()).unwrap();
        let n = full.len();
        for i in (0..n).chain((0..n).rev().step_by(3)).chain((0..n).step_by(2)) {
            let got = reader.get_frames_at(&[i]).unwrap();
            assert_frames(&got, &full, &[i], &format!("{name} frame {i}"));
        }
    }
}

/// A stream whose frame size changes (two raw H.264 streams, 96x64 then
/// 64x48, one after the other) reads as `load_video` reads it, every frame
/// at the first frame's size, also when frames are converted on a thread
/// of their own (a two-thread decoder).
#[test]
fn a_stream_that_changes_size_reads_as_the_full_decode() {
    let dir = std::env::temp_dir().join(format!("spdl-size-change-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut joined = Vec::new();
    for size in ["96x64", "64x48"] {
        let part = dir.join(format!("{size}.h264"));
        let status = std::process::Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size={size}:rate=25:duration=0.4"))
            .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-bf", "2"])
            .arg(&part)
            .status()
            .unwrap();
        assert!(status.success());
        joined.extend(std::fs::read(&part).unwrap());
    }
    let path = dir.join("joined.h264");
    std::fs::write(&path, joined).unwrap();
    let full = load_video(&path, &VideoConfig::default()).unwrap();
    assert_eq!(full.frames.dim(), (20, 64, 96, 3));
    for threads in [1, 2] {
        let config = VideoConfig::default().with_threads(threads);
        let mut reader = VideoReader::open(&path, &config).unwrap();
        for indices in [vec![0, 5, 19], vec![12, 3, 19, 18]] {
            let got = reader.get_frames_at(&indices).unwrap();
            assert_frames(&got, &full, &indices, &format!("threads {threads} {indices:?}"));
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Reference B-frames (x264's B-pyramid) that no decoded picture uses are
/// left undecoded (`media::h264_refs`): on encodes whose P-frames use them
/// (two references, strict pyramid) and ones whose do not (one reference),
/// with slices, weighted prediction, CAVLC and an open GOP, random frame sets and
/// clips, one reader for many calls forward and backward, at one and two
/// threads, every frame equals the full decode at the native size.
#[test]
fn frames_around_skipped_reference_b_frames_equal_the_full_decode() {
    use rand::{RngExt, SeedableRng};
    let native = VideoConfig::default();
    for name in [
        "h264_ref1_pyramid.mp4",
        "h264_ref2_pyramid_strict.mp4",
        "h264_ref1_slices.mp4",
        "h264_ref1_cavlc.mp4",
        "h264_open_gop.mp4",
        "long_h264.mp4",
    ] {
        let path = fixture(name);
        let full = load_video(&path, &native).unwrap();
        let n = full.len();
        for threads in [1, 2] {
            let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(7 + threads as u64);
            let mut reader = VideoReader::open(&path, &native.clone().with_threads(threads)).unwrap();
            for call in 0..24 {
                let count = rng.random_range(1..=6);
                let indices: Vec<usize> = (0..count).map(|_| rng.random_range(0..n)).collect();
                let got = reader.get_frames_at(&indices).unwrap();
                assert_frames(
                    &got,
                    &full,
                    &indices,
                    &format!("{name} t={threads} call {call} {indices:?}"),
                );
            }
            let random = ClipSampling::default()
                .with_clips(4)
                .with_frames_per_clip(8)
                .with_random(threads as u64);
            let clips = reader.get_clips(&random).unwrap();
            for (c, &start) in clips.starts.iter().enumerate() {
                for k in 0..8 {
                    let i = (start + k).min(n - 1);
                    assert!(
                        clips.frames.slice(s![c, k, .., .., ..]) == full.frames.index_axis(Axis(0), i),
                        "{name} t={threads}: clip {c} frame {k}"
                    );
                }
            }
        }
    }
}

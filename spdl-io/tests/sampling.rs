//! `sample_frames`, time windows and streaming return exactly what a full
//! decode returns, on every codec fixture and on the VFR and non-zero-start
//! clips.

mod common;

use common::*;
use ndarray::{s, Axis};
use spdl_io::{load_video, sample_frames, stream_video, Error, VideoConfig};

fn indices_for(n: usize) -> Vec<usize> {
    // Forward, backward, repeated, first and last.
    let mut v = vec![n - 1, 0, n / 2, n / 3, n / 2, 1.min(n - 1), (2 * n) / 3, n - 1];
    v.push(n / 4);
    v
}

#[test]
fn sample_frames_equal_full_decode_at_those_indices() {
    let config = VideoConfig::default().with_size(96, 64);
    for e in decodable() {
        let path = fixture(&e.file);
        let full = load_video(&path, &config).unwrap();
        let n = full.len();
        let indices = indices_for(n);
        let sampled = sample_frames(&path, &indices, &config).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(sampled.len(), indices.len(), "{}", e.file);
        for (k, &i) in indices.iter().enumerate() {
            // The AVI fixture's last frame has no timestamp in a full decode
            // (FFmpeg cannot guess it); compare pts only where one exists.
            if !full.pts[i].is_nan() {
                assert_eq!(sampled.pts[k], full.pts[i], "{}: pts of frame {i}", e.file);
            }
            assert!(
                sampled.frames.index_axis(Axis(0), k) == full.frames.index_axis(Axis(0), i),
                "{}: pixels of frame {i}",
                e.file
            );
        }
        // The index counts the frames a full decode shows, no more.
        let past = sample_frames(&path, &[n], &config);
        assert!(
            matches!(past, Err(Error::FrameIndex { .. })),
            "{}: frame {n} of {n}",
            e.file
        );
    }
}

#[test]
fn sample_frames_every_index_of_the_long_clip() {
    let path = fixture("long_h264.mp4");
    let config = VideoConfig::default().with_size(64, 48);
    let full = load_video(&path, &config).unwrap();
    let all: Vec<usize> = (0..full.len()).rev().collect();
    let sampled = sample_frames(&path, &all, &config).unwrap();
    for (k, &i) in all.iter().enumerate() {
        assert!(
            sampled.frames.index_axis(Axis(0), k) == full.frames.index_axis(Axis(0), i),
            "frame {i}"
        );
    }
}

#[test]
fn out_of_range_index_is_a_clear_error() {
    let path = fixture("h264_yuv420p.mp4");
    let err = sample_frames(&path, &[0, 100_000], &VideoConfig::default()).unwrap_err();
    assert!(matches!(err, Error::FrameIndex { index: 100_000, .. }), "{err}");
    assert!(err.to_string().contains("h264_yuv420p.mp4"), "{err}");
}

/// Windows on every codec and container fixture (MPEG-PS/TS, AVI, MKV,
/// VFR, a non-zero start time...), at a frame's exact time, just after a
/// frame, between frames, and to the end: each keeps exactly the frames a
/// full decode shows in `[start, end)`, with the same pts and pixels. A
/// seek that lands past the start is retried earlier, then replaced by a
/// decode from the very start.
#[test]
fn window_keeps_exactly_the_frames_inside_it() {
    let config = VideoConfig::default().with_size(64, 48);
    for e in decodable() {
        let path = fixture(&e.file);
        let full = load_video(&path, &config).unwrap();
        assert!(
            full.pts.iter().all(|p| p.is_finite()),
            "{}: every frame has a time",
            e.file
        );
        let (n, pts) = (full.len(), &full.pts);
        if n < 6 {
            continue;
        }
        let mut windows = vec![
            (pts[n / 3], pts[2 * n / 3]),
            (pts[1] + 1e-3, pts[n / 2] + 1e-3),
            ((pts[n / 2] + pts[n / 2 + 1]) / 2.0, pts[n - 1] + 10.0),
            (pts[n - 2], pts[n - 1]),
            (pts[0], pts[3]),
        ];
        // Short windows all along the clip: near keyframes, B-frames that
        // follow a P-frame past the end, an AVI keyframe shown after them.
        windows.extend((1..n - 4).step_by(3).map(|k| (pts[k] - 1e-3, pts[k + 3])));
        for (start, end) in windows {
            let window = load_video(&path, &config.clone().with_window(start, end))
                .unwrap_or_else(|err| panic!("{}: [{start}, {end}): {err}", e.file));
            let inside: Vec<usize> = (0..n).filter(|&i| pts[i] >= start && pts[i] < end).collect();
            let what = format!("{}: [{start}, {end})", e.file);
            assert_eq!(window.pts, inside.iter().map(|&i| pts[i]).collect::<Vec<_>>(), "{what}");
            let lo = inside[0];
            assert!(
                window.frames == full.frames.slice(s![lo..lo + inside.len(), .., .., ..]),
                "{what}: pixels"
            );
        }
    }
}

#[test]
fn streaming_chunks_concatenate_to_the_full_decode() {
    let path = fixture("long_h264.mp4");
    let config = VideoConfig::default().with_size(64, 48);
    let full = load_video(&path, &config).unwrap();
    let mut offset = 0;
    for chunk in stream_video(&path, &config, 32).unwrap() {
        let chunk = chunk.unwrap();
        assert!(chunk.len() <= 32);
        let n = chunk.len();
        assert!(chunk.frames == full.frames.slice(s![offset..offset + n, .., .., ..]));
        assert_eq!(chunk.pts, full.pts[offset..offset + n].to_vec());
        offset += n;
    }
    assert_eq!(offset, full.len());
}

#[test]
fn bytes_source_decodes_like_the_path() {
    let path = fixture("hevc_yuv420p.mkv");
    let from_path = load_video(&path, &VideoConfig::default()).unwrap();
    let data = std::fs::read(&path).unwrap();
    let src = spdl_io::Source::from_bytes(data, "memory:hevc");
    let from_bytes = load_video(src, &VideoConfig::default()).unwrap();
    assert_eq!(from_path.frames, from_bytes.frames);
    assert_eq!(from_path.pts, from_bytes.pts);
}

/// Regression: `Limits::max_frames` bounds the frames returned, not the
/// length of the video being sampled (it once refused to index videos
/// longer than the output limit).
#[test]
fn sampling_a_long_video_is_bounded_by_output_not_length() {
    let limits = spdl_io::Limits::default().with_max_frames(10);
    let config = VideoConfig::default().with_size(32, 32).with_limits(limits);
    let path = fixture("long_h264.mp4"); // 250 frames
    assert_eq!(sample_frames(&path, &[0, 249, 100], &config).unwrap().len(), 3);
    let many: Vec<usize> = (0..11).collect();
    let err = sample_frames(&path, &many, &config).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Limit {
                what: "frame count",
                ..
            }
        ),
        "{err}"
    );
}

/// `Demuxer::window` starts at the keyframe at or before `start` and stops
/// before the first packet decoded at or past `end`: every frame shown in
/// the window can be decoded from its packets.
#[test]
fn demuxer_window_covers_the_frames_of_the_window() {
    let path = fixture("long_h264.mp4");
    let mut demuxer = spdl_io::Demuxer::open(&path).unwrap();
    let stream = demuxer.best_video_stream().unwrap();
    let packets: Vec<_> = demuxer.window(stream, 4.0, 6.0).unwrap().map(Result::unwrap).collect();
    assert!(packets[0].is_key(), "starts on a keyframe");
    assert!(packets[0].pts_seconds().unwrap() <= 4.0);
    let shown: Vec<f64> = packets
        .iter()
        .filter_map(|p| p.pts_seconds())
        .filter(|t| (4.0..6.0).contains(t))
        .collect();
    assert_eq!(shown.len(), 50, "all 50 frames of [4 s, 6 s) at 25 fps");
    assert!(
        packets.iter().all(|p| p.pts_seconds().unwrap() < 6.0 + 0.2),
        "stops near the end"
    );
}

/// An empty or non-finite window is a configuration error for whole loads
/// and streams alike (a NaN start returned the whole video; an empty
/// window failed a load but gave an empty stream).
#[test]
fn empty_or_non_finite_windows_are_config_errors() {
    let video = fixture("h264_yuv420p.mp4");
    let audio = fixture("audio/flac_s16_44100_stereo.flac");
    for (start, end) in [(1.0, 1.0), (1.5, 0.5), (f64::NAN, 1.0), (0.0, f64::INFINITY)] {
        let v = VideoConfig::default().with_window(start, end);
        let a = spdl_io::AudioConfig::default().with_window(start, end);
        let errors = [
            load_video(&video, &v).err(),
            stream_video(&video, &v, 4).err(),
            spdl_io::load_audio(&audio, &a).err(),
            spdl_io::stream_audio(&audio, &a, 1024).err(),
        ];
        for err in errors {
            assert!(
                matches!(err, Some(Error::InvalidConfig(_))),
                "[{start}, {end}): {err:?}"
            );
        }
    }
    // So is a frame rate no video has (a stream of 10^9 frames/s never ended).
    let absurd = VideoConfig::default().with_frame_rate(1_000_000_000, 1);
    assert!(matches!(
        stream_video(&video, &absurd, 4).err(),
        Some(Error::InvalidConfig(_))
    ));
}

/// A stream that fails part-way (a truncated file) first hands out the
/// frames it decoded before the failure, then the error (in chunks of 7,
/// 3 chunks came out, and the 4 frames decoded after them were dropped
/// with the error; now 25 frames come out).
#[test]
fn a_failing_stream_delivers_its_decoded_frames_first() {
    let path = fixture("truncated_h264.mp4");
    let config = VideoConfig::default().with_size(32, 32);
    let items: Vec<_> = stream_video(&path, &config, 7).unwrap().collect();
    let (last, chunks) = items.split_last().unwrap();
    assert!(matches!(last, Err(Error::Decode { .. })), "{last:?}");
    let frames: Vec<_> = chunks.iter().map(|c| c.as_ref().unwrap()).collect();
    let total: usize = frames.iter().map(|c| c.len()).sum();
    assert!(
        total > 21 && !total.is_multiple_of(7),
        "a partial last chunk: {total} frames"
    );
    // The file is the first 60% of h264_yuv420p.mp4: the same frames.
    let whole = load_video(fixture("h264_yuv420p.mp4"), &config).unwrap();
    let got: Vec<_> = frames.iter().flat_map(|c| c.frames.outer_iter()).collect();
    assert!(got.iter().zip(whole.frames.outer_iter()).all(|(a, b)| *a == b));
}

//! `VideoWriter`: frames written, then probed by `ffprobe` (codec, frame
//! count, duration) and decoded back within a PSNR bound; clear errors for
//! a missing encoder and for frames of the wrong size.

mod common;

use std::process::Command;

use ndarray::Array4;
use spdl_io::video::{VideoWriter, WriterConfig};
use spdl_io::{load_video, Error, Source, VideoConfig};

fn frames(n: usize) -> Array4<u8> {
    Array4::from_shape_fn((n, 120, 160, 3), |(t, y, x, c)| {
        ((x + 2 * t) / 2 + y / 2 + c * 40) as u8
    })
}

fn probe(path: &std::path::Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=codec_name,nb_read_frames,width,height,avg_frame_rate",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn written_videos_probe_and_decode_back() {
    let dir = std::env::temp_dir().join(format!("spdl-writer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = frames(30);
    for (file, codec, expect) in [
        ("a.mp4", "libx264", "h264,160,120,25/1,30"),
        ("b.webm", "libvpx-vp9", "vp9,160,120,25/1,30"),
        ("c.mkv", "mpeg4", "mpeg4,160,120,25/1,30"),
    ] {
        let path = dir.join(file);
        let config = WriterConfig::new(25, 1).with_codec(codec).with_option("threads", "1");
        let mut writer = VideoWriter::create(&path, 160, 120, &config).unwrap_or_else(|e| panic!("{file}: {e}"));
        // In two calls: frames stream through.
        writer.write(source.slice(ndarray::s![..12, .., .., ..])).unwrap();
        writer.write(source.slice(ndarray::s![12.., .., .., ..])).unwrap();
        writer.finish().unwrap();
        assert_eq!(probe(&path), expect, "{file}");
        let back = load_video(&path, &VideoConfig::default()).unwrap();
        assert_eq!(back.len(), 30, "{file}");
        assert!(
            (back.pts[29] - back.pts[0] - 29.0 / 25.0).abs() < 1e-6,
            "{file}: {:?}",
            back.pts
        );
        let quality = common::psnr(back.frames.as_slice().unwrap(), source.as_slice().unwrap());
        assert!(quality >= 30.0, "{file}: {quality:.1} dB");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn missing_encoders_and_wrong_frames_are_clear_errors() {
    let path = std::env::temp_dir().join(format!("spdl-writer-err-{}.mp4", std::process::id()));
    let err = VideoWriter::create(&path, 160, 120, &WriterConfig::new(25, 1).with_codec("nope264"))
        .err()
        .unwrap();
    assert!(
        matches!(err, Error::InvalidConfig(_)) && err.to_string().contains("nope264"),
        "{err}"
    );
    let err = VideoWriter::create(&path, 160, 120, &WriterConfig::new(0, 1))
        .err()
        .unwrap();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
    let mut writer = VideoWriter::create(&path, 160, 120, &WriterConfig::new(25, 1)).unwrap();
    let wrong = Array4::<u8>::zeros((2, 100, 160, 3));
    assert!(matches!(writer.write(wrong.view()), Err(Error::InvalidConfig(_))));
    writer.finish().unwrap();
    std::fs::remove_file(&path).ok();
}

/// `seconds` of a 440 Hz sine at half scale, (2, n) at `rate`.
fn sine(rate: u32, seconds: f64) -> ndarray::Array2<f32> {
    let n = (f64::from(rate) * seconds) as usize;
    ndarray::Array2::from_shape_fn((2, n), |(c, i)| {
        0.5 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32 + c as f32).sin()
    })
}

fn streams(path: &std::path::Path) -> String {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout).trim().replace('\n', ";")
}

#[test]
fn video_and_audio_mux_into_one_file() {
    use spdl_io::{load_audio, AudioConfig};
    let dir = std::env::temp_dir().join(format!("spdl-mux-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let video = frames(30);
    let audio = sine(48_000, 1.2);
    for (file, audio_codec, expect) in [
        ("av.mp4", None, "h264,video;aac,audio"),
        ("av.mkv", Some("libopus"), "h264,video;opus,audio"),
    ] {
        let path = dir.join(file);
        let mut config = WriterConfig::new(25, 1)
            .with_option("threads", "1")
            .with_audio(48_000, 2);
        if let Some(codec) = audio_codec {
            config = config.with_audio_codec(codec);
        }
        let mut writer = VideoWriter::create(&path, 160, 120, &config).unwrap_or_else(|e| panic!("{file}: {e}"));
        // All the video first, then the audio in two pieces: the muxer
        // interleaves by time.
        writer.write(video.view()).unwrap();
        writer.write_audio(audio.slice(ndarray::s![.., ..20_000])).unwrap();
        writer.write_audio(audio.slice(ndarray::s![.., 20_000..])).unwrap();
        writer.finish().unwrap();
        assert_eq!(streams(&path), expect, "{file}");
        let back = load_video(&path, &VideoConfig::default()).unwrap();
        assert_eq!(back.len(), 30, "{file}");
        let quality = common::psnr(back.frames.as_slice().unwrap(), video.as_slice().unwrap());
        assert!(quality >= 30.0, "{file}: {quality:.1} dB");
        let sound = load_audio(&path, &AudioConfig::default()).unwrap();
        let n = sound.samples.shape()[1];
        assert!(n.abs_diff(audio.shape()[1]) <= 1024, "{file}: {n} samples");
        let rms = (sound.samples.iter().map(|s| s * s).sum::<f32>() / sound.samples.len() as f32).sqrt();
        assert!((rms - 0.5 / 2f32.sqrt()).abs() < 0.03, "{file}: rms {rms}");
    }
    let no_audio = VideoWriter::create(dir.join("v.mp4"), 160, 120, &WriterConfig::new(25, 1));
    let err = no_audio.unwrap().write_audio(audio.view()).unwrap_err();
    assert!(err.to_string().contains("no audio track"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn memory_output_is_the_file_output() {
    use spdl_io::audio::AudioWriter;
    use spdl_io::Destination;
    let dir = std::env::temp_dir().join(format!("spdl-memout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = WriterConfig::new(25, 1).with_option("threads", "1");
    let path = dir.join("a.mp4");
    let mut writer = VideoWriter::create(&path, 160, 120, &config).unwrap();
    writer.write(frames(20).view()).unwrap();
    assert_eq!(writer.finish().unwrap(), None);
    let mut writer = VideoWriter::create(Destination::memory("a.mp4"), 160, 120, &config).unwrap();
    writer.write(frames(20).view()).unwrap();
    let bytes = writer.finish().unwrap().expect("bytes from memory");
    assert_eq!(
        bytes,
        std::fs::read(&path).unwrap(),
        "the in-memory MP4 differs from the file"
    );
    // A seekable destination: FLAC's header is rewritten with the sample
    // count at the end, in memory as in the file.
    let mut writer = AudioWriter::create(Destination::memory("a.flac"), 48_000, 2, None).unwrap();
    writer.write(sine(48_000, 0.5).view()).unwrap();
    let bytes = writer.finish().unwrap().unwrap();
    let back = spdl_io::load_audio(Source::from_bytes(bytes, "a.flac"), &Default::default()).unwrap();
    assert_eq!(back.samples.shape(), &[2, 24_000]);
    let err = VideoWriter::create(dir.join("missing/x.mp4"), 160, 120, &config)
        .err()
        .unwrap();
    assert!(
        matches!(err, Error::Write { .. }) && err.to_string().contains("missing/x.mp4"),
        "{err}"
    );
    let err = VideoWriter::create(Destination::memory("x.nope"), 160, 120, &config)
        .err()
        .unwrap();
    assert!(
        matches!(err, Error::InvalidConfig(_)) && err.to_string().contains("x.nope"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

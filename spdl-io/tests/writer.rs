//! `VideoWriter`: frames written, then probed by `ffprobe` (codec, frame
//! count, duration) and decoded back within a PSNR bound; clear errors for
//! a missing encoder and for frames of the wrong size.

mod common;

use std::process::Command;

use ndarray::Array4;
use spdl_io::video::{VideoWriter, WriterConfig};
use spdl_io::{load_video, Error, VideoConfig};

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

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (255.0f64.powi(2) / mse.max(1e-9)).log10()
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
        let quality = psnr(back.frames.as_slice().unwrap(), source.as_slice().unwrap());
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

//! Shared test helpers: fixture lookup and the `ffmpeg` CLI oracle.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// The workspace's `fixtures/` folder.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

pub fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join(name)
}

/// One entry of `fixtures/manifest.json`.
#[derive(Debug, Clone)]
pub struct Entry {
    pub file: String,
    pub expect: String,
    pub frames: Option<usize>,
    pub rotation: i64,
    pub width: u64,
    pub height: u64,
}

pub fn manifest() -> Vec<Entry> {
    let text = std::fs::read_to_string(fixture("manifest.json")).expect("fixtures/manifest.json");
    let v: Value = serde_json::from_str(&text).expect("manifest is JSON");
    v.as_array()
        .expect("manifest is an array")
        .iter()
        .map(|e| Entry {
            file: e["file"].as_str().unwrap().to_string(),
            expect: e["expect"].as_str().unwrap().to_string(),
            frames: e["frames"].as_u64().map(|n| n as usize),
            rotation: e["rotation"].as_i64().unwrap_or(0),
            width: e["width"].as_u64().unwrap_or(0),
            height: e["height"].as_u64().unwrap_or(0),
        })
        .collect()
}

/// Fixtures every decoder must decode completely.
pub fn decodable() -> Vec<Entry> {
    manifest().into_iter().filter(|e| e.expect == "ok").collect()
}

/// Raw frames from the `ffmpeg` CLI: every frame (`-vsync passthrough`),
/// converted with the given swscale flags and optional filter.
pub fn ffmpeg_raw(path: &std::path::Path, pix_fmt: &str, vf: Option<&str>, sws_flags: &str) -> Vec<u8> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-nostdin", "-threads", "1", "-i"]).arg(path);
    cmd.args(["-map", "0:v:0", "-vsync", "passthrough", "-sws_flags", sws_flags]);
    if let Some(vf) = vf {
        cmd.args(["-vf", vf]);
    }
    cmd.args(["-f", "rawvideo", "-pix_fmt", pix_fmt, "-"]);
    let out = cmd.output().expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Presentation times (seconds) of every decoded frame, per `ffprobe`.
pub fn ffprobe_pts(path: &std::path::Path) -> Vec<f64> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=best_effort_timestamp_time",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.trim().trim_end_matches(',') {
            "N/A" => f64::NAN,
            t => t.parse::<f64>().expect("pts"),
        })
        .collect()
}

/// Peak signal-to-noise ratio of two 8-bit buffers in dB (infinite when
/// they are equal).
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "buffer sizes differ");
    let squares: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    10.0 * (255.0f64.powi(2) * a.len() as f64 / squares).log10()
}

/// Largest absolute difference and mean absolute difference of two buffers.
pub fn diff(a: &[u8], b: &[u8]) -> (u8, f64) {
    assert_eq!(a.len(), b.len(), "buffer sizes differ");
    let mut max = 0u8;
    let mut sum = 0u64;
    for (x, y) in a.iter().zip(b) {
        let d = x.abs_diff(*y);
        max = max.max(d);
        sum += u64::from(d);
    }
    (max, sum as f64 / a.len().max(1) as f64)
}
pub mod servers;

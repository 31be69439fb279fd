//! Writing a long video keeps memory flat: frames stream through the
//! encoder and the muxer, so the resident set after 900 frames (830 MB of
//! RGB) is what it was after the first 150. In a test binary of its own,
//! so no other test's allocations move the numbers.

use ndarray::Array4;
use spdl_io::video::{VideoWriter, WriterConfig};

fn resident_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb / 1024.0
}

#[test]
fn a_long_write_holds_memory_flat() {
    let path = std::env::temp_dir().join(format!("spdl-long-{}.mp4", std::process::id()));
    let config = WriterConfig::new(30, 1)
        .with_option("preset", "ultrafast")
        .with_option("threads", "2");
    let mut writer = VideoWriter::create(&path, 640, 480, &config).unwrap();
    let mut chunk = Array4::<u8>::zeros((30, 480, 640, 3));
    let mut after_warmup = 0.0;
    for i in 0..30 {
        // Frames change every chunk, so the encoder has real work.
        chunk.mapv_inplace(|v| v.wrapping_add(7 + i as u8));
        writer.write(chunk.view()).unwrap();
        if i == 4 {
            after_warmup = resident_mb();
        }
    }
    let before_finish = resident_mb();
    eprintln!("resident: {after_warmup:.1} MB after 150 frames, {before_finish:.1} MB after 900");
    writer.finish().unwrap();
    let written = std::fs::metadata(&path).unwrap().len();
    std::fs::remove_file(&path).ok();
    assert!(written > 0);
    assert!(
        before_finish - after_warmup < 32.0,
        "resident memory grew from {after_warmup:.0} MB to {before_finish:.0} MB over 750 frames"
    );
}

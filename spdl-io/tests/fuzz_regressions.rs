//! Every input the fuzzer found crashing, aborting or hanging
//! (`fixtures/fuzz/`, see its README) goes through every entry point from
//! memory, in a child process under a 2 GB address-space cap: an
//! allocation sized by a forged header aborts there instead of passing on
//! a machine with memory to spare.

mod common;

use spdl_io::{AudioConfig, ImageConfig, Source, VideoConfig};

/// Runs in the child (`#[ignore]`: only when asked for by name).
#[test]
#[ignore]
fn decode_every_fuzz_regression_in_this_process() {
    let dir = common::fixture("fuzz");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let src = || Source::from_bytes(data.clone(), name.clone());
        let _ = spdl_io::probe(src());
        let _ = spdl_io::probe_kind(src());
        let _ = spdl_io::load_image(src(), &ImageConfig::default());
        let _ = spdl_io::load_video(src(), &VideoConfig::default());
        let _ = spdl_io::sample_frames(src(), &[0, 2], &VideoConfig::default());
        let two_threads = VideoConfig::default().with_threads(2);
        let _ = spdl_io::load_video(src(), &two_threads);
        let _ = spdl_io::sample_frames(src(), &[2, 0, 1], &two_threads);
        let _ = spdl_io::load_audio(src(), &AudioConfig::default());
        let _ = spdl_io::load_audio(src(), &AudioConfig::default().with_sample_rate(16_000));
        println!("decoded {name}");
    }
}

#[test]
fn fuzz_regressions_neither_crash_nor_abort_under_a_memory_cap() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("prlimit")
        .arg("--as=2000000000")
        .arg(exe)
        .args([
            "--ignored",
            "--exact",
            "decode_every_fuzz_regression_in_this_process",
            "--nocapture",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["m4a_stco_count_seed7_5021.m4a", "webp_alpha_seed2_259.webp"] {
        assert!(stdout.contains(&format!("decoded {name}")), "{stdout}");
    }
}

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

/// Runs the ignored test `name` of this binary in a child process under a
/// 2 GB address-space cap, fails unless it exits cleanly, and returns its
/// output.
fn run_child(name: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("prlimit")
        .arg("--as=2000000000")
        .arg(exe)
        .args(["--ignored", "--exact", name, "--nocapture"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn fuzz_regressions_neither_crash_nor_abort_under_a_memory_cap() {
    let stdout = run_child("decode_every_fuzz_regression_in_this_process");
    for name in ["m4a_stco_count_seed7_5021.m4a", "webp_alpha_seed2_259.webp"] {
        assert!(stdout.contains(&format!("decoded {name}")), "{stdout}");
    }
}

/// Runs in the child for the test below.
#[test]
#[ignore]
fn load_the_corrupt_alpha_webp_at_two_threads() {
    let path = common::fixture("fuzz/webp_alpha_seed2_259.webp");
    let err = spdl_io::load_video(&path, &VideoConfig::default().with_threads(2)).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("webp_alpha_seed2_259.webp") && message.contains("decod"),
        "{message}"
    );
    println!("error: {message}");
}

/// FFmpeg 5.1's frame-threaded WebP decoder asserted (and aborted the
/// process) on a lossy WebP whose alpha plane is corrupt; it now decodes
/// without frame threads and the load is an error naming the file.
#[test]
fn a_webp_with_a_corrupt_alpha_plane_at_two_threads_is_an_error_not_an_abort() {
    let stdout = run_child("load_the_corrupt_alpha_webp_at_two_threads");
    assert!(stdout.contains("error: "), "{stdout}");
}

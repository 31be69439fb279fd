//! The `spdl` binary end to end: `decode` writes a NumPy file equal to the
//! library's output, `info --json` parses, failures exit non-zero with one
//! line naming the file.

use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(name)
}

fn spdl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spdl"))
}

/// The real S3 server (moto) shared with spdl-io's remote tests.
#[path = "../../spdl-io/tests/common/servers.rs"]
mod servers;

/// Failed items' file names in a `bench --json` report, sorted.
fn failed_files(report: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["item"].as_str().unwrap().rsplit('/').next().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// Parses a `.npy` (format 1.0) of NumPy type `descr` into (shape, data).
fn read_npy(path: &std::path::Path, descr: &str) -> (Vec<usize>, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert_eq!((10 + header_len) % 64, 0, "header is padded to 64 bytes");
    assert!(header.contains(&format!("'descr': '{descr}'")), "{header}");
    let shape = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let shape = shape
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    (shape, bytes[10 + header_len..].to_vec())
}

/// Runs `spdl decode SRC -o TMP.npy ARGS`, checks that it succeeded, and
/// reads the `.npy` back as (shape, data) of NumPy type `descr`.
fn decode_npy(src: &std::path::Path, args: &[&str], descr: &str) -> (Vec<usize>, Vec<u8>) {
    let name = src.file_name().unwrap().to_string_lossy();
    let out = std::env::temp_dir().join(format!("spdl-cli-{}-{name}.npy", std::process::id()));
    let run = spdl()
        .arg("decode")
        .arg(src)
        .arg("-o")
        .arg(&out)
        .args(args)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let npy = read_npy(&out, descr);
    std::fs::remove_file(out).ok();
    npy
}

#[test]
fn decode_writes_the_same_frames_as_the_library() {
    let src = fixture("long_h264.mp4");
    let args = ["--width", "64", "--height", "48", "--frames", "0,100,7"];
    let (shape, data) = decode_npy(&src, &args, "|u1");
    assert_eq!(shape, [3, 48, 64, 3]);
    let config = spdl::io::VideoConfig::default().with_size(64, 48);
    let expected = spdl::io::sample_frames(&src, &[0, 100, 7], &config).unwrap();
    assert_eq!(data, expected.frames.as_slice().unwrap());
}

#[test]
fn info_json_describes_every_stream() {
    let out = spdl()
        .arg("info")
        .arg(fixture("h264_aac.mp4"))
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = v["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 2);
    assert_eq!(streams[0]["codec"], "h264");
    assert_eq!(streams[1]["kind"], "audio");
    assert!(streams[1]["sample_rate"].as_u64().unwrap() > 0);
}

#[test]
fn failure_is_one_line_naming_the_file() {
    for name in ["not_media.mp4", "does_not_exist.mp4"] {
        let out = spdl()
            .arg("decode")
            .arg(fixture(name))
            .args(["-o", "/tmp/never.npy"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(name), "{stderr}");
    }
}

#[test]
fn images_decode_and_describe_too() {
    let src = fixture("images/jpeg_exif_orientation_6.jpg");
    let (shape, data) = decode_npy(&src, &[], "|u1");
    let expected = spdl::io::load_image(&src, &spdl::io::ImageConfig::default()).unwrap();
    assert_eq!(shape, expected.shape());
    assert_eq!(data, expected.as_slice().unwrap());
    let info = spdl().arg("info").arg(&src).arg("--json").output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(v["format"], "jpeg");
    assert_eq!(v["orientation"], 6);
}

#[test]
fn a_raw_mjpeg_stream_decodes_as_video_not_as_its_first_jpeg() {
    let src = fixture("mjpeg_raw.mjpeg");
    let (shape, data) = decode_npy(&src, &[], "|u1");
    let expected = spdl::io::load_video(&src, &spdl::io::VideoConfig::default()).unwrap();
    assert_eq!(shape, [10, 240, 320, 3]);
    assert_eq!(data, expected.frames.as_slice().unwrap());
    let info = spdl().arg("info").arg(&src).arg("--json").output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(v["streams"][0]["codec"], "mjpeg", "described as a video: {v}");
}

#[test]
fn audio_decodes_to_float32_channels_first() {
    let src = fixture("audio/flac_s16_44100_stereo.flac");
    let (shape, bytes) = decode_npy(&src, &["--sample-rate", "16000", "--channels", "1"], "<f4");
    let config = spdl::io::AudioConfig::default()
        .with_sample_rate(16000)
        .with_channels(1);
    let expected = spdl::io::load_audio(&src, &config).unwrap();
    assert_eq!(shape, expected.samples.shape());
    let data: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(data, expected.samples.as_slice().unwrap());
}

/// An MP3 with cover art decodes as audio, not as a one-frame video of
/// the cover.
#[test]
fn audio_with_cover_art_decodes_as_audio() {
    let src = fixture("audio/mp3_cover_art_44100_mono.mp3");
    assert_eq!(decode_npy(&src, &[], "<f4").0, [1, 54321]);
}

/// `bench` over the tar shards: every sample of the reference listing is
/// decoded, and the truncated shard's broken sample is the one failure.
#[test]
fn bench_over_shards_reports_decoded_items_and_the_broken_sample() {
    let out = spdl()
        .args(["bench", "--json", "--batch", "4", "--threads", "2"])
        .arg(fixture("shards"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("shards/manifest.json")).unwrap()).unwrap();
    let samples: usize = manifest
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_array().unwrap().len())
        .sum();
    assert_eq!(report["decoded"], samples as u64);
    assert_eq!(report["images"], samples as u64);
    let failures = report["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    let reason = failures[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("broken_truncated.tar") && reason.contains("shard1/000002"),
        "{reason}"
    );
    assert!(report["stats"].as_str().unwrap().contains("bottleneck"));
}

/// `bench` over a folder decodes every kind and lists the broken files.
#[test]
fn bench_over_a_folder_lists_every_failure() {
    let out = spdl()
        .args(["bench", "--json", "--kind", "image"])
        .arg(fixture("images"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("images/manifest.json")).unwrap()).unwrap();
    let expect_error: Vec<&str> = manifest
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["expect"] == "error")
        .map(|e| e["file"].as_str().unwrap())
        .collect();
    let failed = failed_files(&report);
    for file in &expect_error {
        if file
            .rsplit('.')
            .next()
            .is_some_and(|e| ["jpg", "png", "gif", "bmp", "tif", "webp"].contains(&e))
        {
            assert!(failed.iter().any(|f| f == file), "{file} not reported: {failed:?}");
        }
    }
    assert_eq!(
        report["decoded"].as_u64().unwrap() as usize + failed.len(),
        report["listed"].as_u64().unwrap() as usize
    );
}

/// Entries the listing cannot read (a dangling symlink, a symlink loop)
/// are failures in the report, not the end of the run; a directory
/// symlink loop is walked once.
#[test]
fn bench_reports_unreadable_entries_and_goes_on() {
    use std::os::unix::fs::symlink;
    let dir = std::env::temp_dir().join(format!("spdl-cli-odd-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::copy(fixture("images/jpeg_baseline_420.jpg"), dir.join("sub/good.jpg")).unwrap();
    symlink("/nonexistent.jpg", dir.join("dangling.jpg")).unwrap();
    symlink(dir.join("b.jpg"), dir.join("a.jpg")).unwrap();
    symlink(dir.join("a.jpg"), dir.join("b.jpg")).unwrap();
    symlink("..", dir.join("sub/up")).unwrap();
    let out = spdl().args(["bench", "--json"]).arg(&dir).output().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["decoded"], 1);
    assert_eq!(failed_files(&report), ["a.jpg", "b.jpg", "dangling.jpg"]);
}

/// A folder of loose files and tar shards runs both (the shards were
/// ignored); a compressed shard, which is not read, is a reported failure.
#[test]
fn bench_runs_loose_files_and_shards_together() {
    let dir = std::env::temp_dir().join(format!("spdl-cli-mixed-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::copy(fixture("images/jpeg_baseline_420.jpg"), dir.join("loose.jpg")).unwrap();
    std::fs::copy(fixture("shards/shard-000.tar"), dir.join("sub/shard-000.tar")).unwrap();
    std::fs::write(dir.join("packed.tar.gz"), b"\x1f\x8b not read").unwrap();
    let out = spdl()
        .args(["bench", "--json", "--kind", "image"])
        .arg(&dir)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["decoded"], 1 + 4, "the loose image and the shard's 4 samples");
    assert_eq!(failed_files(&report), ["packed.tar.gz"]);
}

/// `bench` over an S3 prefix (a real S3 server) decodes and fails exactly
/// the files it does over the local folder: the pipeline's failure report
/// is the same whatever the source.
#[test]
fn bench_over_s3_reports_the_same_failures_as_the_local_folder() {
    let s3 = servers::S3Server::start(&["fixtures/images"]);
    let bench = |src: &str| -> serde_json::Value {
        let out = spdl()
            .args(["bench", "--json", "--kind", "image", src])
            .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", s3.port))
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{src}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let local = bench(fixture("images").to_str().unwrap());
    let remote = bench(&format!("s3://{}/fixtures/images", servers::BUCKET));
    assert_eq!(remote["listed"], local["listed"]);
    assert_eq!(remote["decoded"], local["decoded"]);
    let failed = failed_files(&local);
    assert!(!failed.is_empty(), "the fixtures include broken images");
    assert_eq!(failed_files(&remote), failed);
}

/// `decode` and `info` take URLs too: frames sampled from an S3 object
/// (a real S3 server) equal the library's from the local file.
#[test]
fn decode_and_info_read_urls() {
    let s3 = servers::S3Server::start(&["fixtures/h264_yuv420p.mp4"]);
    let url = format!("s3://{}/fixtures/h264_yuv420p.mp4", servers::BUCKET);
    let out = std::env::temp_dir().join(format!("spdl-cli-url-{}.npy", std::process::id()));
    let run = |args: &[&str]| {
        spdl()
            .args(args)
            .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", s3.port))
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .output()
            .unwrap()
    };
    let decoded = run(&["decode", &url, "-o", out.to_str().unwrap(), "--frames", "0,30"]);
    assert!(decoded.status.success(), "{}", String::from_utf8_lossy(&decoded.stderr));
    let (shape, data) = read_npy(&out, "|u1");
    std::fs::remove_file(&out).ok();
    let local = spdl::io::sample_frames(fixture("h264_yuv420p.mp4"), &[0, 30], &Default::default()).unwrap();
    assert_eq!(shape, local.frames.shape());
    assert_eq!(data, local.frames.as_slice().unwrap());
    let info = run(&["info", &url, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(v["streams"][0]["codec"], "h264");
}

/// Ranks split the files: together they cover every file, each an equal
/// share (the last one padded).
#[test]
fn bench_ranks_split_the_files() {
    let decoded = |rank: usize| {
        let out = spdl()
            .args([
                "bench",
                "--json",
                "--kind",
                "image",
                "--world-size",
                "3",
                "--rank",
                &rank.to_string(),
            ])
            .arg(fixture("images"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        report["listed"].as_u64().unwrap()
    };
    let all = {
        let out = spdl()
            .args(["bench", "--json", "--kind", "image"])
            .arg(fixture("images"))
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["listed"]
            .as_u64()
            .unwrap()
    };
    let parts: Vec<u64> = (0..3).map(decoded).collect();
    assert!(parts.iter().all(|&p| p == all.div_ceil(3)), "{parts:?} of {all}");
}

/// A playlist named like a video is refused by format unless the input is
/// trusted (`--trusted-input`), in `info`, `decode` and `bench` alike.
#[test]
fn untrusted_formats_are_refused_unless_trusted_input() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-untrusted");
    std::fs::create_dir_all(&dir).unwrap();
    let segment = fixture("mpeg2_yuv420p.ts");
    let playlist = format!(
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1.0,\nfile://{}\n#EXT-X-ENDLIST\n",
        segment.display()
    );
    let clip = dir.join("clip.mp4");
    std::fs::write(&clip, playlist).unwrap();
    let run = |args: &[&str]| spdl().args(args).arg(&clip).output().unwrap();
    let refused = run(&["info"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("`hls`") && stderr.contains("--trusted-input"),
        "{stderr}"
    );
    let trusted = run(&["info", "--trusted-input"]);
    assert!(trusted.status.success(), "{}", String::from_utf8_lossy(&trusted.stderr));
    let out = dir.join("clip.npy");
    let decoded = spdl()
        .args(["decode", "--trusted-input", "-o"])
        .arg(&out)
        .arg(&clip)
        .output()
        .unwrap();
    assert!(decoded.status.success(), "{}", String::from_utf8_lossy(&decoded.stderr));
    let report = spdl().args(["bench", "--json"]).arg(&dir).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert!(failed_files(&report).iter().any(|f| f.contains("clip.mp4")), "{report}");
}

/// Output into a closed pipe (`spdl info F | head -c 1`) ends the command
/// quietly, like other Unix tools: no panic, no message, exit 0. An error
/// names its cause once.
#[test]
fn a_closed_stdout_ends_quietly() {
    let (video, images) = (fixture("h264_aac.mp4"), fixture("images"));
    for (args, src) in [
        (vec!["info"], &video),
        (vec!["info", "--json"], &video),
        (vec!["bench"], &images),
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = spdl().args(&args).arg(src).stdout(writer).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
    }
    let out = spdl().arg("bench").arg(&video).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("Not a directory").count(), 1, "{stderr}");
}

/// A FLAC file whose STREAMINFO fields are smashed (4 bytes overwritten
/// with 0x7FFFFFFF, 0xFFFFFFFF or zeros at every offset of the block) is
/// described or refused with an error under a 1 GB address-space cap: no
/// allocation sized by the forged fields aborts the process.
#[test]
fn smashed_flac_headers_never_abort_under_a_memory_cap() {
    let src = std::fs::read(fixture("audio/flac_s16_44100_stereo.flac")).unwrap();
    assert_eq!(&src[..4], b"fLaC");
    let dir = std::env::temp_dir().join(format!("spdl-flac-smash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for offset in 8..8 + 34 {
        for pattern in [[0x7f, 0xff, 0xff, 0xff], [0xff; 4], [0; 4]] {
            let mut data = src.clone();
            data[offset..offset + 4].copy_from_slice(&pattern);
            let path = dir.join(format!("smash_{offset}_{:02x}.flac", pattern[0]));
            std::fs::write(&path, &data).unwrap();
            for command in ["info", "decode"] {
                let mut run = Command::new("prlimit");
                run.arg("--as=1000000000")
                    .arg(env!("CARGO_BIN_EXE_spdl"))
                    .arg(command)
                    .arg(&path);
                if command == "decode" {
                    run.arg("-o").arg(dir.join("out.npy"));
                }
                let out = run.output().unwrap();
                let stderr = String::from_utf8_lossy(&out.stderr);
                // Success or a clean error (exit 1); never a signal or an abort.
                assert!(
                    matches!(out.status.code(), Some(0 | 1)),
                    "{path:?} {command}: {:?} {stderr}",
                    out.status
                );
                assert!(!stderr.contains("memory allocation"), "{path:?}: {stderr}");
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

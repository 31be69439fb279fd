//! Image decoding against Pillow on every fixture in fixtures/images:
//! bit-exact for lossless formats, PSNR >= 40 dB for JPEG (libjpeg-turbo
//! versions and IDCT paths may differ slightly), resized output within a
//! stated PSNR of Pillow's resize with the same filter.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use spdl_io::{
    load_image, load_image_batch, load_image_u16, BatchConfig, Error, FailurePolicy, Fit, ImageConfig, Interpolation,
    Limits, PixelFormat, Source,
};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/images")
}

struct Entry {
    file: String,
    format: String,
    expect: String,
    bit_depth: u64,
    mode: String,
    width: usize,
    height: usize,
    /// "ffmpeg" for formats Debian's Pillow cannot read (AVIF).
    oracle: String,
}

fn manifest() -> Vec<Entry> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("manifest.json")).unwrap()).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| Entry {
            file: e["file"].as_str().unwrap().into(),
            format: e["format"].as_str().unwrap_or("").into(),
            expect: e["expect"].as_str().unwrap().into(),
            bit_depth: e["bit_depth"].as_u64().unwrap_or(8),
            mode: e["mode"].as_str().unwrap_or("").into(),
            width: e["width"].as_u64().unwrap_or(0) as usize,
            height: e["height"].as_u64().unwrap_or(0) as usize,
            oracle: e["oracle"].as_str().unwrap_or("pillow").into(),
        })
        .collect()
}

/// Pillow's pixels and (h, w, c) for `file`; see `pillow_oracle.py`.
fn pillow(file: &str, mode: &str, transpose: bool, size: Option<(u32, u32)>, filter: &str) -> (Vec<u8>, Vec<usize>) {
    pillow_box(file, mode, transpose, size, filter, None)
}

/// As [`pillow`], resizing from `region` (left, top, right, bottom).
fn pillow_box(
    file: &str,
    mode: &str,
    transpose: bool,
    size: Option<(u32, u32)>,
    filter: &str,
    region: Option<[u32; 4]>,
) -> (Vec<u8>, Vec<usize>) {
    let size = size.map_or("-".to_string(), |(w, h)| format!("{w}x{h}"));
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/pillow_oracle.py"))
        .arg(dir().join(file))
        .args([mode, if transpose { "1" } else { "0" }, &size, filter]);
    if let Some([l, t, r, b]) = region {
        cmd.arg(format!("{l},{t},{r},{b}"));
    }
    let out = cmd.output().expect("run /usr/bin/python3 with Pillow (python3-pil)");
    assert!(
        out.status.success(),
        "pillow failed on {file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    let last = stderr.lines().last().unwrap_or_default();
    let shape = last
        .trim_start_matches("SHAPE ")
        .split(' ')
        .map(|s| s.parse().unwrap())
        .collect();
    (out.stdout, shape)
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

fn max_diff(a: &[u8], b: &[u8]) -> u8 {
    a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap_or(0)
}

/// The `ffmpeg` CLI's RGB pixels and (h, w, 3) of a fixture.
fn ffmpeg_rgb(e: &Entry) -> (Vec<u8>, Vec<usize>) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(dir().join(&e.file))
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(out.status.success(), "ffmpeg failed on {}", e.file);
    (out.stdout, vec![e.height, e.width, 3])
}

fn lossless(e: &Entry) -> bool {
    !matches!(e.format.as_str(), "jpeg" | "webp") || e.file.contains("lossless")
}

#[test]
fn every_image_matches_its_oracle_at_native_size() {
    let mut failures = Vec::new();
    for e in manifest().into_iter().filter(|e| e.expect == "ok") {
        let img = load_image(dir().join(&e.file), &ImageConfig::default()).unwrap_or_else(|err| panic!("{err}"));
        // Pillow opens 16-bit gray as 32-bit "I" and clips it when
        // converting; compare those with the true samples' high byte.
        let (expected, shape) = if e.oracle == "ffmpeg" {
            ffmpeg_rgb(&e)
        } else if e.bit_depth == 16 && e.mode.starts_with('I') {
            let (raw, shape) = pillow(&e.file, "I16", true, None, "-");
            let hi: Vec<u8> = raw.chunks_exact(2).flat_map(|v| [v[1]; 3]).collect();
            (hi, vec![shape[0], shape[1], 3])
        } else {
            pillow(&e.file, "RGB", true, None, "-")
        };
        if img.shape() != &shape[..] {
            failures.push(format!("{}: shape {:?} vs Pillow {shape:?}", e.file, img.shape()));
            continue;
        }
        let got = img.as_slice().unwrap();
        let (p, max) = (psnr(got, &expected), max_diff(got, &expected));
        if (lossless(&e) && max != 0) || p < 40.0 {
            failures.push(format!("{}: PSNR {p:.1} dB, max diff {max}", e.file));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Every output format against the Pillow mode that means the same thing.
#[test]
fn output_formats_match_pillow_modes() {
    for file in [
        "png_rgba8.png",
        "png_palette_trns.png",
        "png_gray_alpha8.png",
        "jpeg_baseline_420.jpg",
    ] {
        for (fmt, mode) in [
            (PixelFormat::Gray8, "L"),
            (PixelFormat::Rgba, "RGBA"),
            (PixelFormat::Bgr24, "RGB"),
        ] {
            let img = load_image(dir().join(file), &ImageConfig::default().with_pix_fmt(fmt)).unwrap();
            let (mut expected, _) = pillow(file, mode, true, None, "-");
            if fmt == PixelFormat::Bgr24 {
                expected.chunks_exact_mut(3).for_each(|p| p.swap(0, 2));
            }
            let got = img.as_slice().unwrap();
            if file.ends_with(".jpg") && mode == "L" {
                // gray8 from a JPEG is the JPEG's own luma (as OpenCV's
                // IMREAD_GRAYSCALE); Pillow recomputes L from RGB clipped to
                // 0..255, which differs where colours are out of gamut.
                let p = psnr(got, &expected);
                assert!(p >= 35.0, "{file} as L: PSNR {p:.1}");
            } else {
                assert_eq!(max_diff(got, &expected), 0, "{file} as {mode}");
            }
        }
    }
}

/// Resizing follows Pillow's convolution resize with the same filter. The
/// SIMD resampler rounds in fixed point differently, so the tolerance is a
/// PSNR of 40 dB (measured well above it), not bit-exactness.
#[test]
fn resize_matches_pillow_with_the_same_filter() {
    for file in ["png_rgb8.png", "jpeg_baseline_444.jpg", "jpeg_odd_321x241.jpg"] {
        for (interp, filter) in [
            (Interpolation::Bilinear, "BILINEAR"),
            (Interpolation::Bicubic, "BICUBIC"),
            (Interpolation::Area, "BOX"),
            (Interpolation::Lanczos, "LANCZOS"),
        ] {
            let config = ImageConfig::default()
                .with_size(97, 61)
                .with_interpolation(interp)
                .with_dct_scaling(false);
            let img = load_image(dir().join(file), &config).unwrap();
            let (expected, shape) = pillow(file, "RGB", true, Some((97, 61)), filter);
            assert_eq!(img.shape(), &shape[..]);
            let p = psnr(img.as_slice().unwrap(), &expected);
            assert!(p >= 40.0, "{file} {filter}: PSNR {p:.1}");
        }
    }
}

/// DCT-domain downscaling trades a little accuracy for speed; the result
/// stays close to Pillow's full-resolution resize (30 dB), and switching it
/// off must change the output (so the fast path is really taken).
#[test]
fn dct_downscaling_stays_close_to_a_full_decode() {
    let file = "jpeg_baseline_420.jpg";
    let fast = load_image(dir().join(file), &ImageConfig::default().with_size(40, 30)).unwrap();
    let exact = load_image(
        dir().join(file),
        &ImageConfig::default().with_size(40, 30).with_dct_scaling(false),
    )
    .unwrap();
    let (expected, _) = pillow(file, "RGB", true, Some((40, 30)), "BILINEAR");
    let p = psnr(fast.as_slice().unwrap(), &expected);
    assert!(p >= 30.0, "PSNR {p:.1}");
    assert_ne!(fast, exact);
}

#[test]
fn orientation_can_be_left_unapplied() {
    for k in 1..=8 {
        let file = format!("jpeg_exif_orientation_{k}.jpg");
        let img = load_image(dir().join(&file), &ImageConfig::default().with_orientation(false)).unwrap();
        let (expected, shape) = pillow(&file, "RGB", false, None, "-");
        assert_eq!(img.shape(), &shape[..], "{file}");
        assert!(psnr(img.as_slice().unwrap(), &expected) >= 40.0, "{file}");
    }
}

/// Orientation, crop and resize compose as Pillow's `exif_transpose`
/// then `resize(box=crop)`: the crop is in displayed coordinates.
#[test]
fn crop_and_resize_are_in_displayed_coordinates() {
    let crop = spdl_io::Crop {
        left: 10,
        top: 5,
        width: 40,
        height: 30,
    };
    let config = ImageConfig::default()
        .with_crop(crop)
        .with_size(20, 15)
        .with_dct_scaling(false);
    for k in 1..=8 {
        let file = format!("jpeg_exif_orientation_{k}.jpg");
        let img = load_image(dir().join(&file), &config).unwrap();
        let (expected, shape) = pillow_box(&file, "RGB", true, Some((20, 15)), "BILINEAR", Some([10, 5, 50, 35]));
        assert_eq!(img.shape(), &shape[..], "{file}");
        let p = psnr(img.as_slice().unwrap(), &expected);
        assert!(p >= 35.0, "{file}: PSNR {p:.1}");
    }
}

#[test]
fn cover_fit_is_a_centred_crop_then_resize() {
    let file = dir().join("png_rgb8.png");
    let full = load_image(&file, &ImageConfig::default()).unwrap();
    let (h, w) = (full.shape()[0] as u32, full.shape()[1] as u32);
    let side = h.min(w);
    let crop = spdl_io::Crop {
        left: (w - side) / 2,
        top: (h - side) / 2,
        width: side,
        height: side,
    };
    let cover = load_image(&file, &ImageConfig::default().with_size(50, 50).with_fit(Fit::Cover)).unwrap();
    let manual = load_image(&file, &ImageConfig::default().with_crop(crop).with_size(50, 50)).unwrap();
    assert_eq!(cover.shape(), [50, 50, 3]);
    assert!(psnr(cover.as_slice().unwrap(), manual.as_slice().unwrap()) >= 40.0);
}

/// 16-bit samples survive intact: gray against Pillow's 16-bit array, RGB
/// against FFmpeg's rgb48 decode (Pillow reads 16-bit RGB as 8-bit).
#[test]
fn sixteen_bit_sources_keep_full_precision() {
    for file in ["png_gray16.png", "tiff_gray16.tif"] {
        let img = load_image_u16(dir().join(file), &ImageConfig::default()).unwrap();
        let (raw, _) = pillow(file, "I16", true, None, "-");
        let expected: Vec<u16> = raw.chunks_exact(2).map(|v| u16::from_ne_bytes([v[0], v[1]])).collect();
        let got: Vec<u16> = img.iter().step_by(3).copied().collect();
        assert_eq!(got, expected, "{file}");
    }
    for file in ["png_rgb16.png", "tiff_rgb16.tif"] {
        let img = load_image_u16(dir().join(file), &ImageConfig::default()).unwrap();
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(dir().join(file))
            .args(["-f", "rawvideo", "-pix_fmt", "rgb48le", "-"])
            .output()
            .unwrap();
        let expected: Vec<u16> = out
            .stdout
            .chunks_exact(2)
            .map(|v| u16::from_le_bytes([v[0], v[1]]))
            .collect();
        assert_eq!(img.as_slice().unwrap(), &expected[..], "{file}");
        assert!(expected.iter().any(|v| v & 0xFF != 0), "{file} has real 16-bit content");
    }
}

#[test]
fn batch_equals_single_loads_in_order() {
    let files: Vec<PathBuf> = [
        "jpeg_baseline_420.jpg",
        "png_palette_trns.png",
        "webp_lossy.webp",
        "gif_animated_3frames.gif",
    ]
    .iter()
    .map(|f| dir().join(f))
    .collect();
    let image = ImageConfig::default().with_size(64, 48);
    let batch = load_image_batch(files.clone(), &BatchConfig::new(image)).unwrap();
    assert_eq!(batch.images.shape(), [4, 48, 64, 3]);
    for (i, f) in files.iter().enumerate() {
        let single = load_image(f, &image).unwrap();
        assert_eq!(batch.images.index_axis(ndarray::Axis(0), i), single, "{}", f.display());
    }
}

/// The batch's output size is checked before anything is allocated: an
/// empty size is a configuration error (it returned an empty batch and
/// reported nothing), a huge one a limit error (it aborted the process).
#[test]
fn batch_output_size_is_checked_before_allocating() {
    let files = vec![dir().join("jpeg_baseline_420.jpg"), dir().join("does_not_exist.jpg")];
    for (w, h) in [(0, 0), (0, 10), (10, 0), (70_000, 10)] {
        let config = BatchConfig::new(ImageConfig::default().with_size(w, h)).with_policy(FailurePolicy::Skip);
        let err = load_image_batch(files.clone(), &config).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{w}x{h}: {err}");
    }
    let huge = BatchConfig::new(ImageConfig::default().with_size(65_536, 65_536));
    let err = load_image_batch(files.clone(), &huge).unwrap_err();
    assert!(matches!(err, Error::Limit { .. }), "{err}");
    let err = load_image(&files[0], &huge.image).unwrap_err();
    assert!(matches!(err, Error::Limit { .. }), "a single image too: {err}");
}

/// A cancelled batch stops and says so, under either failure policy:
/// cancelled before it starts, and while it runs (2,000 images take
/// seconds; the cancel comes after 20 ms).
#[test]
fn a_cancelled_batch_stops_with_cancelled() {
    let files = vec![dir().join("jpeg_baseline_420.jpg"); 2000];
    let image = ImageConfig::default().with_size(32, 32);
    for policy in [FailurePolicy::Strict, FailurePolicy::Skip] {
        let cancel = spdl_io::Cancel::default();
        cancel.cancel();
        let config = BatchConfig::new(image).with_policy(policy).with_cancel(cancel);
        let err = load_image_batch(files[..4].to_vec(), &config).unwrap_err();
        assert!(matches!(err, Error::Cancelled), "{err}");
    }
    let cancel = spdl_io::Cancel::default();
    let config = BatchConfig::new(image).with_cancel(cancel.clone());
    let running = std::thread::spawn(move || load_image_batch(files, &config));
    std::thread::sleep(std::time::Duration::from_millis(20));
    cancel.cancel();
    assert!(matches!(running.join().unwrap(), Err(Error::Cancelled)));
}

#[test]
fn batch_failures_are_strict_or_skipped_and_reported() {
    let files = ["png_rgb8.png", "truncated.png", "jpeg_gray.jpg", "not_image.png"].map(|f| dir().join(f));
    let image = ImageConfig::default().with_size(32, 32);
    let err = load_image_batch(files.clone(), &BatchConfig::new(image)).unwrap_err();
    assert!(err.to_string().contains("truncated.png"), "{err}");
    let batch = load_image_batch(files.clone(), &BatchConfig::new(image).with_policy(FailurePolicy::Skip)).unwrap();
    assert_eq!(batch.images.shape()[0], 2);
    assert!(batch.sources[0].ends_with("png_rgb8.png") && batch.sources[1].ends_with("jpeg_gray.jpg"));
    let failed: Vec<&str> = batch
        .failures
        .iter()
        .map(|(s, _)| s.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(failed, ["truncated.png", "not_image.png"]);
    let gray = load_image(&files[2], &image).unwrap();
    assert_eq!(batch.images.index_axis(ndarray::Axis(0), 1), gray);
}

#[test]
fn bombs_are_refused_from_the_header() {
    for file in ["bomb_100000x100000.png", "huge_sof_65000x65000.jpg"] {
        let err = load_image(dir().join(file), &ImageConfig::default()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Limit {
                    what: "pixels per image",
                    ..
                }
            ),
            "{file}: {err}"
        );
        assert!(err.to_string().contains(file));
    }
    let small = ImageConfig::default().with_limits(Limits::default().with_max_pixels(100));
    let err = load_image(dir().join("png_rgb8.png"), &small).unwrap_err();
    assert!(matches!(err, Error::Limit { .. }), "{err}");
}

#[test]
fn broken_images_fail_cleanly_or_decode() {
    for e in manifest().into_iter().filter(|e| e.expect != "ok") {
        match load_image(dir().join(&e.file), &ImageConfig::default()) {
            Ok(_) => assert_eq!(e.expect, "partial", "{} decoded but should fail", e.file),
            Err(err) => assert!(err.to_string().contains(&e.file), "{}: {err}", e.file),
        }
    }
    let err = load_image(dir().join("missing.jpg"), &ImageConfig::default()).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
}

/// Deterministic xorshift, so failures reproduce.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn truncated_and_bit_flipped_images_never_crash() {
    let mut rng = 0x1234_5678u64;
    let config = ImageConfig::default()
        .with_size(16, 16)
        .with_limits(Limits::default().with_max_pixels(1 << 22));
    for e in manifest().into_iter().filter(|e| e.expect == "ok") {
        let data = std::fs::read(dir().join(&e.file)).unwrap();
        for k in 0..16 {
            let name = format!("{}[..{k}/16]", e.file);
            let cut = data[..data.len() * k / 16].to_vec();
            if let Err(err) = load_image(Source::from_bytes(cut, name.clone()), &config) {
                assert!(err.to_string().contains(&name), "{err}");
            }
        }
        for round in 0..16 {
            let mut bad = data.clone();
            for _ in 0..1 + xorshift(&mut rng) % 8 {
                let i = (xorshift(&mut rng) % bad.len() as u64) as usize;
                bad[i] ^= 1 << (xorshift(&mut rng) % 8);
            }
            let name = format!("{}#flip{round}", e.file);
            if let Err(err) = load_image(Source::from_bytes(bad, name.clone()), &config) {
                assert!(err.to_string().contains(&name), "{err}");
            }
        }
    }
}

/// A JPEG whose entropy-coded data is damaged decodes with libjpeg's
/// "Corrupt JPEG data" warning, as in Pillow and OpenCV (real datasets
/// contain such files); a truncated JPEG stays an error, as in Pillow.
#[test]
fn corrupt_jpeg_data_decodes_like_pillow_but_truncation_fails() {
    let img = load_image(dir().join("corrupt_entropy.jpg"), &ImageConfig::default()).unwrap();
    let (expected, shape) = pillow("corrupt_entropy.jpg", "RGB", true, None, "-");
    assert_eq!(img.shape(), &shape[..]);
    let p = psnr(img.as_slice().unwrap(), &expected);
    assert!(p >= 40.0, "PSNR {p:.1}");
    let err = load_image(dir().join("truncated.jpg"), &ImageConfig::default()).unwrap_err();
    assert!(err.to_string().contains("Premature end"), "{err}");
}

/// Stray bytes between two marker segments: libjpeg warns ("Corrupt JPEG
/// data: 5 extraneous bytes before marker 0xdb") and decodes, as Pillow and
/// djpeg do; the picture is the original's, at full size and scaled.
#[test]
fn stray_bytes_before_a_jpeg_marker_decode_like_the_clean_file() {
    for config in [ImageConfig::default(), ImageConfig::default().with_size(80, 60)] {
        let clean = load_image(dir().join("jpeg_baseline_420.jpg"), &config).unwrap();
        let junk = load_image(dir().join("jpeg_extraneous_bytes.jpg"), &config).unwrap();
        assert_eq!(clean, junk);
    }
    let (expected, shape) = pillow("jpeg_extraneous_bytes.jpg", "RGB", true, None, "-");
    let img = load_image(dir().join("jpeg_extraneous_bytes.jpg"), &ImageConfig::default()).unwrap();
    assert_eq!((img.shape(), img.as_slice().unwrap()), (&shape[..], &expected[..]));
}

/// A JPEG or PNG whose writer never added the end marker (EOI, IEND) but
/// whose image data is complete decodes exactly like the complete file (as
/// libjpeg's `djpeg` and FFmpeg decode it); a file cut inside its image
/// data stays an error (the end marker is only added when the decode is
/// then free of libjpeg's warnings).
#[test]
fn a_missing_end_marker_decodes_but_truncation_still_fails() {
    let config = ImageConfig::default();
    for (file, marker) in [
        ("jpeg_baseline_420.jpg", 2),
        ("jpeg_progressive.jpg", 2),
        ("png_rgb8.png", 12),
    ] {
        let data = std::fs::read(dir().join(file)).unwrap();
        let open = Source::from_bytes(data[..data.len() - marker].to_vec(), format!("open_{file}"));
        let got = load_image(open, &config).unwrap_or_else(|e| panic!("{file} without its end marker: {e}"));
        assert_eq!(got, load_image(dir().join(file), &config).unwrap(), "{file}");
    }
    // Cut mid-scan: still errors.
    for file in ["truncated.jpg", "truncated.png"] {
        let err = load_image(dir().join(file), &config).unwrap_err();
        assert!(err.to_string().contains(file), "{err}");
    }
}

/// Variants the primary decoders lack go to FFmpeg's: a palette TIFF and
/// a lossless (SOF3) JPEG, made from fixtures by the `ffmpeg` CLI, decode
/// to the same pixels as the CLI decodes them.
#[test]
fn palette_tiff_and_lossless_jpeg_decode_through_ffmpeg() {
    let tmp = std::env::temp_dir().join(format!("spdl_ffmpeg_fallback_{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let src = dir().join("png_rgb8.png");
    for (name, args) in [
        ("palette.tif", &["-pix_fmt", "pal8", "-c:v", "tiff"][..]),
        (
            "lossless.jpg",
            &["-pix_fmt", "bgr24", "-c:v", "ljpeg", "-f", "mjpeg"][..],
        ),
    ] {
        let out = tmp.join(name);
        let ok = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(&src)
            .args(args)
            .arg(&out)
            .status()
            .unwrap();
        assert!(ok.success(), "ffmpeg could not write {name}");
        let img = load_image(&out, &ImageConfig::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let raw = Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&out)
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            .output()
            .unwrap()
            .stdout;
        assert_eq!(img.shape(), [120, 160, 3], "{name}");
        assert_eq!(
            img.as_slice().unwrap(),
            &raw[..],
            "{name}: pixels as the CLI decodes them"
        );
    }
    std::fs::remove_dir_all(&tmp).ok();
}

/// A JPEG that leaves libjpeg in a failed state (a SOF with height 0)
/// fails alone: the images decoded after it on the same threads decode
/// (regression: a reused decompressor failed every later JPEG with the
/// earlier file's error, and a batch with the skip policy dropped them).
#[test]
fn a_bad_jpeg_does_not_fail_the_jpegs_after_it() {
    let good = std::fs::read(dir().join("jpeg_baseline_420.jpg")).unwrap();
    let mut bad = good.clone();
    let sof = bad.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bad[sof + 5..sof + 7].copy_from_slice(&[0, 0]); // height 0
    let config = ImageConfig::default();
    let expected = load_image(dir().join("jpeg_baseline_420.jpg"), &config).unwrap();
    for _ in 0..3 {
        assert!(load_image(Source::from_bytes(bad.clone(), "height0.jpg"), &config).is_err());
        let again = load_image(Source::from_bytes(good.clone(), "good.jpg"), &config).unwrap();
        assert_eq!(again, expected);
    }
    let mut sources = vec![Source::from_bytes(bad, "height0.jpg")];
    sources.extend((0..8).map(|i| Source::from_bytes(good.clone(), format!("good{i}.jpg"))));
    let sized = config.with_size(64, 48);
    let batch = load_image_batch(sources, &BatchConfig::new(sized).with_policy(FailurePolicy::Skip)).unwrap();
    let failed: Vec<&str> = batch.failures.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(failed, ["height0.jpg"]);
    assert_eq!(batch.images.shape()[0], 8);
}

/// A panic inside a third-party decoder (the tiff crate asserts on tiled
/// TIFFs with separate planes and partial tiles) is an error naming the
/// file when the next decoder (libtiff) refuses it too, never a crash; a
/// batch in skip mode skips that file only.
#[test]
fn a_decoder_panic_is_an_error_and_a_skipped_file() {
    let bad = dir().join("tiff_tiled_planar_short_tile.tif");
    let err = load_image(&bad, &ImageConfig::default()).unwrap_err();
    assert!(matches!(err, Error::Image { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("tiff_tiled_planar_short_tile.tif") && text.contains("panicked"),
        "{text}"
    );
    let config =
        spdl_io::BatchConfig::new(ImageConfig::default().with_size(16, 16)).with_policy(spdl_io::FailurePolicy::Skip);
    let batch = spdl_io::load_image_batch([dir().join("png_rgb8.png"), bad], &config).unwrap();
    assert_eq!(batch.images.shape()[0], 1);
    assert_eq!(batch.failures.len(), 1);
    assert!(batch.failures[0].0.contains("tiff_tiled_planar_short_tile.tif"));
}

/// A JPEG whose EXIF segment comes after a comment and fill bytes keeps
/// its orientation, as Pillow's `exif_transpose` applies it.
#[test]
fn exif_after_other_segments_and_fill_bytes_is_applied() {
    let data = std::fs::read(dir().join("jpeg_exif_orientation_6.jpg")).unwrap();
    let app1 = data
        .windows(2)
        .position(|w| w == [0xFF, 0xE1])
        .expect("an APP1 segment");
    let mut moved = data[..app1].to_vec();
    moved.extend([0xFF, 0xFE, 0x00, 0x06, b'n', b'o', b't', b'e']); // a comment first
    moved.extend([0xFF, 0xFF]); // fill bytes before the marker
    moved.extend(&data[app1..]);
    let config = ImageConfig::default();
    let want = load_image(dir().join("jpeg_exif_orientation_6.jpg"), &config).unwrap();
    let got = load_image(spdl_io::Source::from_bytes(moved, "moved.jpg"), &config).unwrap();
    assert_eq!(got.shape(), want.shape());
    assert_eq!(got, want);
}

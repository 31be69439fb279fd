//! One conformance suite over every source kind: local files, an HTTP
//! server, and a real S3-compatible server (moto, started here from the
//! test virtual environment). Every kind must give the same arrays, the
//! same listings and the same shard samples as the local files; faults
//! (503s, dropped connections, slow servers) end in a correct result after
//! retries or a clear error naming the URL.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::servers::{workspace, FileServer, S3Server};
use spdl_io::{
    list_dataset, list_store, load_audio, load_image, load_video, sample_frames, AudioConfig, Error, ImageConfig,
    ShardReader, Source, Store, StoreConfig, VideoConfig,
};

const IMAGES: [&str; 3] = [
    "fixtures/images/jpeg_baseline_420.jpg",
    "fixtures/images/png_rgba8.png",
    "fixtures/images/jpeg_exif_orientation_6.jpg",
];
const VIDEOS: [&str; 3] = [
    "fixtures/h264_yuv420p.mp4",
    "fixtures/vp9_yuv420p.webm",
    "fixtures/h264_vfr.mkv",
];
const AUDIO: [&str; 2] = [
    "fixtures/audio/flac_s16_44100_stereo.flac",
    "fixtures/audio/mp3_cbr_128k_44100_stereo.mp3",
];

/// A source kind: how to name a workspace-relative file.
struct Backend {
    name: &'static str,
    store: Option<Store>,
}

impl Backend {
    fn source(&self, rel: &str) -> Source {
        match &self.store {
            Some(store) => store.source(rel),
            None => Source::Path(workspace().join(rel)),
        }
    }
}

/// The same decode through every backend equals the local decode.
fn check_media(backend: &Backend) {
    let image_config = ImageConfig::default().with_size(64, 48);
    for rel in IMAGES {
        let want = load_image(workspace().join(rel), &image_config).unwrap();
        let got = load_image(backend.source(rel), &image_config).unwrap_or_else(|e| panic!("{}: {e}", backend.name));
        assert_eq!(got, want, "{}: {rel}", backend.name);
    }
    let video_config = VideoConfig::default().with_size(32, 32);
    for rel in VIDEOS {
        let want = load_video(workspace().join(rel), &video_config).unwrap();
        let got = load_video(backend.source(rel), &video_config).unwrap_or_else(|e| panic!("{}: {e}", backend.name));
        assert_eq!(got.frames, want.frames, "{}: {rel}", backend.name);
        assert_eq!(got.pts, want.pts, "{}: {rel}", backend.name);
        let picked = sample_frames(backend.source(rel), &[7, 2, 11], &video_config).unwrap();
        for (k, i) in [7, 2, 11].into_iter().enumerate() {
            assert_eq!(
                picked.frames.index_axis(ndarray::Axis(0), k),
                want.frames.index_axis(ndarray::Axis(0), i)
            );
        }
    }
    for rel in AUDIO {
        let want = load_audio(workspace().join(rel), &AudioConfig::default()).unwrap();
        let got = load_audio(backend.source(rel), &AudioConfig::default()).unwrap();
        assert_eq!(got.samples, want.samples, "{}: {rel}", backend.name);
    }
    let missing = "fixtures/no_such_file.jpg";
    let err = load_image(backend.source(missing), &image_config).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{}: {err}", backend.name);
    assert!(err.to_string().contains("no_such_file.jpg"), "{err}");
}

/// Tar shards read through the backend match the reference listing, and
/// the truncated shard yields its complete samples and then one error.
fn check_shards(backend: &Backend) {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(workspace().join("fixtures/shards/manifest.json")).unwrap())
            .unwrap();
    for (shard, samples) in manifest.as_object().unwrap() {
        let rel = format!("fixtures/shards/{shard}");
        let reader: Box<dyn std::io::Read> = match &backend.store {
            Some(store) => Box::new(store.reader(&rel).unwrap()),
            None => Box::new(std::fs::File::open(workspace().join(&rel)).unwrap()),
        };
        let items: Vec<_> = ShardReader::new(reader, rel.clone(), 1 << 20).collect();
        let want = samples.as_array().unwrap();
        let broken = shard.starts_with("broken");
        assert_eq!(
            items.len(),
            want.len() + usize::from(broken),
            "{}: {shard}",
            backend.name
        );
        for (item, want) in items.iter().zip(want) {
            let sample = item.as_ref().unwrap();
            assert_eq!(sample.key, want["key"].as_str().unwrap());
            let label: u64 = std::str::from_utf8(&sample.fields["cls"]).unwrap().parse().unwrap();
            assert_eq!(label, want["label"].as_u64().unwrap());
            let image = std::fs::read(
                workspace()
                    .join("fixtures/images")
                    .join(want["image"].as_str().unwrap()),
            )
            .unwrap();
            assert_eq!(&sample.fields[want["ext"].as_str().unwrap()][..], &image[..]);
        }
        if broken {
            let err = items.last().unwrap().as_ref().unwrap_err().to_string();
            assert!(err.contains(&rel) && err.contains("shard1/000002"), "{err}");
        }
    }
}

#[test]
fn local_http_and_s3_sources_give_identical_results() {
    let http = FileServer::start(&workspace());
    let s3 = S3Server::start(&["fixtures"]);
    let backends = [
        Backend {
            name: "local",
            store: None,
        },
        Backend {
            name: "http",
            store: Some(http.store(&StoreConfig::default())),
        },
        Backend {
            name: "s3",
            store: Some(s3.store()),
        },
    ];
    for backend in &backends {
        check_media(backend);
        check_shards(backend);
    }
    // Listing: the S3 prefix lists exactly what the local folder holds.
    let local: Vec<_> = list_dataset(workspace().join("fixtures/images").to_str().unwrap(), &["jpg", "png"])
        .unwrap()
        .into_iter()
        .map(|i| (i.relative, i.size))
        .collect();
    let store = s3.store();
    let remote: Vec<_> = list_store(&store, "fixtures/images", &["jpg", "png"])
        .unwrap()
        .into_iter()
        .map(|i| (i.relative, i.size))
        .collect();
    assert!(local.len() > 30);
    assert_eq!(remote, local);
}

/// Object keys are literal: a key with `%`, spaces, `+` or non-ASCII
/// letters is listed and read back under the same name (a listed
/// `pct%20lit.jpg` was percent-decoded and then not found).
#[test]
fn odd_object_keys_round_trip_through_a_listing() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("s3-odd-keys");
    std::fs::create_dir_all(&dir).unwrap();
    let names = ["pct%20lit.jpg", "with space.jpg", "plus+sign.jpg", "ünïcode.jpg"];
    for name in names {
        std::fs::copy(workspace().join(IMAGES[0]), dir.join(name)).unwrap();
    }
    let server = S3Server::start(&[dir.to_str().unwrap()]);
    let store = server.store();
    let prefix = dir.strip_prefix(workspace()).unwrap().to_str().unwrap().to_string();
    let listed = list_store(&store, &format!("s3://{}/{prefix}/", common::servers::BUCKET), &[]).unwrap();
    let mut relative: Vec<&str> = listed.iter().map(|i| i.relative.as_str()).collect();
    relative.sort();
    let mut expected = names.to_vec();
    expected.sort();
    assert_eq!(relative, expected);
    let want = load_image(workspace().join(IMAGES[0]), &ImageConfig::default()).unwrap();
    for item in listed {
        let got = load_image(item.source.clone(), &ImageConfig::default());
        assert_eq!(got.unwrap_or_else(|e| panic!("{}: {e}", item.relative)), want);
    }
}

#[test]
fn s3_urls_resolve_through_the_environment() {
    let s3 = S3Server::start(&["fixtures/images"]);
    // The default store for a plain URL is configured from AWS_* variables.
    std::env::set_var("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", s3.port));
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    std::env::set_var("AWS_REGION", "us-east-1");
    let url = format!("s3://{}/fixtures/images/png_rgb8.png", common::servers::BUCKET);
    let got = load_image(url.as_str(), &ImageConfig::default()).unwrap();
    let want = load_image(
        workspace().join("fixtures/images/png_rgb8.png"),
        &ImageConfig::default(),
    )
    .unwrap();
    assert_eq!(got, want);
    let items = list_dataset(&format!("s3://{}/fixtures/images/", common::servers::BUCKET), &["gif"]).unwrap();
    assert_eq!(items.len(), 2, "{items:?}");
}

#[test]
fn transient_503s_are_retried() {
    let server = FileServer::start(&workspace());
    server.faults.unavailable.store(2, Ordering::SeqCst);
    let store = server.store(&StoreConfig::default());
    let rel = IMAGES[0];
    let got = load_image(store.source(rel), &ImageConfig::default()).unwrap();
    assert_eq!(got, load_image(workspace().join(rel), &ImageConfig::default()).unwrap());
    // Two 503s, then one GET: the size limit is checked from the GET's
    // headers, so an image costs one request (no HEAD).
    assert_eq!(server.requests.load(Ordering::SeqCst), 3);
}

/// A URL with a query (a pre-signed or tokenised link) is requested with
/// its query intact, for whole objects and for ranged video reads; the
/// server refuses any other query, as a signature check would.
#[test]
fn http_urls_keep_their_query() {
    let server = FileServer::start(&workspace());
    *server.faults.required_query.lock().unwrap() = Some("sig=abc%2Fdef&exp=1".into());
    let url = |rel: &str| format!("{}/{rel}?sig=abc%2Fdef&exp=1", server.url());
    let image = load_image(Source::from(url(IMAGES[0]).as_str()), &ImageConfig::default()).unwrap();
    assert_eq!(
        image,
        load_image(workspace().join(IMAGES[0]), &ImageConfig::default()).unwrap()
    );
    let video = sample_frames(Source::from(url(VIDEOS[0]).as_str()), &[3, 40], &VideoConfig::default()).unwrap();
    let local = sample_frames(workspace().join(VIDEOS[0]), &[3, 40], &VideoConfig::default()).unwrap();
    assert_eq!(video.frames, local.frames);
    let unsigned = format!("{}/{}", server.url(), IMAGES[0]);
    assert!(load_image(Source::from(unsigned.as_str()), &ImageConfig::default()).is_err());
}

/// Video from a server that ignores `Range` (as `python -m http.server`
/// does) is fetched whole instead of failing.
#[test]
fn video_from_a_server_without_ranges_is_fetched_whole() {
    let server = FileServer::start(&workspace());
    server.faults.ignore_range.store(1, Ordering::SeqCst);
    let store = server.store(&StoreConfig::default());
    let got = sample_frames(store.source(VIDEOS[0]), &[3, 40], &VideoConfig::default()).unwrap();
    let local = sample_frames(workspace().join(VIDEOS[0]), &[3, 40], &VideoConfig::default()).unwrap();
    assert_eq!(got.frames, local.frames);
}

#[test]
fn a_body_cut_mid_transfer_is_resumed() {
    let server = FileServer::start(&workspace());
    server.faults.drop_mid_body.store(1, Ordering::SeqCst);
    let store = server.store(&StoreConfig::default());
    let rel = VIDEOS[0];
    let want = std::fs::read(workspace().join(rel)).unwrap();
    assert_eq!(&store.get_blocking(rel).unwrap()[..], &want[..]);
    assert_eq!(store.stats().bytes, want.len() as u64, "every byte counted once");
}

#[test]
fn persistent_failures_name_the_url() {
    let server = FileServer::start(&workspace());
    server.faults.unavailable.store(usize::MAX, Ordering::SeqCst);
    let config = StoreConfig::default().with_max_retries(2);
    let err = load_image(server.store(&config).source(IMAGES[0]), &ImageConfig::default()).unwrap_err();
    assert!(matches!(err, Error::Remote { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&server.url()) && text.contains("jpeg_baseline_420.jpg"),
        "{text}"
    );
    assert!(text.contains("503"), "{text}");
}

#[test]
fn a_slow_server_times_out_with_a_clear_error() {
    let server = FileServer::start(&workspace());
    server.faults.delay_ms.store(3000, Ordering::SeqCst);
    let config = StoreConfig::default()
        .with_timeout(Duration::from_millis(300))
        .with_max_retries(1);
    let started = Instant::now();
    let err = server.store(&config).get_blocking(IMAGES[0]).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "gave up in {:?}",
        started.elapsed()
    );
    let text = err.to_string();
    assert!(
        text.contains("jpeg_baseline_420.jpg") && text.contains("timed out"),
        "{text}"
    );
}

/// Encodes (once per target dir) a 1080p, 60 s H.264 clip with a keyframe
/// every 2 s, for the ranged-read bound.
fn long_1080p() -> std::path::PathBuf {
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("remote_1080p_60s.mp4");
    if !path.exists() {
        let tmp = path.with_extension("tmp.mp4");
        let status = std::process::Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
            .arg("testsrc2=size=1920x1080:rate=30:duration=60")
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-b:v",
                "3M",
                "-g",
                "60",
                "-pix_fmt",
                "yuv420p",
            ])
            .arg(&tmp)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

#[test]
fn sampling_a_remote_video_fetches_only_the_gops_it_needs() {
    let path = long_1080p();
    let dir = path.parent().unwrap();
    let server = FileServer::start(dir);
    let store = server.store(&StoreConfig::default());
    let file_size = std::fs::metadata(&path).unwrap().len();

    // GOP layout from the local file: byte size of the largest GOP.
    let mut demuxer = spdl_io::Demuxer::open(&path).unwrap();
    let stream = demuxer.best_video_stream().unwrap();
    let (mut gops, mut current) = (Vec::new(), 0u64);
    while let Some(packet) = demuxer.read_packet(stream).unwrap() {
        if packet.is_key() && current > 0 {
            gops.push(current);
            current = 0;
        }
        current += packet.size() as u64;
    }
    gops.push(current);
    let max_gop = *gops.iter().max().unwrap();
    assert_eq!(gops.len(), 30, "a keyframe every 2 s");

    let indices: Vec<usize> = (0..8).map(|k| 30 + k * 220).collect();
    let config = VideoConfig::default().with_size(64, 36);
    let picked = sample_frames(store.source("remote_1080p_60s.mp4"), &indices, &config).unwrap();
    let local = sample_frames(&path, &indices, &config).unwrap();
    assert_eq!(picked.frames, local.frames);

    // Each sampled frame costs at most its GOP plus the read-ahead overshoot
    // (a 16x window of 256 KiB), and the header (moov) once.
    let header = 2 << 20;
    let bound = header + indices.len() as u64 * (max_gop + (4 << 20));
    let fetched = store.stats().bytes;
    eprintln!("sampled 8 frames: fetched {fetched} of {file_size} bytes (max GOP {max_gop})");
    assert!(
        fetched < bound.min(file_size / 2),
        "fetched {fetched} bytes of {file_size} (bound {bound}, max GOP {max_gop})"
    );
}

#[test]
fn a_remote_object_over_the_size_limit_is_refused_before_its_body() {
    let server = FileServer::start(&workspace());
    let store = server.store(&StoreConfig::default());
    let limits = spdl_io::Limits::default().with_max_input_bytes(1000);
    let err = load_image(store.source(IMAGES[0]), &ImageConfig::default().with_limits(limits)).unwrap_err();
    assert!(matches!(err, Error::Limit { .. }), "{err}");
    assert!(err.to_string().contains("jpeg_baseline_420.jpg"), "{err}");
    assert_eq!(store.stats().bytes, 0, "no body was read");
}

/// Writers upload to S3 by multipart upload: an MP4 (fragmented, as the
/// upload cannot seek) decodes back to every frame; a WAV of 11.5 MB goes
/// up in two parts and loads back sample for sample; a saved image loads
/// back as encoded; a bucket that does not exist is an error naming the
/// URL, at creation.
#[test]
fn writers_upload_to_s3() {
    use spdl_io::audio::AudioWriter;
    use spdl_io::image::{encode_image, save_image, ImageFormat, SaveConfig};
    use spdl_io::video::{VideoWriter, WriterConfig};
    let s3 = S3Server::start(&[]);
    let store = s3.store();

    let frames = ndarray::Array4::from_shape_fn((24, 64, 96, 3), |(t, y, x, c)| ((x + y + 3 * t + 50 * c) % 256) as u8);
    let config = WriterConfig::new(24, 1).with_option("threads", "1");
    let mut writer = VideoWriter::create(store.destination("out/clip.mp4"), 96, 64, &config).unwrap();
    writer.write(frames.view()).unwrap();
    assert_eq!(writer.finish().unwrap(), None);
    let back = load_video(store.source("out/clip.mp4"), &VideoConfig::default()).unwrap();
    assert_eq!(back.frames.shape(), frames.shape());

    let samples = ndarray::Array2::from_shape_fn((2, 48_000 * 30), |(c, i)| {
        ((i * 7 + c * 13) % 2001) as f32 / 1000.0 - 1.0
    });
    let mut writer = AudioWriter::create(store.destination("out/long.wav"), 48_000, 2, None).unwrap();
    for chunk in samples.axis_chunks_iter(ndarray::Axis(1), 100_000) {
        writer.write(chunk).unwrap();
    }
    writer.finish().unwrap();
    let back = load_audio(store.source("out/long.wav"), &AudioConfig::default()).unwrap();
    assert_eq!(back.samples, samples);

    let image = ndarray::Array3::from_shape_fn((40, 30, 3), |(y, x, c)| (x * 5 + y * 3 + c * 70) as u8);
    save_image(store.destination("out/img.png"), image.view(), &SaveConfig::default()).unwrap();
    let png = encode_image(image.view(), ImageFormat::Png, &SaveConfig::default()).unwrap();
    assert_eq!(
        store.get_blocking(&store.destination("out/img.png").name()).unwrap(),
        png
    );

    let missing = Store::open("s3://no-such-bucket", &s3.config()).unwrap();
    let err = VideoWriter::create(missing.destination("x.mp4"), 96, 64, &config)
        .err()
        .unwrap();
    assert!(
        matches!(err, Error::Write { .. }) && err.to_string().contains("s3://no-such-bucket/x.mp4"),
        "{err}"
    );
}

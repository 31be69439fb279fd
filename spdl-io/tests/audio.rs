//! Audio decoding against the `ffmpeg` CLI on every fixture in
//! fixtures/audio: the same decoder and the same swresample conversion, so
//! the same sample count and bit-exact samples; resampling and downmixing
//! against the CLI's `-ar`/`-ac` (its `aresample` filter, same defaults).

use std::path::PathBuf;
use std::process::Command;

use ndarray::s;
use serde_json::Value;
use spdl_io::{
    audio_backend, load_audio, load_audio_i16, stream_audio, AudioBackend, AudioConfig, ChannelOrder, Error, Limits,
    Source,
};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/audio")
}

fn manifest() -> Vec<Value> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("manifest.json")).unwrap()).unwrap();
    v.as_array().unwrap().clone()
}

/// Interleaved f32 samples from the CLI, with extra output options.
fn ffmpeg_f32(file: &str, extra: &[&str]) -> Vec<f32> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(dir().join(file))
        .args(["-map", "0:a:0"])
        .args(extra)
        .args(["-f", "f32le", "-acodec", "pcm_f32le", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn every_fixture_matches_ffmpeg_sample_for_sample() {
    let mut failures = Vec::new();
    for e in manifest().iter().filter(|e| e["expect"] == "ok") {
        let file = e["file"].as_str().unwrap();
        let config = AudioConfig::default().with_order(ChannelOrder::Interleaved);
        let audio = match load_audio(dir().join(file), &config) {
            Ok(a) => a,
            Err(err) => {
                failures.push(format!("{file}: {err}"));
                continue;
            }
        };
        let expected = ffmpeg_f32(file, &[]);
        let got = audio.samples.as_slice().unwrap();
        let channels = e["channels"].as_u64().unwrap() as usize;
        if audio.samples.shape()[1] != channels || got.len() != expected.len() {
            failures.push(format!(
                "{file}: shape {:?}, ffmpeg {} samples",
                audio.samples.shape(),
                expected.len()
            ));
            continue;
        }
        let d = max_abs_diff(got, &expected);
        if d > 1e-6 {
            failures.push(format!("{file}: max abs diff {d}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The CLI's `-ar` / `-ac` insert `aresample` with swresample's defaults,
/// as spdl-io uses: the same samples up to float rounding (1e-5).
#[test]
fn resampling_and_downmixing_match_ffmpeg() {
    for (file, rate, ch) in [
        ("flac_s16_44100_stereo.flac", 16000, 1),
        ("pcm_s16le_16000_mono.wav", 48000, 2),
        ("flac_s16_48000_5.1.flac", 22050, 2),
        ("mp3_cbr_128k_44100_stereo.mp3", 8000, 1),
    ] {
        let config = AudioConfig::default()
            .with_sample_rate(rate)
            .with_channels(ch)
            .with_order(ChannelOrder::Interleaved);
        let audio = load_audio(dir().join(file), &config).unwrap();
        let expected = ffmpeg_f32(file, &["-ar", &rate.to_string(), "-ac", &ch.to_string()]);
        let got = audio.samples.as_slice().unwrap();
        assert_eq!(got.len(), expected.len(), "{file} -> {rate} Hz x{ch}");
        let d = max_abs_diff(got, &expected);
        assert!(d <= 1e-5, "{file}: max abs diff {d}");
        assert_eq!(audio.sample_rate, rate);
    }
}

#[test]
fn channels_first_is_the_transpose_of_interleaved() {
    let file = dir().join("flac_s16_48000_5.1.flac");
    let a = load_audio(&file, &AudioConfig::default()).unwrap();
    let b = load_audio(&file, &AudioConfig::default().with_order(ChannelOrder::Interleaved)).unwrap();
    assert_eq!(a.samples.shape()[0], 6);
    assert_eq!(a.samples, b.samples.t());
    assert_eq!(a.channel_layout, "5.1");
}

#[test]
fn window_is_sample_accurate() {
    let file = dir().join("pcm_s16le_44100_stereo.wav");
    let full = load_audio(&file, &AudioConfig::default()).unwrap();
    let part = load_audio(&file, &AudioConfig::default().with_window(0.25, 0.5)).unwrap();
    let (a, b) = (11025, 22050);
    assert_eq!(part.samples.shape(), [2, b - a]);
    assert_eq!(part.samples, full.samples.slice(s![.., a..b]));
    assert!((part.start - 0.25).abs() < 1e-9);
}

#[test]
fn window_counts_from_a_non_zero_start_time() {
    let file = dir().join("pcm_s16le_start_0.5s.mkv");
    let full = load_audio(&file, &AudioConfig::default()).unwrap();
    assert!((full.start - 0.5).abs() < 1e-3, "{}", full.start);
    let part = load_audio(&file, &AudioConfig::default().with_window(0.75, 1.0)).unwrap();
    let rate = f64::from(full.sample_rate);
    let a = ((0.75 - full.start) * rate).round() as usize;
    let n = (0.25 * rate).round() as usize;
    assert_eq!(part.samples, full.samples.slice(s![.., a..a + n]));
}

#[test]
fn chunks_concatenate_to_the_full_decode() {
    let file = dir().join("mp3_vbr_q4_48000_stereo.mp3");
    let full = load_audio(&file, &AudioConfig::default()).unwrap();
    let mut offset = 0;
    for chunk in stream_audio(&file, &AudioConfig::default(), 4000).unwrap() {
        let chunk = chunk.unwrap();
        let n = chunk.samples.shape()[1];
        assert!(n <= 4000);
        assert_eq!(chunk.samples, full.samples.slice(s![.., offset..offset + n]));
        offset += n;
    }
    assert_eq!(offset, full.samples.shape()[1]);
}

#[test]
fn i16_output_matches_ffmpeg_s16() {
    let file = "flac_s16_44100_stereo.flac";
    let audio = load_audio_i16(
        dir().join(file),
        &AudioConfig::default().with_order(ChannelOrder::Interleaved),
    )
    .unwrap();
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(dir().join(file))
        .args(["-f", "s16le", "-"])
        .output()
        .unwrap();
    let expected: Vec<i16> = out
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert_eq!(audio.samples.as_slice().unwrap(), &expected[..]);
}

#[test]
fn broken_files_fail_cleanly_or_decode_partially() {
    for e in manifest().iter().filter(|e| e["expect"] != "ok") {
        let file = e["file"].as_str().unwrap();
        match load_audio(dir().join(file), &AudioConfig::default()) {
            Ok(_) => assert_eq!(e["expect"], "partial", "{file} decoded but should fail"),
            Err(err) => assert!(err.to_string().contains(file), "{file}: {err}"),
        }
    }
}

#[test]
fn sample_limit_is_enforced() {
    let limits = Limits::default().with_max_frames(1000);
    let err = load_audio(
        dir().join("pcm_s16le_44100_stereo.wav"),
        &AudioConfig::default().with_limits(limits),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Limit { .. }), "{err}");
}

#[test]
fn truncated_and_bit_flipped_audio_never_crashes() {
    let mut state = 0x2545_F491u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for e in manifest().iter().filter(|e| e["expect"] == "ok") {
        let file = e["file"].as_str().unwrap();
        let data = std::fs::read(dir().join(file)).unwrap();
        for k in 0..12 {
            let name = format!("{file}[..{k}/12]");
            if let Err(err) = load_audio(
                Source::from_bytes(data[..data.len() * k / 12].to_vec(), name.clone()),
                &AudioConfig::default(),
            ) {
                assert!(err.to_string().contains(&name), "{err}");
            }
        }
        for round in 0..8 {
            let mut bad = data.clone();
            for _ in 0..1 + next() % 8 {
                let i = (next() % bad.len() as u64) as usize;
                bad[i] ^= 1 << (next() % 8);
            }
            let name = format!("{file}#flip{round}");
            let config = AudioConfig::default().with_limits(Limits::default().with_max_frames(10_000_000));
            if let Err(err) = load_audio(Source::from_bytes(bad, name.clone()), &config) {
                assert!(err.to_string().contains(&name), "{err}");
            }
        }
    }
}

/// Writes `path` from the lavfi source `lavfi` with the `ffmpeg` CLI and
/// the extra output `args`.
fn ffmpeg_lavfi(path: &std::path::Path, lavfi: &str, args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", lavfi])
        .args(args)
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg -i {lavfi} {args:?} {}", path.display());
}

/// Regression: the default limits must not refuse ordinary lengths (they
/// once capped audio at 100 000 samples, about 2 s). A 30 s file made by
/// the `ffmpeg` CLI decodes to exactly 30 s of samples.
#[test]
fn default_limits_accept_minutes_of_audio() {
    let path = std::env::temp_dir().join(format!("spdl-audio-30s-{}.flac", std::process::id()));
    ffmpeg_lavfi(&path, "sine=frequency=440:duration=30:sample_rate=48000", &["-ac", "2"]);
    let audio = load_audio(&path, &AudioConfig::default()).unwrap();
    assert_eq!(audio.samples.shape(), [2, 30 * 48_000]);
    std::fs::remove_file(path).ok();
}

/// The symphonia backend, forced on every fixture it reads, against the
/// CLI: lossless codecs (PCM, FLAC, ALAC) bit-exact within 1e-6 and the
/// same sample count; lossy ones (different decoders) are compared in
/// `auto_selection_picks_symphonia_only_where_it_is_exact` instead.
#[test]
fn symphonia_backend_is_exact_on_lossless_fixtures() {
    let config = AudioConfig::default()
        .with_order(ChannelOrder::Interleaved)
        .with_backend(AudioBackend::Symphonia);
    let mut checked = 0;
    let mut failures = Vec::new();
    for e in manifest()
        .iter()
        .filter(|e| e["expect"] == "ok" && e["lossless"] == true)
    {
        let file = e["file"].as_str().unwrap();
        let Ok(audio) = load_audio(dir().join(file), &config) else {
            continue; // a container symphonia does not read (AIFF, MKV, ...)
        };
        assert_eq!(audio.backend, "symphonia");
        let expected = ffmpeg_f32(file, &[]);
        let got = audio.samples.as_slice().unwrap();
        if got.len() != expected.len() || max_abs_diff(got, &expected) > 1e-6 {
            failures.push(format!("{file}: {} vs {} samples", got.len(), expected.len()));
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(checked >= 10, "only {checked} lossless fixtures read by symphonia");
}

/// Auto picks the PCM reader for PCM WAV and symphonia for FLAC (exact, per
/// the tests above) and FFmpeg for everything else; the choice is reported.
#[test]
fn auto_selection_picks_native_decoders_only_where_they_are_exact() {
    for (file, want) in [
        ("pcm_s16le_44100_stereo.wav", AudioBackend::Pcm),
        ("pcm_f64le_22050_mono.wav", AudioBackend::Pcm),
        ("adpcm_ima_wav_22050_stereo.wav", AudioBackend::Ffmpeg),
        ("flac_s24_96000_stereo.flac", AudioBackend::Symphonia),
        ("mp3_cbr_128k_44100_stereo.mp3", AudioBackend::Ffmpeg),
        ("aac_lc_44100_stereo.m4a", AudioBackend::Ffmpeg),
        ("pcm_s16le_48000_stereo.mkv", AudioBackend::Ffmpeg),
    ] {
        assert_eq!(
            audio_backend(dir().join(file), &AudioConfig::default()).unwrap(),
            want,
            "{file}"
        );
        let audio = load_audio(dir().join(file), &AudioConfig::default()).unwrap();
        let name = format!("{want:?}").to_lowercase();
        assert_eq!(audio.backend, name, "{file}");
    }
    // Resampling always goes through FFmpeg; forcing symphonia to do it is a
    // configuration error naming the file.
    let wav = dir().join("pcm_s16le_44100_stereo.wav");
    let config = AudioConfig::default().with_sample_rate(16_000);
    assert_eq!(audio_backend(&wav, &config).unwrap(), AudioBackend::Ffmpeg);
    let err = load_audio(&wav, &config.with_backend(AudioBackend::Symphonia)).unwrap_err();
    assert!(err.to_string().contains("pcm_s16le_44100_stereo.wav"), "{err}");
}

/// The PCM reader, forced on every PCM WAV fixture, equals the CLI exactly
/// in both layouts; it refuses what it does not read.
#[test]
fn pcm_backend_is_exact_on_every_pcm_wav() {
    let mut checked = 0;
    for e in manifest()
        .iter()
        .filter(|e| e["expect"] == "ok" && e["container"] == "wav")
    {
        let file = e["file"].as_str().unwrap();
        let config = AudioConfig::default().with_backend(AudioBackend::Pcm);
        let Ok(planar) = load_audio(dir().join(file), &config) else {
            assert!(!e["codec"].as_str().unwrap().starts_with("pcm_"), "{file} refused");
            continue;
        };
        let interleaved = load_audio(dir().join(file), &config.with_order(ChannelOrder::Interleaved)).unwrap();
        let expected = ffmpeg_f32(file, &[]);
        assert_eq!(interleaved.samples.as_slice().unwrap(), &expected[..], "{file}");
        assert_eq!(planar.samples.t(), interleaved.samples, "{file}");
        checked += 1;
    }
    assert!(checked >= 7, "{checked} PCM WAV fixtures");
}

/// Forced symphonia on truncated and bit-flipped input: errors naming the
/// source, never a panic reaching the caller.
#[test]
fn symphonia_backend_survives_hostile_input() {
    let config = AudioConfig::default().with_backend(AudioBackend::Symphonia);
    for file in [
        "flac_s16_44100_stereo.flac",
        "mp3_cbr_128k_44100_stereo.mp3",
        "pcm_s24le_48000_stereo.wav",
    ] {
        let data = std::fs::read(dir().join(file)).unwrap();
        for k in 1..24 {
            let mut bad = data[..data.len() * k / 24].to_vec();
            if let Some(b) = bad.get_mut(data.len() * k / 48) {
                *b ^= 0x5a;
            }
            let name = format!("{file}#{k}");
            if let Err(err) = load_audio(Source::from_bytes(bad, name.clone()), &config) {
                assert!(err.to_string().contains(&name), "{err}");
            }
        }
    }
}

/// Bytes after the last frame are ignored (the fixtures `flac_id3v1_tag`
/// and `mp3_trailing_html` check every sample against the CLI); damage
/// in the middle of a stream is an error naming where, not a silent skip.
/// A forced symphonia backend that stops before the declared length (it
/// loses the FLAC's last frame to the tag) says so instead of returning
/// fewer samples.
#[test]
fn damage_is_ignored_only_after_the_last_frame() {
    let file = "mp3_cbr_128k_44100_stereo.mp3";
    let mut data = std::fs::read(dir().join(file)).unwrap();
    let middle = data.len() / 2;
    data.splice(
        middle..middle,
        (0..2000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8),
    );
    let err = load_audio(Source::from_bytes(data, "mp3_damaged_middle"), &AudioConfig::default()).unwrap_err();
    assert!(
        matches!(err, Error::Decode { at: spdl_io::Position::Pts(t), .. } if t > 0.3),
        "{err:?}"
    );
    assert!(err.to_string().contains("mp3_damaged_middle"), "{err}");

    let forced = AudioConfig::default().with_backend(AudioBackend::Symphonia);
    let err = load_audio(dir().join("flac_id3v1_tag.flac"), &forced).unwrap_err();
    assert!(
        err.to_string()
            .contains("symphonia ended before the length the header declares"),
        "{err}"
    );
    let auto = load_audio(dir().join("flac_id3v1_tag.flac"), &AudioConfig::default()).unwrap();
    assert_eq!(auto.samples.shape(), [2, 44100]);
}

/// Cover art is a picture attached to the file, not a video: the audio
/// decodes (every sample, as the CLI decodes it), `probe` flags the
/// picture, and a video load says there is no video, only the picture.
#[test]
fn cover_art_is_not_a_video() {
    let file = dir().join("mp3_cover_art_44100_mono.mp3");
    let audio = load_audio(&file, &AudioConfig::default()).unwrap();
    assert_eq!(audio.samples.shape(), [1, 54321]);
    assert_eq!(
        audio.samples.as_slice().unwrap(),
        &ffmpeg_f32("mp3_cover_art_44100_mono.mp3", &[])[..]
    );
    let info = spdl_io::probe(&file).unwrap();
    let pictures: Vec<bool> = info.streams.iter().map(|s| s.attached_picture).collect();
    assert_eq!(pictures, [false, true], "{:?}", info.streams);
    let err = spdl_io::load_video(&file, &spdl_io::VideoConfig::default()).unwrap_err();
    assert!(
        matches!(err, Error::Stream { .. }) && err.to_string().contains("attached pictures"),
        "{err}"
    );
}

/// A valid file with no samples (0 s of silence, which FFmpeg and
/// soundfile read as empty) is an empty array, through each backend (PCM,
/// symphonia, FFmpeg); a zero-byte file is still an error.
#[test]
fn a_valid_empty_stream_is_an_empty_array() {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("empty-audio");
    std::fs::create_dir_all(&tmp).unwrap();
    for (name, codec) in [("zero.wav", "pcm_s16le"), ("zero.flac", "flac")] {
        let path = tmp.join(name);
        ffmpeg_lavfi(&path, "anullsrc=r=16000:cl=mono", &["-t", "0", "-c:a", codec]);
        for backend in [AudioBackend::Auto, AudioBackend::Ffmpeg] {
            let config = AudioConfig::default().with_backend(backend);
            let audio = load_audio(&path, &config).unwrap_or_else(|e| panic!("{name} {backend:?}: {e}"));
            assert_eq!(audio.samples.shape(), [1, 0], "{name} ({})", audio.backend);
            assert_eq!(audio.sample_rate, 16_000, "{name} ({})", audio.backend);
        }
    }
    assert!(load_audio(dir().join("empty.wav"), &AudioConfig::default()).is_err());
}

/// Audio filter chains (`AudioConfig::with_filter`) against `ffmpeg -af`
/// with the same chain: the same sample count and values to 1e-6; the
/// chain's rate and channels become the output's; a broken chain is a
/// clean error naming it and the source.
#[test]
fn audio_filter_chains_match_the_ffmpeg_cli() {
    let chains = [
        "volume=0.5",
        "highpass=f=300,lowpass=f=3000",
        "aresample=16000",
        "pan=mono|c0=0.5*c0+0.5*c1",
        "atempo=1.25",
    ];
    for file in [
        "flac_s16_44100_stereo.flac",
        "mp3_cbr_128k_44100_stereo.mp3",
        "pcm_s16le_start_0.5s.mkv",
    ] {
        for chain in chains {
            let config = AudioConfig::default()
                .with_filter(chain)
                .with_order(spdl_io::ChannelOrder::Interleaved);
            let audio = load_audio(dir().join(file), &config).unwrap_or_else(|e| panic!("{file} {chain}: {e}"));
            let expected = ffmpeg_f32(file, &["-af", chain]);
            let what = format!("{file} with {chain:?}");
            let got = audio.samples.as_slice().unwrap();
            assert_eq!(got.len(), expected.len(), "{what}: sample count");
            assert!(
                max_abs_diff(got, &expected) <= 1e-6,
                "{what}: max diff {}",
                max_abs_diff(got, &expected)
            );
            let source_rate = if file.starts_with("pcm") { 48000 } else { 44100 };
            let (rate, channels) = match chain {
                "aresample=16000" => (16000, 2),
                c if c.starts_with("pan") => (source_rate, 1),
                _ => (source_rate, 2),
            };
            assert_eq!(
                (audio.sample_rate, audio.samples.shape()[1]),
                (rate, channels),
                "{what}"
            );
        }
    }
    for chain in ["nosuchfilter", "volume=oops", ""] {
        let err = load_audio(
            dir().join("flac_s16_44100_stereo.flac"),
            &AudioConfig::default().with_filter(chain),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("flac_s16_44100_stereo.flac"),
            "{chain:?}: {err}"
        );
    }
}

/// `AudioWriter`: WAV (float32) and FLAC round trips are exact for samples
/// FLAC's 16 bits hold; Opus and MP3 write files `ffprobe` reads; clear
/// errors for a missing encoder and the wrong channel count.
#[test]
fn written_audio_round_trips() {
    use spdl_io::audio::AudioWriter;
    let dir = std::env::temp_dir().join(format!("spdl-audio-writer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let n = 44_100 + 1234;
    let samples = ndarray::Array2::from_shape_fn((2, n), |(c, i)| {
        (((i * 7 + c * 1000) % 20_000) as f32 - 10_000.0) / 32_768.0
    });
    for file in ["a.wav", "b.flac", "c.opus", "d.mp3"] {
        let path = dir.join(file);
        let rate = if file.ends_with("opus") { 48_000 } else { 44_100 };
        let mut writer = AudioWriter::create(&path, rate, 2, None).unwrap_or_else(|e| panic!("{file}: {e}"));
        writer.write(samples.slice(s![.., ..1000])).unwrap();
        writer.write(samples.slice(s![.., 1000..])).unwrap();
        writer.finish().unwrap();
        let back = load_audio(&path, &AudioConfig::default()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(back.sample_rate, rate, "{file}");
        if file.ends_with("wav") || file.ends_with("flac") {
            assert_eq!(back.samples, samples, "{file}: exact round trip");
        } else {
            assert!(back.samples.shape()[1] >= n, "{file}: {:?}", back.samples.shape());
        }
    }
    let err = AudioWriter::create(dir.join("x.wav"), 44_100, 2, Some("nope_enc"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("nope_enc"), "{err}");
    let mut writer = AudioWriter::create(dir.join("y.wav"), 44_100, 2, None).unwrap();
    assert!(writer.write(ndarray::Array2::<f32>::zeros((3, 10)).view()).is_err());
    writer.finish().unwrap();
    std::fs::remove_dir_all(&dir).ok();
}

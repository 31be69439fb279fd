//! Decoders share no state: many files decoded at once on several threads
//! give the same frames as one at a time; public types are `Send`.

mod common;

use common::*;
use spdl_io::{load_video, Demuxer, Video, VideoChunks, VideoConfig, VideoDecoder};

fn assert_send<T: Send>() {}

#[test]
fn public_types_are_send() {
    assert_send::<Demuxer>();
    assert_send::<VideoDecoder>();
    assert_send::<Video>();
    assert_send::<VideoChunks>();
    assert_send::<spdl_io::Error>();
}

#[test]
fn concurrent_decodes_match_sequential_ones() {
    let files: Vec<_> = decodable().into_iter().map(|e| fixture(&e.file)).collect();
    let config = VideoConfig::default().with_size(64, 64).with_threads(2);
    let expected: Vec<Video> = files.iter().map(|f| load_video(f, &config).unwrap()).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let (files, expected, config) = (&files, &expected, &config);
                scope.spawn(move || {
                    for (i, f) in files.iter().enumerate().cycle().skip(t * 3).take(files.len() * 2) {
                        let v = load_video(f, config).unwrap();
                        assert_eq!(v.frames, expected[i].frames, "{}", f.display());
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("decode thread panicked");
        }
    });
}

//! Decoding on a CUDA device ([`Device::Cuda`]). Without a GPU, or in a
//! build without the `cuda` feature, the decoder falls back to the CPU and
//! says so ([`VideoDecoder::device`]), and the frames are the CPU's,
//! byte for byte. On a machine with an NVIDIA driver (and the feature),
//! NVDEC's frames are checked against the CPU's by PSNR: NVDEC's YUV is
//! bit-exact for these codecs, and the NV12 -> RGB conversion rounds
//! differently from planar YUV's.

use common::{fixture, psnr};
use spdl_io::media::Device;
use spdl_io::{load_video, DecoderConfig, Demuxer, VideoConfig};

mod common;

#[test]
fn cuda_decoding_gives_the_cpu_frames_or_falls_back_to_the_cpu() {
    let cuda = DecoderConfig::default().with_device(Device::Cuda(0));
    for file in [
        "h264_yuv420p.mp4",
        "hevc_yuv420p.mp4",
        "vp9_yuv420p.webm",
        "av1_yuv420p.mp4",
    ] {
        let path = fixture(file);
        let demuxer = Demuxer::open(&path).unwrap();
        let stream = demuxer.best_video_stream().unwrap();
        let used = demuxer.video_decoder(stream, &cuda).unwrap().device();
        let cpu = load_video(&path, &VideoConfig::default()).unwrap();
        let gpu = load_video(&path, &VideoConfig::default().with_decoder(cuda)).unwrap();
        assert_eq!(gpu.frames.shape(), cpu.frames.shape(), "{file}");
        match used {
            Device::Cpu => {
                eprintln!("{file}: no CUDA device here, compared the CPU fallback");
                assert_eq!(gpu.frames, cpu.frames, "{file}");
            }
            _ => {
                let (a, b) = (gpu.frames.as_slice().unwrap(), cpu.frames.as_slice().unwrap());
                let db = psnr(a, b);
                assert!(db >= 40.0, "{file}: NVDEC frames at {db:.1} dB of the CPU's");
            }
        }
    }
}

#[test]
fn without_cuda_the_decoder_reports_the_cpu() {
    if cfg!(feature = "cuda") {
        return; // the device may exist: the test above covers both cases
    }
    let path = fixture("h264_yuv420p.mp4");
    let demuxer = Demuxer::open(&path).unwrap();
    let config = DecoderConfig::default().with_device(Device::Cuda(0));
    let decoder = demuxer
        .video_decoder(demuxer.best_video_stream().unwrap(), &config)
        .unwrap();
    assert_eq!(decoder.device(), Device::Cpu);
}

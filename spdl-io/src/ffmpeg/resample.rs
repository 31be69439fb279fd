//! swresample: decoded audio to f32 at the output rate and channel count
//! (the defaults of FFmpeg's `aresample` filter), and the channel layouts
//! FFmpeg names.

use std::os::raw::{c_char, c_int};
use std::ptr;

use ff::ffi;
use ffmpeg_next as ff;

use super::c_name;

/// FFmpeg's name of its default layout for `channels` (e.g. `5.1`).
pub(crate) fn default_layout_name(channels: u32) -> String {
    let mut name = [0 as c_char; 64];
    // SAFETY: AVChannelLayout is a plain C struct for which all-zero bytes
    // are a valid (unspecified) layout; av_channel_layout_default fills it in
    // native order without allocating; `name` is a writable buffer of the
    // size given, NUL-terminated by av_channel_layout_describe on success.
    unsafe {
        let mut layout: ffi::AVChannelLayout = std::mem::zeroed();
        ffi::av_channel_layout_default(&mut layout, channels as c_int);
        if ffi::av_channel_layout_describe(&layout, name.as_mut_ptr(), name.len()) < 0 {
            return format!("{channels} channels");
        }
    }
    c_name(name.as_ptr()).unwrap_or_default()
}

/// The samples of `frame` when they already are what swresample would
/// output for (`channels`, `rate`, `planar`): f32 (planar, or packed), that
/// many channels in FFmpeg's default layout for the count, at that rate.
/// One slice per channel when planar, else one interleaved slice; `None`
/// when the frame needs converting.
pub(crate) fn f32_planes(frame: &ff::frame::Audio, channels: u32, rate: u32, planar: bool) -> Option<Vec<&[f32]>> {
    let want = match planar {
        true => ffi::AVSampleFormat::AV_SAMPLE_FMT_FLTP,
        false => ffi::AVSampleFormat::AV_SAMPLE_FMT_FLT,
    } as c_int;
    // SAFETY: reading plain fields of a decoded frame; the default layout
    // is filled in native order without allocating (all-zero bytes are a
    // valid unspecified layout to start from); a decoded frame in `want`
    // holds `channels` (planar) or one (packed) non-null, f32-aligned
    // planes of `nb_samples` samples (times `channels` when packed) in
    // `extended_data`, which live as long as the borrowed frame.
    unsafe {
        let f = &*frame.as_ptr();
        let mut default: ffi::AVChannelLayout = std::mem::zeroed();
        ffi::av_channel_layout_default(&mut default, channels as c_int);
        if f.format != want
            || f.sample_rate != rate as c_int
            || f.nb_samples < 0
            || f.extended_data.is_null()
            || ffi::av_channel_layout_compare(&f.ch_layout, &default) != 0
        {
            return None;
        }
        let samples = f.nb_samples as usize;
        let (planes, len) = match planar {
            true => (channels as usize, samples),
            false => (1, samples * channels as usize),
        };
        (0..planes)
            .map(|p| {
                let data = *f.extended_data.add(p) as *const f32;
                (!data.is_null()).then(|| std::slice::from_raw_parts(data, len))
            })
            .collect()
    }
}

/// A swresample context converting decoded frames to f32 (packed, or
/// planar) at a target rate and channel count (FFmpeg's default layout for
/// that count).
pub(crate) struct AudioResampler {
    ctx: *mut ffi::SwrContext,
    /// (sample format, channels, rate) of the input this context expects.
    pub(crate) input: (c_int, u32, u32),
    out_channels: u32,
    planar: bool,
}

// SAFETY: the SwrContext is owned exclusively by this value, which is not
// `Sync`, so it is used from one thread at a time.
unsafe impl Send for AudioResampler {}

impl Drop for AudioResampler {
    fn drop(&mut self) {
        // SAFETY: `ctx` was allocated by swr_alloc_set_opts2 and is freed once.
        unsafe { ffi::swr_free(&mut self.ctx) };
    }
}

/// The key of `frame` for [`AudioResampler::input`].
pub(crate) fn audio_input(frame: &ff::frame::Audio) -> (c_int, u32, u32) {
    // SAFETY: reading plain fields of a decoded frame.
    unsafe {
        let f = &*frame.as_ptr();
        (
            f.format,
            f.ch_layout.nb_channels.max(0) as u32,
            f.sample_rate.max(0) as u32,
        )
    }
}

impl AudioResampler {
    /// A context for frames like `frame`: its own channel layout when it
    /// declares a valid one, else FFmpeg's default for its channel count.
    pub(crate) fn new(
        frame: &ff::frame::Audio,
        out_channels: u32,
        out_rate: u32,
        planar: bool,
    ) -> std::result::Result<Self, String> {
        let out_format = if planar {
            ffi::AVSampleFormat::AV_SAMPLE_FMT_FLTP
        } else {
            ffi::AVSampleFormat::AV_SAMPLE_FMT_FLT
        };
        let input = audio_input(frame);
        let mut ctx: *mut ffi::SwrContext = ptr::null_mut();
        let unnamed_layout;
        // SAFETY: the layouts are plain structs initialised by FFmpeg
        // (copy or default) and uninitialised after use; the sample format
        // is range-checked before becoming an enum; swr_alloc_set_opts2
        // allocates `ctx`, freed by Drop (or here on failure).
        let rc = unsafe {
            let f = &*frame.as_ptr();
            if !(0..ffi::AVSampleFormat::AV_SAMPLE_FMT_NB as c_int).contains(&f.format) {
                return Err(format!("unknown sample format {}", f.format));
            }
            let mut in_layout: ffi::AVChannelLayout = std::mem::zeroed();
            if ffi::av_channel_layout_check(&f.ch_layout) == 0
                || ffi::av_channel_layout_copy(&mut in_layout, &f.ch_layout) < 0
            {
                ffi::av_channel_layout_default(&mut in_layout, input.1 as c_int);
            }
            let mut out_layout: ffi::AVChannelLayout = std::mem::zeroed();
            ffi::av_channel_layout_default(&mut out_layout, out_channels as c_int);
            unnamed_layout = out_layout.order == ffi::AVChannelOrder::AV_CHANNEL_ORDER_UNSPEC;
            let rc = ffi::swr_alloc_set_opts2(
                &mut ctx,
                &mut out_layout,
                out_format,
                out_rate as c_int,
                &mut in_layout,
                std::mem::transmute::<c_int, ffi::AVSampleFormat>(f.format),
                f.sample_rate,
                0,
                ptr::null_mut(),
            );
            ffi::av_channel_layout_uninit(&mut in_layout);
            ffi::av_channel_layout_uninit(&mut out_layout);
            if rc >= 0 {
                ffi::swr_init(ctx)
            } else {
                rc
            }
        };
        let resampler = AudioResampler {
            ctx,
            input,
            out_channels,
            planar,
        };
        if rc < 0 {
            let hint = match unnamed_layout && input.1 != out_channels {
                true => format!(" (FFmpeg has no standard layout of {out_channels} channels to mix into)"),
                false => String::new(),
            };
            return Err(format!("cannot set up resampling: {}{hint}", ff::Error::from(rc)));
        }
        Ok(resampler)
    }

    /// Converts `frame` (or flushes buffered samples with `None`) into
    /// `out` (replacing its contents); returns `n`, the samples per channel,
    /// and the plane stride: packed output is `n * channels` interleaved
    /// samples (stride 0), planar output has channel `c` at `c * stride`.
    pub(crate) fn convert(
        &mut self,
        frame: Option<&ff::frame::Audio>,
        out: &mut Vec<f32>,
    ) -> std::result::Result<(usize, usize), String> {
        let in_count = frame.map_or(0, |f| f.samples()) as c_int;
        let ch = self.out_channels as usize;
        // SAFETY: `ctx` is initialised; swr_get_out_samples bounds the output
        // of this call, for which `out` holds `room` samples per channel
        // (one packed plane, or `ch` planes `room` apart); the input
        // pointers are the frame's own planes (`extended_data`), valid for
        // `in_count` samples; a null input flushes.
        unsafe {
            let room = ffi::swr_get_out_samples(self.ctx, in_count).max(0) as usize;
            out.clear();
            out.resize(room * ch, 0.0);
            let base = out.as_mut_ptr();
            let mut dst: Vec<*mut u8> = match self.planar {
                true => (0..ch).map(|c| base.add(c * room) as *mut u8).collect(),
                false => vec![base as *mut u8],
            };
            let src = frame.map_or(ptr::null_mut(), |f| (*f.as_ptr()).extended_data as *mut *const u8);
            let n = ffi::swr_convert(self.ctx, dst.as_mut_ptr(), room as c_int, src, in_count);
            if n < 0 {
                return Err(format!("resampling failed: {}", ff::Error::from(n)));
            }
            let n = n as usize;
            if self.planar {
                Ok((n, room))
            } else {
                out.truncate(n * ch);
                Ok((n, 0))
            }
        }
    }
}

/// A sample-format conversion of whole frames (planar f32 into an
/// encoder's format, same rate and layout, for writing audio), movable
/// between threads.
pub(crate) struct SampleConverter(ff::software::resampling::Context);

// SAFETY: a SwrContext has no thread affinity; `SampleConverter` owns it
// exclusively and is not `Sync`, so it is used from one thread at a time.
unsafe impl Send for SampleConverter {}

impl SampleConverter {
    /// Planar f32 in `layout` at `rate` to `to`.
    pub(crate) fn from_f32(to: ff::format::Sample, layout: ff::ChannelLayout, rate: u32) -> Result<Self, ff::Error> {
        let from = ff::format::Sample::F32(ff::format::sample::Type::Planar);
        ff::software::resampling::Context::get(from, layout, rate, to, layout, rate).map(SampleConverter)
    }

    /// Converts `input` into `output` (allocated on first use).
    pub(crate) fn run(&mut self, input: &ff::frame::Audio, output: &mut ff::frame::Audio) -> Result<(), ff::Error> {
        self.0.run(input, output).map(drop)
    }
}

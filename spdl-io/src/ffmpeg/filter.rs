//! FFmpeg filter graphs (libavfilter) for video and audio frames: the
//! `filter_desc` escape hatch. A `buffer`/`abuffer` source configured from
//! the first decoded frame, the caller's filter chain, a sink; frames go
//! in with their best-effort timestamps and come out with the sink's time
//! base.

use ffmpeg_next as ff;

use super::codec::set_best_effort_timestamp;
use super::log::{clear_logged_error, logged_error};

/// A filter chain between decoded frames and conversion: video (`buffer`
/// to `buffersink`) or audio (`abuffer` to `abuffersink`).
pub(crate) struct FilterGraph {
    graph: ff::filter::Graph,
    time_base: ff::Rational,
    /// Subtracted from input times and added back to output times (in
    /// the output time base), so the chain sees the stream start at 0 as
    /// the `ffmpeg` CLI's chains do (an `fps` grid starts there).
    shift: i64,
    shift_out: i64,
}

impl FilterGraph {
    /// Builds `desc` (an FFmpeg filter string, as `ffmpeg -vf` takes) for
    /// frames like `first`, timed in `time_base`, with `start` (the
    /// stream's start time, in `time_base`) taken as time 0 inside.
    ///
    /// # Errors
    /// FFmpeg's reason when the string does not parse or the graph does
    /// not configure (an unknown filter, a bad option).
    pub(crate) fn video(
        desc: &str,
        first: &ff::frame::Video,
        time_base: ff::Rational,
        start: i64,
    ) -> Result<Self, String> {
        let sar = first.aspect_ratio();
        let sar = if sar.numerator() > 0 {
            sar
        } else {
            ff::Rational::new(1, 1)
        };
        let args = format!(
            "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect={}/{}",
            first.width(),
            first.height(),
            ff::ffi::AVPixelFormat::from(first.format()) as i32,
            time_base.numerator(),
            time_base.denominator().max(1),
            sar.numerator(),
            sar.denominator().max(1),
        );
        Self::build(desc, ("buffer", &args, "buffersink"), time_base, start)
    }

    /// As [`FilterGraph::video`], for audio frames like `first` (as
    /// `ffmpeg -af` takes the string).
    ///
    /// # Errors
    /// As [`FilterGraph::video`].
    pub(crate) fn audio(
        desc: &str,
        first: &ff::frame::Audio,
        time_base: ff::Rational,
        start: i64,
    ) -> Result<Self, String> {
        let layout = match first.channel_layout().bits() {
            0 => ff::ChannelLayout::default(i32::from(first.channels())).bits(),
            bits => bits,
        };
        let args = format!(
            "time_base={}/{}:sample_rate={}:sample_fmt={}:channel_layout=0x{layout:x}",
            time_base.numerator(),
            time_base.denominator().max(1),
            first.rate(),
            first.format().name(),
        );
        // Float out, as the `ffmpeg` CLI's graph ends when it writes f32:
        // filters such as aresample then compute in float, not in s16.
        if desc.trim().is_empty() {
            return Err("a filter string must be non-empty text without NUL bytes".into());
        }
        let desc = format!("{desc},aformat=sample_fmts=flt");
        Self::build(&desc, ("abuffer", &args, "abuffersink"), time_base, start)
    }

    fn build(
        desc: &str,
        (source, args, sink): (&str, &str, &str),
        time_base: ff::Rational,
        start: i64,
    ) -> Result<Self, String> {
        if desc.contains('\0') || desc.trim().is_empty() {
            return Err("a filter string must be non-empty text without NUL bytes".into());
        }
        check_scale_flags(desc)?;
        clear_logged_error();
        let mut graph = ff::filter::Graph::new();
        let find = |name: &str| ff::filter::find(name).ok_or_else(|| format!("FFmpeg has no {name} filter"));
        let err = |what: &str, e: ff::Error| logged_error(format!("{what}: {e}"));
        graph
            .add(&find(source)?, "in", args)
            .map_err(|e| err("filter source", e))?;
        graph.add(&find(sink)?, "out", "").map_err(|e| err("filter sink", e))?;
        graph
            .output("in", 0)
            .and_then(|p| p.input("out", 0))
            .and_then(|p| p.parse(desc))
            .map_err(|e| err(&format!("filter {desc:?}"), e))?;
        graph.validate().map_err(|e| err(&format!("filter {desc:?}"), e))?;
        let out = graph.get("out").map(|mut c| c.sink().time_base()).unwrap_or(time_base);
        Ok(FilterGraph {
            graph,
            time_base: out,
            shift: start,
            shift_out: ff::Rescale::rescale(&start, time_base, out),
        })
    }

    /// The time base of the frames that come out.
    pub(crate) fn time_base(&self) -> ff::Rational {
        self.time_base
    }

    /// The sample rate and channel count of an audio graph's output.
    pub(crate) fn audio_output(&mut self) -> (u32, u32) {
        let Some(sink) = self.graph.get("out") else {
            return (0, 0);
        };
        // SAFETY: `sink` is the configured buffersink of this graph, alive
        // as long as `self.graph`; the getters read plain fields.
        unsafe {
            let ctx = sink.as_ptr() as *mut ff::ffi::AVFilterContext;
            let rate = ff::ffi::av_buffersink_get_sample_rate(ctx);
            let channels = ff::ffi::av_buffersink_get_channels(ctx);
            (rate.max(0) as u32, channels.max(0) as u32)
        }
    }

    /// Feeds a frame (its pts set from its best-effort timestamp, shifted),
    /// or the end of input when `None`.
    pub(crate) fn push(&mut self, frame: Option<&mut ff::Frame>) -> Result<(), String> {
        let mut source = self.graph.get("in").ok_or("the filter graph lost its source")?;
        let mut source = source.source();
        let fed = match frame {
            Some(f) => {
                let pts = f.timestamp().map(|t| t - self.shift);
                f.set_pts(pts);
                source.add(f)
            }
            None => source.flush(),
        };
        fed.map_err(|e| logged_error(format!("feeding the filter failed: {e}")))
    }

    /// Takes the next filtered frame into `frame`; `false` when the graph
    /// needs more input or has ended.
    pub(crate) fn pull(&mut self, frame: &mut ff::Frame) -> Result<bool, String> {
        let mut sink = self.graph.get("out").ok_or("the filter graph lost its sink")?;
        match sink.sink().frame(frame) {
            Ok(()) => {
                if let Some(pts) = frame.pts() {
                    frame.set_pts(Some(pts + self.shift_out));
                    set_best_effort_timestamp(frame, pts + self.shift_out);
                }
                Ok(true)
            }
            Err(ff::Error::Eof) => Ok(false),
            Err(ff::Error::Other { errno }) if errno == ff::error::EAGAIN => Ok(false),
            Err(e) => Err(logged_error(format!("filtering failed: {e}"))),
        }
    }
}

/// The swscale flag names FFmpeg 5.1's `scale` filter accepts.
const SWS_FLAGS: [&str; 18] = [
    "fast_bilinear",
    "bilinear",
    "bicubic",
    "experimental",
    "neighbor",
    "area",
    "bicublin",
    "gauss",
    "sinc",
    "lanczos",
    "spline",
    "print_info",
    "accurate_rnd",
    "full_chroma_int",
    "full_chroma_inp",
    "bitexact",
    "error_diffusion",
    "unstable",
];

/// Refuses a `scale` filter whose flags name no swscale flag: FFmpeg 5.1
/// (Debian 12's) crashes on one (the `ffmpeg` CLI segfaults on
/// `scale=64:48:flags=nope` too), and a crash cannot be caught. Checks the
/// third positional option and `flags=`; chains with quotes or escapes are
/// passed through unchecked (they cannot be split reliably here).
fn check_scale_flags(desc: &str) -> Result<(), String> {
    if desc.contains(['\'', '\\']) {
        return Ok(());
    }
    for segment in desc.split([',', ';']) {
        let segment = segment.trim_start_matches(|c: char| c == '[' || c.is_whitespace());
        let segment = segment.rsplit(']').next().unwrap_or(segment).trim();
        let Some((name, args)) = segment.split_once('=') else {
            continue;
        };
        if !matches!(name.trim(), "scale" | "scale2ref") {
            continue;
        }
        for (k, arg) in args.split(':').enumerate() {
            let flags = match arg.split_once('=') {
                Some(("flags", v)) => v,
                None if k == 2 => arg,
                _ => continue,
            };
            let unknown = flags
                .split(['+', '-', '|'])
                .map(str::trim)
                .find(|f| !f.is_empty() && f.parse::<i64>().is_err() && !SWS_FLAGS.contains(f));
            if let Some(flag) = unknown {
                return Err(format!(
                    "filter {desc:?}: unknown scale flag {flag:?} (known: {}); FFmpeg 5.1 would crash on it",
                    SWS_FLAGS.join(", ")
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_scale_flags;

    #[test]
    fn unknown_scale_flags_are_refused_before_ffmpeg_sees_them() {
        for bad in [
            "scale=64:48:nope",
            "scale=w=64:h=48:flags=nope",
            "hflip,scale=64:48:flags=bicubic+nope",
        ] {
            assert!(check_scale_flags(bad).unwrap_err().contains("nope"), "{bad}");
        }
        for good in [
            "scale=64:48:bicubic+accurate_rnd",
            "scale=w=64:h=48:flags=lanczos",
            "crop=10:10",
            "scale=64:-2",
        ] {
            assert!(check_scale_flags(good).is_ok(), "{good}");
        }
    }
}

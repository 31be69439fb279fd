//! Opening a container: over any [`RandomRead`] through a custom AVIO
//! context (which FFmpeg reads and seeks with callbacks), or a path through
//! FFmpeg's own `file` protocol for what cannot be read at random. Either
//! way only the protocols named in a whitelist may be opened by the
//! container itself (an HLS or concat playlist names other files or URLs):
//! local files for a path, none for everything else.

use std::ffi::{CStr, CString};
use std::os::raw::{c_int, c_void};
use std::path::Path;
use std::ptr;

use ff::ffi;
use ffmpeg_next as ff;

use super::init;
use super::log::{clear_logged_error, logged_error};
use crate::error::{Error, Result};
use crate::source::read::{ByteInput, RandomRead};

/// An opened container. Field order matters: the format context is closed
/// before the I/O context it reads from is freed.
pub(crate) struct InputContext {
    pub(crate) input: ff::format::context::Input,
    _io: InputIo,
}

/// The I/O context a container reads from, owned beside it.
enum InputIo {
    /// Our callbacks over a [`RandomRead`].
    Custom(MemoryIo),
    /// FFmpeg's `file` protocol over a path.
    File(FileIo),
}

impl InputIo {
    fn avio(&self) -> *mut ffi::AVIOContext {
        match self {
            InputIo::Custom(io) => io.avio,
            InputIo::File(io) => io.0,
        }
    }
}

impl InputContext {
    /// Opens `input` (named `name` in messages) and reads enough to know
    /// its streams. The format is probed first and, unless `trusted`,
    /// must be one of [`MEDIA_CONTAINERS`]; the container may then open no
    /// other file or URL (`trusted`: local files, for a path).
    pub(crate) fn open(input: ByteInput, name: &str, trusted: bool) -> Result<Self> {
        init();
        let c_name = CString::new(name.replace('\0', "")).unwrap_or_default();
        let (io, protocols) = match input {
            ByteInput::Random(reader) => (InputIo::Custom(MemoryIo::new(reader, name)?), c"none"),
            ByteInput::SequentialFile(path) => (InputIo::File(FileIo::open(&path, name)?), c"file"),
        };
        let format = probe_format(io.avio(), &c_name, name)?;
        if !trusted {
            check_container(format, name, matches!(io, InputIo::File(_)))?;
        }
        // SAFETY: allocating an empty format context.
        let mut ctx = unsafe { ffi::avformat_alloc_context() };
        if ctx.is_null() {
            return Err(oom(name));
        }
        // SAFETY: `ctx` is freshly allocated; setting `pb` before opening
        // makes FFmpeg mark it AVFMT_FLAG_CUSTOM_IO and leave the I/O
        // context to `io`. `format` is a static demuxer from the probe. On
        // failure avformat_open_input frees `ctx`.
        let rc = unsafe {
            (*ctx).pb = io.avio();
            open_input(&mut ctx, &c_name, format, protocols)
        };
        if rc < 0 {
            return Err(open_error(name, rc));
        }
        // SAFETY: `ctx` is opened and owned from here on.
        let input = unsafe { find_stream_info(ctx, name)? };
        Ok(InputContext { input, _io: io })
    }
}

/// The demuxers a media dataset needs, by FFmpeg's names: video and audio
/// containers, raw elementary streams, and single images (with every
/// `*_pipe` image demuxer but SVG's, which can reference other files).
/// Left out: playlists and references (`hls`, `dash`, `concat`,
/// `webm_dash_manifest`, `sdp`, `rtsp`, `ffmetadata`), text as video
/// (`tty`, `bin`, `xbin`, `idf`, `adf`), filter graphs and devices
/// (`lavfi`, `v4l2`, `x11grab`, ...), subtitles, and everything exotic.
/// `image2` reads a pattern of file names when opened from a path, so it
/// is allowed only for inputs read through our own I/O.
#[rustfmt::skip]
const MEDIA_CONTAINERS: &[&str] = &[
    // Video containers.
    "mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "mpegts", "mpeg", "flv", "asf", "nut",
    "ogg", "mxf", "dv", "ivf", "yuv4mpegpipe", "rm", "live_flv", "mpjpeg",
    // Raw video streams.
    "h261", "h263", "h264", "hevc", "m4v", "mpegvideo", "vc1", "av1", "obu", "dirac", "mjpeg", "cavsvideo", "dnxhd",
    // Audio containers and raw audio streams.
    "wav", "w64", "aiff", "flac", "mp3", "aac", "loas", "ac3", "eac3", "dts", "dtshd", "truehd", "mlp", "amr",
    "amrnb", "amrwb", "au", "caf", "wv", "ape", "tta", "tak", "mpc", "mpc8", "dsf", "voc", "xwma", "gsm", "shn",
    "nistsphere", "ircam", "sox",
    // Images.
    "image2pipe", "gif", "apng", "ico", "webp", "fits", "msp",
];

/// Whether FFmpeg's demuxer `format` (a comma list of names, such as
/// `mov,mp4,m4a,3gp,3g2,mj2`) is one a media dataset holds.
fn is_media_container(format: &str, from_path: bool) -> bool {
    format.split(',').any(|n| {
        MEDIA_CONTAINERS.contains(&n) || (n.ends_with("_pipe") && n != "svg_pipe") || (n == "image2" && !from_path)
    })
}

/// Probes the container format of what `avio` reads (as avformat_open_input
/// would, keeping the probed bytes in the I/O buffer).
fn probe_format(avio: *mut ffi::AVIOContext, c_name: &CStr, name: &str) -> Result<*const ffi::AVInputFormat> {
    let mut format: *const ffi::AVInputFormat = ptr::null();
    clear_logged_error();
    // SAFETY: `avio` is an open read context owned by the caller; `format`
    // receives a pointer to a static demuxer; the name outlives the call.
    let rc = unsafe { ffi::av_probe_input_buffer2(avio, &mut format, c_name.as_ptr(), ptr::null_mut(), 0, 0) };
    if rc < 0 || format.is_null() {
        return Err(open_error(name, rc.min(ffi::AVERROR_INVALIDDATA)));
    }
    Ok(format)
}

/// Refuses a demuxer outside [`MEDIA_CONTAINERS`], naming it.
fn check_container(format: *const ffi::AVInputFormat, name: &str, from_path: bool) -> Result<()> {
    // SAFETY: `format` is a static demuxer, whose name is a static C string.
    let format = unsafe { CStr::from_ptr((*format).name) }.to_string_lossy();
    if is_media_container(&format, from_path) {
        return Ok(());
    }
    Err(Error::Open {
        src: name.into(),
        reason: format!(
            "the container format is `{format}`, which media datasets do not hold and which can make FFmpeg read \
             other files or URLs; refused (set Limits::trusted_input, `trusted_input=True` in Python or \
             `--trusted-input` in the CLI, for inputs you trust)"
        ),
        cause: None,
    })
}

fn oom(name: &str) -> Error {
    Error::Open {
        src: name.into(),
        reason: "out of memory allocating the I/O context".into(),
        cause: None,
    }
}

fn open_error(name: &str, code: c_int) -> Error {
    if code == ff::error::ENOENT {
        return Error::NotFound { src: name.into() };
    }
    Error::Open {
        src: name.into(),
        reason: logged_error(ff::Error::from(code).to_string()),
        cause: Some(super::cause(ff::Error::from(code))),
    }
}

/// FFmpeg's `file` protocol over a path (a pipe or a device, which cannot
/// be read at random; a trusted playlist); closed on drop.
struct FileIo(*mut ffi::AVIOContext);

// SAFETY: owned by one `InputContext`, touched from one thread at a time.
unsafe impl Send for FileIo {}

impl FileIo {
    fn open(path: &Path, name: &str) -> Result<FileIo> {
        use std::os::unix::ffi::OsStrExt;
        let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Open {
            src: name.into(),
            reason: "path contains a NUL byte".into(),
            cause: None,
        })?;
        let mut avio: *mut ffi::AVIOContext = ptr::null_mut();
        let mut options: *mut ffi::AVDictionary = ptr::null_mut();
        // SAFETY: the strings outlive the calls; av_dict_set copies them;
        // on failure avio_open2 leaves `avio` null.
        let rc = unsafe {
            ffi::av_dict_set(&mut options, c"protocol_whitelist".as_ptr(), c"file".as_ptr(), 0);
            clear_logged_error();
            let rc = ffi::avio_open2(
                &mut avio,
                c_path.as_ptr(),
                ffi::AVIO_FLAG_READ,
                ptr::null(),
                &mut options,
            );
            ffi::av_dict_free(&mut options);
            rc
        };
        if rc < 0 {
            return Err(open_error(name, rc));
        }
        Ok(FileIo(avio))
    }
}

impl Drop for FileIo {
    fn drop(&mut self) {
        // SAFETY: the format context reading from it has been closed
        // (field order in `InputContext`); avio_closep nulls the pointer.
        unsafe { ffi::avio_closep(&mut self.0) };
    }
}

/// `avformat_open_input` with the probed `format`, allowing only
/// `protocols` for the files a container opens by itself (HLS and
/// `concat` playlists name other files or URLs; QuickTime data references
/// are off): local files for a trusted path, none (no protocol is named
/// "none") for everything else. Hostile media then cannot make FFmpeg read
/// other files into frames or reach the network.
///
/// # Safety
/// As `avformat_open_input`: `ctx` is an allocated context (freed by
/// FFmpeg on failure) and `format` a demuxer or null.
unsafe fn open_input(
    ctx: &mut *mut ffi::AVFormatContext,
    url: &CStr,
    format: *const ffi::AVInputFormat,
    protocols: &CStr,
) -> c_int {
    let mut options: *mut ffi::AVDictionary = ptr::null_mut();
    // SAFETY: the strings outlive the calls; av_dict_set copies them, and
    // av_dict_free frees what avformat_open_input leaves in the dictionary.
    unsafe {
        ffi::av_dict_set(&mut options, c"protocol_whitelist".as_ptr(), protocols.as_ptr(), 0);
        ffi::av_dict_set(&mut options, c"enable_drefs".as_ptr(), c"0".as_ptr(), 0);
        clear_logged_error();
        let rc = ffi::avformat_open_input(ctx, url.as_ptr(), format, &mut options);
        ffi::av_dict_free(&mut options);
        rc
    }
}

/// Reads stream information and wraps the context so it is closed on drop.
///
/// # Safety
/// `ctx` must be a context opened by `avformat_open_input` that nothing
/// else owns.
unsafe fn find_stream_info(mut ctx: *mut ffi::AVFormatContext, name: &str) -> Result<ff::format::context::Input> {
    // SAFETY: the caller guarantees `ctx` is a valid opened context.
    let rc = unsafe { ffi::avformat_find_stream_info(ctx, ptr::null_mut()) };
    if rc < 0 {
        // SAFETY: closing the context we own; it is not used afterwards.
        unsafe { ffi::avformat_close_input(&mut ctx) };
        return Err(open_error(name, rc));
    }
    // SAFETY: ownership moves into `Input`, whose Drop closes the context.
    Ok(unsafe { ff::format::context::Input::wrap(ctx) })
}

/// The state behind a custom AVIO context: the input and the position.
struct IoState {
    input: Box<dyn RandomRead>,
    pos: u64,
    name: String,
}

/// A custom AVIO context over an [`IoState`]; frees both on drop.
struct MemoryIo {
    avio: *mut ffi::AVIOContext,
    reader: *mut IoState,
}

// SAFETY: the AVIO context and reader are owned exclusively by one
// `InputContext` and are only touched through it, from one thread at a time.
unsafe impl Send for MemoryIo {}

impl Drop for MemoryIo {
    fn drop(&mut self) {
        // SAFETY: the format context using `avio` has already been closed
        // (field order in `InputContext`); the buffer may have been replaced
        // by FFmpeg, so free the one the context holds now, then the context,
        // then the reader we leaked into a raw pointer.
        unsafe {
            if !self.avio.is_null() {
                ffi::av_freep(ptr::addr_of_mut!((*self.avio).buffer) as *mut c_void);
                ffi::avio_context_free(&mut self.avio);
            }
            drop(Box::from_raw(self.reader));
        }
    }
}

const AVIO_BUFFER_SIZE: usize = 64 * 1024;

impl MemoryIo {
    /// A custom AVIO context reading `input` through our callbacks.
    fn new(input: Box<dyn RandomRead>, name: &str) -> Result<MemoryIo> {
        let reader = Box::into_raw(Box::new(IoState {
            input,
            pos: 0,
            name: name.into(),
        }));
        // SAFETY: av_malloc returns memory FFmpeg may later free or replace.
        let buffer = unsafe { ffi::av_malloc(AVIO_BUFFER_SIZE) } as *mut u8;
        if buffer.is_null() {
            // SAFETY: `reader` came from Box::into_raw above and is not shared yet.
            drop(unsafe { Box::from_raw(reader) });
            return Err(oom(name));
        }
        // SAFETY: `buffer` is av_malloc'ed of the size given; `reader` stays
        // valid until `MemoryIo` drops, after the format context is closed.
        let avio = unsafe {
            ffi::avio_alloc_context(
                buffer,
                AVIO_BUFFER_SIZE as c_int,
                0,
                reader as *mut c_void,
                Some(read_input),
                None,
                Some(seek_input),
            )
        };
        if avio.is_null() {
            // SAFETY: neither pointer was handed to anything that outlives us.
            unsafe {
                ffi::av_free(buffer as *mut c_void);
                drop(Box::from_raw(reader));
            }
            return Err(oom(name));
        }
        Ok(MemoryIo { avio, reader })
    }
}

unsafe extern "C" fn read_input(opaque: *mut c_void, buf: *mut u8, size: c_int) -> c_int {
    // SAFETY: `opaque` is the `IoState` registered with this context, alive
    // until the context is freed; FFmpeg calls us from one thread.
    let state = unsafe { &mut *(opaque as *mut IoState) };
    if size <= 0 {
        return 0;
    }
    // SAFETY: FFmpeg gives a writable buffer of at least `size` bytes.
    let buf = unsafe { std::slice::from_raw_parts_mut(buf, size as usize) };
    match state.input.read_at(state.pos, buf) {
        Ok(0) => ffi::AVERROR_EOF,
        Ok(n) => {
            state.pos += n as u64;
            n as c_int
        }
        Err(e) => {
            tracing::warn!(target: "spdl_io", source = %state.name, "read at byte {} failed: {e}", state.pos);
            ff::error::EIO
        }
    }
}

unsafe extern "C" fn seek_input(opaque: *mut c_void, offset: i64, whence: c_int) -> i64 {
    // SAFETY: as in `read_input`.
    let state = unsafe { &mut *(opaque as *mut IoState) };
    let len = state.input.size() as i64;
    let target = match whence & !ffi::AVSEEK_FORCE {
        ffi::AVSEEK_SIZE => return len,
        0 => Some(offset),
        1 => (state.pos as i64).checked_add(offset),
        2 => len.checked_add(offset),
        _ => None,
    };
    match target {
        Some(t) if (0..=len).contains(&t) => {
            state.pos = t as u64;
            t
        }
        _ => ff::error::EINVAL.into(),
    }
}

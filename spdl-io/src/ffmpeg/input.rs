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
/// before the custom I/O context it reads from is freed.
pub(crate) struct InputContext {
    pub(crate) input: ff::format::context::Input,
    _io: Option<MemoryIo>,
}

impl InputContext {
    /// Opens `input` (named `name` in messages) and reads enough to know
    /// its streams.
    pub(crate) fn open(input: ByteInput, name: &str) -> Result<Self> {
        init();
        match input {
            ByteInput::Random(reader) => open_custom(reader, name),
            ByteInput::SequentialFile(path) => open_path(&path, name),
        }
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

fn open_path(path: &Path, name: &str) -> Result<InputContext> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Open {
        src: name.into(),
        reason: "path contains a NUL byte".into(),
        cause: None,
    })?;
    let mut ctx: *mut ffi::AVFormatContext = ptr::null_mut();
    // SAFETY: `ctx` is null so avformat_open_input allocates it; `c_path`
    // outlives the call. On failure FFmpeg frees the context itself.
    let rc = unsafe { open_input(&mut ctx, &c_path, c"file") };
    if rc < 0 {
        return Err(open_error(name, rc));
    }
    // SAFETY: `ctx` was opened above and is owned from here on.
    let input = unsafe { find_stream_info(ctx, name)? };
    Ok(InputContext { input, _io: None })
}

/// `avformat_open_input` allowing only `protocols` for the files a
/// container opens by itself (HLS and `concat` playlists name other files
/// or URLs): local files for a path source, none (no protocol is named
/// "none") for bytes and remote objects. Hostile media then cannot make
/// FFmpeg read other files into frames or reach the network.
///
/// # Safety
/// As `avformat_open_input`: `ctx` is null or an allocated context (freed
/// by FFmpeg on failure).
unsafe fn open_input(ctx: &mut *mut ffi::AVFormatContext, url: &CStr, protocols: &CStr) -> c_int {
    let mut options: *mut ffi::AVDictionary = ptr::null_mut();
    // SAFETY: the strings outlive the calls; av_dict_set copies them, and
    // av_dict_free frees what avformat_open_input leaves in the dictionary.
    unsafe {
        ffi::av_dict_set(&mut options, c"protocol_whitelist".as_ptr(), protocols.as_ptr(), 0);
        clear_logged_error();
        let rc = ffi::avformat_open_input(ctx, url.as_ptr(), ptr::null(), &mut options);
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

fn open_custom(input: Box<dyn RandomRead>, name: &str) -> Result<InputContext> {
    let oom = || Error::Open {
        src: name.into(),
        reason: "out of memory allocating the I/O context".into(),
        cause: None,
    };
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
        return Err(oom());
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
        return Err(oom());
    }
    let io = MemoryIo { avio, reader };
    // SAFETY: allocating an empty format context.
    let mut ctx = unsafe { ffi::avformat_alloc_context() };
    if ctx.is_null() {
        return Err(oom());
    }
    let c_name = CString::new(name.replace('\0', "")).unwrap_or_default();
    // SAFETY: `ctx` is freshly allocated; setting `pb` before opening makes
    // FFmpeg mark it AVFMT_FLAG_CUSTOM_IO and leave `avio` to us. On failure
    // avformat_open_input frees `ctx` (but not `avio`, which `io` frees).
    let rc = unsafe {
        (*ctx).pb = io.avio;
        open_input(&mut ctx, &c_name, c"none")
    };
    if rc < 0 {
        return Err(open_error(name, rc));
    }
    // SAFETY: `ctx` is opened and owned from here on.
    let input = unsafe { find_stream_info(ctx, name)? };
    Ok(InputContext { input, _io: Some(io) })
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

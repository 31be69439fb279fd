//! Creating a container to write: an FFmpeg muxer over a
//! [`ByteSink`] through a custom AVIO context whose callbacks write (and,
//! where the sink can, seek). The mirror of [`super::input`].

use std::ffi::CString;
use std::io::SeekFrom;
use std::os::raw::{c_int, c_void};
use std::ptr;

use ff::ffi;
use ffmpeg_next as ff;

use super::init;
use super::log::{clear_logged_error, logged_error};
use crate::error::{Error, Result};
use crate::source::sink::ByteSink;

/// A muxer writing into a [`ByteSink`]. Field order matters: the format
/// context is freed (its `pb` cleared first, in `Drop`) before the I/O
/// context it writes through.
pub(crate) struct OutputContext {
    pub(crate) output: ff::format::context::Output,
    io: SinkIo,
}

impl OutputContext {
    /// A muxer for `format` (FFmpeg's name), or the one the sink's name
    /// implies by its extension, writing into `sink`.
    pub(crate) fn create(sink: ByteSink, format: Option<&str>) -> Result<Self> {
        init();
        let name = sink.name().to_string();
        let c_name = CString::new(name.replace('\0', "")).unwrap_or_default();
        let c_format = format.map(|f| CString::new(f.replace('\0', "")).unwrap_or_default());
        let io = SinkIo::new(sink)?;
        let mut ctx: *mut ffi::AVFormatContext = ptr::null_mut();
        clear_logged_error();
        // SAFETY: the strings outlive the call; on success `ctx` is a fresh
        // output context we own, on failure it stays null.
        let rc = unsafe {
            ffi::avformat_alloc_output_context2(
                &mut ctx,
                ptr::null(),
                c_format.as_ref().map_or(ptr::null(), |f| f.as_ptr()),
                c_name.as_ptr(),
            )
        };
        if rc < 0 || ctx.is_null() {
            return Err(Error::InvalidConfig(format!(
                "{name}: no container format {}: {}",
                match format {
                    Some(f) => format!("named {f:?}"),
                    None => "for this extension (name one)".into(),
                },
                logged_error(ff::Error::from(rc).to_string())
            )));
        }
        // SAFETY: `ctx` is ours; the muxer writes through `io.avio`, which
        // outlives it (field order, and `Drop` clears `pb` before the
        // context is freed); CUSTOM_IO keeps FFmpeg from closing it.
        let output = unsafe {
            (*ctx).pb = io.avio;
            (*ctx).flags |= ffi::AVFMT_FLAG_CUSTOM_IO;
            ff::format::context::Output::wrap(ctx)
        };
        Ok(OutputContext { output, io })
    }

    /// Whether the sink can seek (a muxer that cannot work without it,
    /// MP4's, must then write fragments).
    pub(crate) fn seekable(&self) -> bool {
        self.io.state().sink.as_ref().is_some_and(ByteSink::seekable)
    }

    /// The error the sink reported for an FFmpeg write that failed, or
    /// `fallback` naming what failed.
    pub(crate) fn error(&mut self, fallback: impl FnOnce() -> Error) -> Error {
        self.io.state_mut().error.take().unwrap_or_else(fallback)
    }

    /// Writes the container's trailer. (`av_write_trailer` may return a
    /// positive count, as MP4's fragmented trailer does, which
    /// ffmpeg-next would report as an error.)
    pub(crate) fn write_trailer(&mut self) -> Result<(), ff::Error> {
        // SAFETY: the context is ours, its header written by the caller.
        match unsafe { ffi::av_write_trailer(self.output.as_mut_ptr()) } {
            rc if rc < 0 => Err(ff::Error::from(rc)),
            _ => Ok(()),
        }
    }

    /// Flushes FFmpeg's buffer and completes the sink (after the trailer):
    /// the bytes for an in-memory destination.
    pub(crate) fn finish(mut self) -> Result<Option<Vec<u8>>> {
        // SAFETY: `avio` is our open write context.
        unsafe { ffi::avio_flush(self.io.avio) };
        let state = self.io.state_mut();
        if let Some(e) = state.error.take() {
            return Err(e);
        }
        match state.sink.take() {
            Some(sink) => sink.finish(),
            None => Ok(None),
        }
    }
}

impl Drop for OutputContext {
    fn drop(&mut self) {
        // SAFETY: the format context must not close our I/O context (the
        // `Output` destructor calls avio_close on `pb`); `SinkIo` frees it.
        unsafe { (*self.output.as_mut_ptr()).pb = ptr::null_mut() };
    }
}

/// What the write callbacks reach: the sink, and the first error it gave.
struct SinkState {
    sink: Option<ByteSink>,
    error: Option<Error>,
}

/// A custom write AVIO context over a [`SinkState`]; frees both on drop.
struct SinkIo {
    avio: *mut ffi::AVIOContext,
    state: *mut SinkState,
}

// SAFETY: owned by one `OutputContext` and touched through it only, from
// one thread at a time.
unsafe impl Send for SinkIo {}

const AVIO_BUFFER_SIZE: usize = 256 * 1024;

type WritePacket = unsafe extern "C" fn(*mut c_void, *const u8, c_int) -> c_int;

impl SinkIo {
    fn new(sink: ByteSink) -> Result<SinkIo> {
        let name = sink.name().to_string();
        let seekable = sink.seekable();
        let state = Box::into_raw(Box::new(SinkState {
            sink: Some(sink),
            error: None,
        }));
        // SAFETY: av_malloc returns memory FFmpeg may later free or replace.
        let buffer = unsafe { ffi::av_malloc(AVIO_BUFFER_SIZE) } as *mut u8;
        let seek: Option<unsafe extern "C" fn(*mut c_void, i64, c_int) -> i64> = match seekable {
            true => Some(seek_output),
            false => None,
        };
        let avio = match buffer.is_null() {
            true => ptr::null_mut(),
            // SAFETY: `buffer` is av_malloc'ed of the size given; `state`
            // stays valid until `SinkIo` drops, after the muxer is freed.
            // The write callback is passed as the binding's own pointer
            // type: FFmpeg 5 declares its buffer `uint8_t *`, FFmpeg 7
            // `const uint8_t *`, the same ABI.
            // The target type is left to inference on purpose: it is
            // whichever the headers this build binds to declare.
            #[allow(clippy::missing_transmute_annotations)]
            false => unsafe {
                ffi::avio_alloc_context(
                    buffer,
                    AVIO_BUFFER_SIZE as c_int,
                    1,
                    state as *mut c_void,
                    None,
                    Some(std::mem::transmute::<WritePacket, _>(write_output)),
                    seek,
                )
            },
        };
        if avio.is_null() {
            // SAFETY: neither pointer was handed to anything that outlives us.
            unsafe {
                ffi::av_free(buffer as *mut c_void);
                drop(Box::from_raw(state));
            }
            return Err(Error::Convert {
                src: name,
                reason: "out of memory for the output buffer".into(),
            });
        }
        Ok(SinkIo { avio, state })
    }

    fn state(&self) -> &SinkState {
        // SAFETY: `state` lives as long as `self`; FFmpeg touches it only
        // inside calls made through `&mut OutputContext`.
        unsafe { &*self.state }
    }

    fn state_mut(&mut self) -> &mut SinkState {
        // SAFETY: as in `state`, and `&mut self` excludes other borrows.
        unsafe { &mut *self.state }
    }
}

impl Drop for SinkIo {
    fn drop(&mut self) {
        // SAFETY: the muxer has been freed (field order in
        // `OutputContext`); the buffer may have been replaced by FFmpeg, so
        // free the one the context holds now, then the context, then the
        // state leaked into a raw pointer (dropping an unfinished sink: an
        // upload is aborted).
        unsafe {
            ffi::av_freep(ptr::addr_of_mut!((*self.avio).buffer) as *mut c_void);
            ffi::avio_context_free(&mut self.avio);
            drop(Box::from_raw(self.state));
        }
    }
}

unsafe extern "C" fn write_output(opaque: *mut c_void, buf: *const u8, size: c_int) -> c_int {
    // SAFETY: `opaque` is the `SinkState` registered with this context,
    // alive until the context is freed; FFmpeg calls us from one thread.
    let state = unsafe { &mut *(opaque as *mut SinkState) };
    let Some(sink) = state.sink.as_mut() else {
        return ff::error::EIO;
    };
    if size <= 0 {
        return 0;
    }
    // SAFETY: FFmpeg gives `size` readable bytes.
    let data = unsafe { std::slice::from_raw_parts(buf, size as usize) };
    match sink.write_all(data) {
        Ok(()) => size,
        Err(e) => {
            state.error.get_or_insert(e);
            ff::error::EIO
        }
    }
}

unsafe extern "C" fn seek_output(opaque: *mut c_void, offset: i64, whence: c_int) -> i64 {
    // SAFETY: as in `write_output`.
    let state = unsafe { &mut *(opaque as *mut SinkState) };
    let Some(sink) = state.sink.as_mut() else {
        return ff::error::EIO.into();
    };
    let to = match whence & !ffi::AVSEEK_FORCE {
        ffi::AVSEEK_SIZE => return sink.len().map_or(ff::error::EINVAL.into(), |n| n as i64),
        0 if offset >= 0 => SeekFrom::Start(offset as u64),
        1 => SeekFrom::Current(offset),
        2 => SeekFrom::End(offset),
        _ => return ff::error::EINVAL.into(),
    };
    match sink.seek(to) {
        Some(Ok(pos)) => pos as i64,
        Some(Err(e)) => {
            let name = sink.name().to_string();
            state.error.get_or_insert(Error::write(&name, e));
            ff::error::EIO.into()
        }
        None => ff::error::EINVAL.into(),
    }
}

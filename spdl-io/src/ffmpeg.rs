//! The FFI edge: every FFmpeg call that needs `unsafe` lives in this module.
//!
//! It provides process-wide initialisation (FFmpeg's log routed to
//! `tracing`), opening inputs from paths or from memory through a custom
//! AVIO context, keyframe seeking, stream side data (rotation), frame
//! cropping and a swscale context that writes straight into caller memory.

use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};
use std::path::Path;
use std::ptr;
use std::sync::Once;

use bytes::Bytes;
use ff::ffi;
use ffmpeg_next as ff;

use crate::ranged::RangedReader;
use crate::source::io_error;
use crate::{Error, Limits, Orientation, Result, Source};

/// Initialises FFmpeg once per process and routes its log to `tracing`.
pub(crate) fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // Registers error strings; cannot fail on FFmpeg >= 4.
        let _ = ff::init();
        // SAFETY: setting the log level and callback is allowed at any time;
        // the callback below is a plain `extern "C"` function that lives for
        // the whole program.
        unsafe {
            ffi::av_log_set_level(ffi::AV_LOG_WARNING);
            ffi::av_log_set_callback(Some(log_to_tracing));
        }
    });
}

/// Formats one FFmpeg log line and emits it as a `tracing` event.
unsafe extern "C" fn log_to_tracing(avcl: *mut c_void, level: c_int, fmt: *const c_char, vl: *mut ffi::__va_list_tag) {
    // SAFETY: reading the global log level has no preconditions.
    if level > unsafe { ffi::av_log_get_level() } {
        return;
    }
    let mut line = [0 as c_char; 1024];
    let mut print_prefix: c_int = 1;
    // SAFETY: FFmpeg hands us a valid format string and va_list for this
    // call; `line` is a writable buffer of the size we pass.
    let written = unsafe {
        ffi::av_log_format_line2(
            avcl,
            level,
            fmt,
            vl,
            line.as_mut_ptr(),
            line.len() as c_int,
            &mut print_prefix,
        )
    };
    if written < 0 {
        return;
    }
    // SAFETY: av_log_format_line2 always NUL-terminates within the buffer.
    let text = unsafe { CStr::from_ptr(line.as_ptr()) }.to_string_lossy();
    let text = text.trim_end();
    match level {
        l if l <= ffi::AV_LOG_ERROR => {
            LOGGED_ERROR.with(|e| *e.borrow_mut() = Some(without_address(text)));
            tracing::error!(target: "ffmpeg", "{text}")
        }
        l if l <= ffi::AV_LOG_WARNING => tracing::warn!(target: "ffmpeg", "{text}"),
        l if l <= ffi::AV_LOG_INFO => tracing::info!(target: "ffmpeg", "{text}"),
        _ => tracing::debug!(target: "ffmpeg", "{text}"),
    }
}

thread_local! {
    /// The last error FFmpeg logged on this thread since
    /// [`clear_logged_error`]: its return codes alone are often vague
    /// ("Invalid argument" for a picture size it refuses).
    static LOGGED_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Forgets the error FFmpeg last logged on this thread; call before the
/// FFmpeg call whose failure [`logged_error`] should explain.
pub(crate) fn clear_logged_error() {
    LOGGED_ERROR.with(|e| e.borrow_mut().take());
}

/// `reason` followed by what FFmpeg logged on this thread since
/// [`clear_logged_error`], if anything.
pub(crate) fn logged_error(reason: String) -> String {
    match LOGGED_ERROR.with(|e| e.borrow_mut().take()) {
        Some(logged) => format!("{reason} (FFmpeg: {logged})"),
        None => reason,
    }
}

/// A log line without the context's address: `[h264 @ 0x5581...] text`
/// becomes `[h264] text`.
fn without_address(line: &str) -> String {
    match (line.strip_prefix('['), line.find(" @ 0x"), line.find("] ")) {
        (Some(_), Some(at), Some(end)) if at < end => format!("{}{}", &line[..at], &line[end..]),
        _ => line.to_string(),
    }
}

/// An opened container. Field order matters: the format context is closed
/// before the custom I/O context it reads from is freed.
pub(crate) struct InputContext {
    pub(crate) input: ff::format::context::Input,
    _io: Option<MemoryIo>,
}

impl InputContext {
    /// Opens `source` and reads enough to know its streams.
    pub(crate) fn open(source: &Source, limits: &Limits) -> Result<Self> {
        init();
        let name = source.name();
        let input: Box<dyn RandomRead> = match source {
            Source::Path(path) => {
                let meta = std::fs::metadata(path).map_err(|e| io_error(&name, e))?;
                Limits::check(&name, "input size in bytes", meta.len(), limits.max_input_bytes)?;
                if !meta.is_file() {
                    return open_path(path, &name); // a pipe or device: FFmpeg's sequential reader
                }
                let file = std::fs::File::open(path).map_err(|e| io_error(&name, e))?;
                let mut reader = FileReader { file, size: meta.len() };
                // An HLS playlist opens its segments as local files itself.
                let mut head = [0u8; 7];
                if reader.read_at(0, &mut head).is_ok_and(|n| head[..n] == *b"#EXTM3U") {
                    return open_path(path, &name);
                }
                Box::new(reader)
            }
            Source::Bytes { data, .. } => Box::new(MemoryReader(data.clone())),
            Source::Remote { url, store } => match RangedReader::open(Source::remote(url, store.as_ref())?, url) {
                Ok(reader) => Box::new(reader),
                // A server without range requests (`python -m http.server`,
                // object_store's NotSupported): the whole object, in one GET
                // within the input limit.
                Err(Error::Remote { reason, .. }) if reason.contains("Range request not supported") => {
                    Box::new(MemoryReader(source.read_all(limits)?))
                }
                Err(e) => return Err(e),
            },
        };
        Limits::check(&name, "input size in bytes", input.size(), limits.max_input_bytes)?;
        open_custom(input, &name)
    }
}

fn open_error(name: &str, code: c_int) -> Error {
    if code == ff::error::ENOENT {
        return Error::NotFound { src: name.into() };
    }
    Error::Open {
        src: name.into(),
        reason: logged_error(ff::Error::from(code).to_string()),
    }
}

fn open_path(path: &Path, name: &str) -> Result<InputContext> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Open {
        src: name.into(),
        reason: "path contains a NUL byte".into(),
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

/// Random-access input served to FFmpeg through a custom AVIO context.
pub(crate) trait RandomRead: Send {
    /// Total size in bytes.
    fn size(&self) -> u64;
    /// Reads up to `buf.len()` bytes at `pos`; 0 only at the end.
    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> std::result::Result<usize, String>;
}

/// A regular file, read with `pread` at the position the demuxer keeps:
/// a forked child reading the same open file cannot move the parent's
/// offset (it could with FFmpeg's `file` protocol, which seeks the shared
/// descriptor, so a parent's stream read the child's positions).
struct FileReader {
    file: std::fs::File,
    size: u64,
}

impl RandomRead for FileReader {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> std::result::Result<usize, String> {
        use std::os::unix::fs::FileExt;
        loop {
            match self.file.read_at(buf, pos) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                read => return read.map_err(|e| e.to_string()),
            }
        }
    }
}

/// Bytes already in memory.
struct MemoryReader(Bytes);

impl RandomRead for MemoryReader {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> std::result::Result<usize, String> {
        let rest = self.0.get(pos as usize..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }
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
        Err(reason) => {
            tracing::warn!(target: "spdl_io", source = %state.name, "read at byte {} failed: {reason}", state.pos);
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

/// Seeks `stream` to the keyframe at or before `ts` (in the stream's time
/// base). Falls back to a backward `av_seek_frame` for demuxers that do not
/// implement `avformat_seek_file` ranges.
pub(crate) fn seek_keyframe_before(
    input: &mut ff::format::context::Input,
    stream: usize,
    ts: i64,
) -> std::result::Result<(), ff::Error> {
    // SAFETY: `input` is an opened context and `stream` one of its indices.
    let rc = unsafe { ffi::avformat_seek_file(input.as_mut_ptr(), stream as c_int, i64::MIN, ts, ts, 0) };
    if rc >= 0 {
        return Ok(());
    }
    // SAFETY: as above.
    let rc = unsafe { ffi::av_seek_frame(input.as_mut_ptr(), stream as c_int, ts, ffi::AVSEEK_FLAG_BACKWARD) };
    if rc >= 0 {
        Ok(())
    } else {
        Err(ff::Error::from(rc))
    }
}

/// An FFmpeg error as a message. Decoders sometimes return private codes
/// (AC-3's header errors, say) that `av_strerror` knows nothing of: those
/// read as rejected data with the code, not as "Unknown error N".
pub(crate) fn describe(e: ff::Error) -> String {
    match e.to_string() {
        s if s.starts_with("Unknown error") => {
            format!("the data was rejected (FFmpeg error code {})", i32::from(e))
        }
        s => s,
    }
}

/// Adds a hint to a demuxer read error: an I/O error in the middle of a
/// file usually means the file ends early.
pub(crate) fn describe_read(e: ff::Error) -> String {
    match e {
        ff::Error::Other { errno } if errno == libc::EIO => format!("{} (the file may be truncated)", describe(e)),
        e => describe(e),
    }
}

/// A packet's raw `AV_PKT_FLAG_*` bits (ffmpeg-next's `flags()` keeps only
/// the key and corrupt bits, dropping `AV_PKT_FLAG_DISCARD`).
pub(crate) fn packet_flags(packet: &ff::Packet) -> c_int {
    use ff::packet::Ref;
    // SAFETY: reading a plain field of a packet we borrow.
    unsafe { (*packet.as_ptr()).flags }
}

/// Sets the timestamp a decoded frame reports (its best-effort pts).
pub(crate) fn set_best_effort_timestamp(frame: &mut ff::frame::Video, pts: i64) {
    // SAFETY: writing a plain field of a frame we own.
    unsafe { (*frame.as_mut_ptr()).best_effort_timestamp = pts };
}

/// The stream's display matrix, if it has one.
fn display_matrix(input: &ff::format::context::Input, stream: usize) -> Option<[i32; 9]> {
    let st = input.stream(stream)?;
    let mut size = 0usize;
    // SAFETY: the stream pointer is valid while `input` is borrowed; the
    // returned side data is owned by the stream.
    let data = unsafe {
        ffi::av_stream_get_side_data(
            st.as_ptr(),
            ffi::AVPacketSideDataType::AV_PKT_DATA_DISPLAYMATRIX,
            &mut size,
        )
    };
    if data.is_null() || size < 9 * std::mem::size_of::<i32>() {
        return None;
    }
    // SAFETY: the side data holds a 3x3 i32 display matrix (checked size);
    // it may not be aligned for i32, hence the unaligned read.
    Some(unsafe { ptr::read_unaligned(data as *const [i32; 9]) })
}

/// The clockwise angle in degrees the matrix asks the player to turn by,
/// as the `ffmpeg` CLI computes it (`get_rotation`): whole degrees, in
/// [-0.9, 359.1).
fn clockwise_degrees(matrix: &[i32; 9]) -> Option<f64> {
    // SAFETY: `matrix` is a 3x3 display matrix, as the function expects.
    let ccw = unsafe { ffi::av_display_rotation_get(matrix.as_ptr()) };
    let theta = -ccw.round();
    theta
        .is_finite()
        .then(|| theta - 360.0 * (theta / 360.0 + 0.9 / 360.0).floor())
}

/// The clockwise rotation (0, 90, 180 or 270 degrees) that the stream's
/// display matrix asks for; 0 for an angle more than 1 degree from a right
/// angle, which [`stream_orientation`] does not apply either.
pub(crate) fn stream_rotation(input: &ff::format::context::Input, stream: usize) -> u32 {
    let Some(cw) = display_matrix(input, stream).as_ref().and_then(clockwise_degrees) else {
        return 0;
    };
    let quarter = (cw / 90.0).round();
    match (cw - 90.0 * quarter).abs() < 1.0 {
        true => (quarter.rem_euclid(4.0) as u32) * 90,
        false => 0,
    }
}

/// How to turn decoded frames for display, as the `ffmpeg` CLI's
/// autorotation does: right-angle rotations with the mirroring the matrix
/// adds (a transpose for a mirrored 90 degrees, a flip for a mirrored
/// 0 or 180). Other angles are not applied (the CLI rotates by them and
/// fills the corners with black).
pub(crate) fn stream_orientation(input: &ff::format::context::Input, stream: usize) -> Orientation {
    let Some(m) = display_matrix(input, stream) else {
        return Orientation::Normal;
    };
    let Some(theta) = clockwise_degrees(&m) else {
        return Orientation::Normal;
    };
    let near = |angle: f64| (theta - angle).abs() < 1.0;
    if near(90.0) {
        return if m[3] > 0 {
            Orientation::Transpose
        } else {
            Orientation::Rotate90
        };
    }
    if near(270.0) {
        return if m[3] < 0 {
            Orientation::Transverse
        } else {
            Orientation::Rotate270
        };
    }
    match (near(180.0), near(0.0), m[0] < 0, m[4] < 0) {
        (true, _, true, true) => Orientation::Rotate180,
        (true, _, true, false) => Orientation::FlipHorizontal,
        (true, _, false, true) | (_, true, _, true) => Orientation::FlipVertical,
        _ => Orientation::Normal,
    }
}

/// Crops `frame` in place (adjusting plane pointers, no copy).
pub(crate) fn crop_frame(
    frame: &mut ff::frame::Video,
    left: u32,
    top: u32,
    width: u32,
    height: u32,
) -> std::result::Result<(), ff::Error> {
    let (fw, fh) = (frame.width(), frame.height());
    if left.saturating_add(width) > fw || top.saturating_add(height) > fh {
        return Err(ff::Error::InvalidData);
    }
    // SAFETY: the frame is a valid decoded frame we own; the crop fields
    // are checked against its size above.
    let rc = unsafe {
        let f = frame.as_mut_ptr();
        (*f).crop_left = left as usize;
        (*f).crop_top = top as usize;
        (*f).crop_right = (fw - left - width) as usize;
        (*f).crop_bottom = (fh - top - height) as usize;
        ffi::av_frame_apply_cropping(f, ffi::AV_FRAME_CROP_UNALIGNED as c_int)
    };
    if rc < 0 {
        Err(ff::Error::from(rc))
    } else {
        Ok(())
    }
}

/// What a swscale context converts from and to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScalerKey {
    pub src_w: u32,
    pub src_h: u32,
    pub src_fmt: ff::format::Pixel,
    pub colorspace: ff::color::Space,
    pub full_range: bool,
    pub dst_w: u32,
    pub dst_h: u32,
    pub dst_fmt: ff::format::Pixel,
    pub flags: c_int,
}

/// A swscale context that writes into caller-provided planes.
pub(crate) struct Scaler {
    ctx: *mut ffi::SwsContext,
    key: ScalerKey,
    /// Whether this conversion writes padded rows ([`converts_in_blocks`]).
    pads_rows: bool,
    /// Those padded rows, reused across frames.
    padded: Vec<u8>,
}

// SAFETY: a SwsContext has no thread affinity; `Scaler` owns it exclusively
// and is not `Sync`, so it is used from one thread at a time.
unsafe impl Send for Scaler {}

impl Drop for Scaler {
    fn drop(&mut self) {
        // SAFETY: `ctx` was created by sws_getContext and is freed once.
        unsafe { ffi::sws_freeContext(self.ctx) };
    }
}

/// One destination plane: byte offset into the output slot, stride, rows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlaneLayout {
    pub offset: usize,
    pub stride: usize,
    pub rows: usize,
}

impl Scaler {
    /// Creates a context for `key`, with the source colour matrix and range
    /// set explicitly (unspecified matrices are treated as BT.601, as
    /// FFmpeg's scale filter does).
    pub(crate) fn new(key: ScalerKey) -> std::result::Result<Self, String> {
        // SAFETY: plain constructor; arguments are validated by swscale,
        // which returns null on unsupported formats or sizes.
        let ctx = unsafe {
            ffi::sws_getContext(
                key.src_w as c_int,
                key.src_h as c_int,
                key.src_fmt.into(),
                key.dst_w as c_int,
                key.dst_h as c_int,
                key.dst_fmt.into(),
                key.flags,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null(),
            )
        };
        if ctx.is_null() {
            return Err(format!(
                "swscale cannot convert {:?} {}x{} to {:?} {}x{}",
                key.src_fmt, key.src_w, key.src_h, key.dst_fmt, key.dst_w, key.dst_h
            ));
        }
        let scaler = Scaler {
            ctx,
            key,
            pads_rows: converts_in_blocks(&key),
            padded: Vec::new(),
        };
        let mut space: c_int = ffi::AVColorSpace::from(key.colorspace) as c_int;
        if !(1..=10).contains(&space) || space == 8 {
            space = ffi::SWS_CS_ITU601 as c_int;
        }
        // SAFETY: `ctx` is valid; sws_getCoefficients returns a static table.
        unsafe {
            let mut inv: *mut c_int = ptr::null_mut();
            let mut table: *mut c_int = ptr::null_mut();
            let (mut src_full, mut dst_full, mut bri, mut con, mut sat) = (0, 0, 0, 0, 0);
            ffi::sws_getColorspaceDetails(
                ctx,
                &mut inv,
                &mut src_full,
                &mut table,
                &mut dst_full,
                &mut bri,
                &mut con,
                &mut sat,
            );
            let coeffs = ffi::sws_getCoefficients(space);
            ffi::sws_setColorspaceDetails(ctx, coeffs, key.full_range as c_int, coeffs, dst_full, bri, con, sat);
        }
        Ok(scaler)
    }

    pub(crate) fn key(&self) -> &ScalerKey {
        &self.key
    }

    /// Converts `frame` into `out`, whose planes are laid out as `planes`.
    pub(crate) fn run(
        &mut self,
        frame: &ff::frame::Video,
        out: &mut [u8],
        planes: &[PlaneLayout],
    ) -> std::result::Result<(), String> {
        for (i, p) in planes.iter().enumerate() {
            if p.offset + p.stride * p.rows > out.len() {
                return Err(format!("output plane {i} does not fit the frame buffer"));
            }
        }
        match planes {
            [p] if self.pads_rows => {
                // Rows padded by 16 pixels of up to 8 bytes, and a spare row.
                let stride = (p.stride + 128).next_multiple_of(64);
                let mut padded = std::mem::take(&mut self.padded);
                padded.resize(stride * (p.rows + 1), 0);
                let layout = PlaneLayout {
                    offset: 0,
                    stride,
                    rows: p.rows,
                };
                let converted = self.scale(frame, &mut padded, &[layout]);
                let rows = out[p.offset..p.offset + p.stride * p.rows].chunks_exact_mut(p.stride);
                for (row, from) in rows.zip(padded.chunks_exact(stride)) {
                    row.copy_from_slice(&from[..p.stride]);
                }
                self.padded = padded;
                converted
            }
            _ => self.scale(frame, out, planes),
        }
    }

    /// `sws_scale` into planes already checked to lie inside `out`.
    fn scale(
        &mut self,
        frame: &ff::frame::Video,
        out: &mut [u8],
        planes: &[PlaneLayout],
    ) -> std::result::Result<(), String> {
        let mut dst = [ptr::null_mut::<u8>(); 4];
        let mut dst_stride = [0 as c_int; 4];
        let base = out.as_mut_ptr();
        for (i, p) in planes.iter().enumerate().take(4) {
            // SAFETY: the caller checked that the plane lies inside `out`.
            dst[i] = unsafe { base.add(p.offset) };
            dst_stride[i] = p.stride as c_int;
        }
        // SAFETY: the frame's data pointers and strides describe a valid
        // image of src_w x src_h in src_fmt (the key was built from this
        // frame); each destination plane lies inside `out`, and conversions
        // that store past a row's end get padded rows (`run`).
        let rows = unsafe {
            let f = frame.as_ptr();
            ffi::sws_scale(
                self.ctx,
                (*f).data.as_ptr() as *const *const u8,
                (*f).linesize.as_ptr(),
                0,
                self.key.src_h as c_int,
                dst.as_ptr(),
                dst_stride.as_ptr(),
            )
        };
        if rows <= 0 {
            return Err(format!("swscale returned {rows}"));
        }
        Ok(())
    }
}

/// Whether swscale may convert with its special unscaled YUV -> RGB
/// converters (x86, FFmpeg 5-7: 8-bit 4:2:0 and 4:2:2 sources, even
/// heights). They work in blocks of 8 pixels: given tightly packed rows
/// they leave the last `width % 8` pixels of every row black, and they
/// store past the end of a row, which overruns the output. The test is a
/// superset (any unscaled, chroma-subsampled 8-bit YUV source to packed
/// RGB), so a future FFmpeg with more such converters is covered too.
fn converts_in_blocks(key: &ScalerKey) -> bool {
    if (key.src_w, key.src_h) != (key.dst_w, key.dst_h) {
        return false;
    }
    // SAFETY: av_pix_fmt_desc_get returns null or a static descriptor.
    let (src, dst) = unsafe {
        (
            ffi::av_pix_fmt_desc_get(key.src_fmt.into()).as_ref(),
            ffi::av_pix_fmt_desc_get(key.dst_fmt.into()).as_ref(),
        )
    };
    let (Some(src), Some(dst)) = (src, dst) else {
        return true; // unknown: padded rows are always safe
    };
    let flag = |d: &ffi::AVPixFmtDescriptor, f: c_int| d.flags & f as u64 != 0;
    let subsampled_yuv = src.nb_components >= 3
        && !flag(src, ffi::AV_PIX_FMT_FLAG_RGB)
        && flag(src, ffi::AV_PIX_FMT_FLAG_PLANAR)
        && (src.log2_chroma_w > 0 || src.log2_chroma_h > 0)
        && src.comp[0].depth <= 8;
    let packed_rgb = flag(dst, ffi::AV_PIX_FMT_FLAG_RGB) && !flag(dst, ffi::AV_PIX_FMT_FLAG_PLANAR);
    subsampled_yuv && packed_rgb
}

/// A C string owned by FFmpeg (static name tables) as an owned `String`.
fn c_name(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: FFmpeg's name functions return NUL-terminated static strings.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// Codec parameters of one stream, read from its `AVCodecParameters`.
#[derive(Debug, Clone, Default)]
pub(crate) struct CodecParams {
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub pix_fmt: Option<String>,
    pub color_space: Option<String>,
    pub color_range: Option<String>,
    pub color_primaries: Option<String>,
    pub color_transfer: Option<String>,
    pub sample_rate: u32,
    pub channels: u32,
    pub channel_layout: Option<String>,
    pub sample_fmt: Option<String>,
    pub bit_rate: i64,
}

/// Reads the codec parameters of `stream`.
pub(crate) fn codec_params(stream: &ff::format::stream::Stream) -> CodecParams {
    let params = stream.parameters();
    // SAFETY: the parameters belong to a live stream; every name function
    // accepts any enum value and returns null for unknown ones; formats are
    // range-checked before being turned into enums.
    unsafe {
        let p = &*params.as_ptr();
        let is_video = p.codec_type == ffi::AVMediaType::AVMEDIA_TYPE_VIDEO;
        let is_audio = p.codec_type == ffi::AVMediaType::AVMEDIA_TYPE_AUDIO;
        let mut layout = [0 as c_char; 128];
        let layout_len = if is_audio {
            ffi::av_channel_layout_describe(&p.ch_layout, layout.as_mut_ptr(), layout.len())
        } else {
            -1
        };
        CodecParams {
            codec: c_name(ffi::avcodec_get_name(p.codec_id)).unwrap_or_default(),
            width: p.width.max(0) as u32,
            height: p.height.max(0) as u32,
            pix_fmt: if is_video && (0..ffi::AVPixelFormat::AV_PIX_FMT_NB as c_int).contains(&p.format) {
                c_name(ffi::av_get_pix_fmt_name(
                    std::mem::transmute::<c_int, ffi::AVPixelFormat>(p.format),
                ))
            } else {
                None
            },
            color_space: is_video
                .then(|| c_name(ffi::av_color_space_name(p.color_space)))
                .flatten(),
            color_range: is_video
                .then(|| c_name(ffi::av_color_range_name(p.color_range)))
                .flatten(),
            color_primaries: is_video
                .then(|| c_name(ffi::av_color_primaries_name(p.color_primaries)))
                .flatten(),
            color_transfer: is_video
                .then(|| c_name(ffi::av_color_transfer_name(p.color_trc)))
                .flatten(),
            sample_rate: p.sample_rate.max(0) as u32,
            channels: if is_audio {
                p.ch_layout.nb_channels.max(0) as u32
            } else {
                0
            },
            channel_layout: (layout_len > 0).then(|| c_name(layout.as_ptr())).flatten(),
            sample_fmt: if is_audio && (0..ffi::AVSampleFormat::AV_SAMPLE_FMT_NB as c_int).contains(&p.format) {
                c_name(ffi::av_get_sample_fmt_name(std::mem::transmute::<
                    c_int,
                    ffi::AVSampleFormat,
                >(p.format)))
            } else {
                None
            },
            bit_rate: p.bit_rate,
        }
    }
}

/// Sets the decoder's thread count (0 lets FFmpeg pick one per core) and
/// allows both frame and slice threading, as the `ffmpeg` CLI does.
pub(crate) fn set_decoder_threads(ctx: &mut ff::codec::Context, threads: usize) {
    // SAFETY: the codec context is not opened yet; these fields are plain
    // integers that avcodec_open2 reads.
    unsafe {
        let c = ctx.as_mut_ptr();
        (*c).thread_count = threads.min(64) as c_int;
        (*c).thread_type = (ffi::FF_THREAD_FRAME | ffi::FF_THREAD_SLICE) as c_int;
    }
}

/// Makes the decoder skip (or stop skipping) frames that no other frame
/// references. Reference frames still decode, so every frame that is output
/// is bit-identical to a full decode.
pub(crate) fn set_skip_nonref(decoder: &mut ff::decoder::Video, skip: bool) {
    // SAFETY: `skip_frame` is a plain field that the decoder reads for each
    // packet (frame threads copy it at submission); the context is open and
    // owned by `decoder`.
    unsafe {
        (*decoder.as_mut_ptr()).skip_frame = if skip {
            ffi::AVDiscard::AVDISCARD_NONREF
        } else {
            ffi::AVDiscard::AVDISCARD_DEFAULT
        };
    }
}

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

/// Bytes in one row of plane `plane` of a `width`-pixel image in `fmt`,
/// without padding; `None` for formats FFmpeg cannot describe that way.
pub(crate) fn plane_row_bytes(fmt: ff::format::Pixel, width: u32, plane: usize) -> Option<usize> {
    // SAFETY: av_image_get_linesize only reads the format descriptor table.
    let n = unsafe { ffi::av_image_get_linesize(fmt.into(), width as c_int, plane as c_int) };
    (n > 0).then_some(n as usize)
}

/// The container's own index of a stream (for MP4/MOV: the sample table
/// read from the `moov` box, so no packet has to be read): each entry's
/// timestamp and keyframe flag, in the index's order, leaving out entries
/// marked discarded (edit lists). Also returns the stream's reorder delay
/// (`video_delay`, 0 when frames are never reordered, so pts == dts).
pub(crate) fn container_index(input: &ff::format::context::Input, stream: usize) -> (Vec<(i64, bool)>, i32) {
    let Some(st) = input.stream(stream) else {
        return (Vec::new(), 0);
    };
    // SAFETY: `st` is a stream of the open context `input`, which outlives
    // this call; the entries returned are read before anything else touches
    // the context, as the API requires.
    unsafe {
        let st = st.as_ptr() as *mut ffi::AVStream;
        let delay = (*(*st).codecpar).video_delay;
        let count = ffi::avformat_index_get_entries_count(st);
        let mut entries = Vec::with_capacity(count.max(0) as usize);
        for i in 0..count {
            let e = ffi::avformat_index_get_entry(st, i);
            if e.is_null() || (*e).flags() & ffi::AVINDEX_DISCARD_FRAME != 0 {
                continue;
            }
            entries.push(((*e).timestamp, (*e).flags() & ffi::AVINDEX_KEYFRAME != 0));
        }
        (entries, delay)
    }
}

#[cfg(test)]
mod tests {
    use super::without_address;

    #[test]
    fn log_lines_lose_the_context_address_only() {
        assert_eq!(without_address("[h264 @ 0x55d0c0a1] no frame!"), "[h264] no frame!");
        assert_eq!(
            without_address("[mov,mp4 @ 0x1] moov atom not found"),
            "[mov,mp4] moov atom not found"
        );
        for kept in ["no prefix @ 0x1] here", "[h264] no address", "[a] b @ 0x1] c"] {
            assert_eq!(without_address(kept), kept);
        }
    }
}

//! The libtiff edge: a TIFF in memory read through libtiff's RGBA
//! interface (`TIFFRGBAImage`), the reader Pillow uses for the TIFF
//! variants the pure-Rust `tiff` crate does not decode or decodes
//! differently: YCbCr (JPEG-compressed or subsampled), old-style JPEG,
//! CIELab, 1/2/4-bit gray, palette with extra samples, tiled planar
//! layouts, IFD chains with cycles.
//!
//! Hand-written bindings (a dozen functions of libtiff 4.5, Debian 12's):
//! no maintained Rust crate wraps libtiff. Each handle gets its own error
//! and warning handlers (nothing is printed; the first error becomes the
//! returned message) and a cap on libtiff's single allocations. The
//! caller checks the declared size against its limits between
//! [`TiffReader::open`] and [`TiffReader::read_rgba`], which allocates the
//! raster.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr::NonNull;

#[allow(non_camel_case_types)]
type tmsize_t = isize;
type Handler = unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char, *const c_char, *mut c_void) -> c_int;

#[repr(C)]
struct Tiff {
    _opaque: [u8; 0],
}

#[repr(C)]
struct OpenOptions {
    _opaque: [u8; 0],
}

#[link(name = "tiff")]
extern "C" {
    fn TIFFOpenOptionsAlloc() -> *mut OpenOptions;
    fn TIFFOpenOptionsFree(opts: *mut OpenOptions);
    fn TIFFOpenOptionsSetMaxSingleMemAlloc(opts: *mut OpenOptions, max: tmsize_t);
    fn TIFFOpenOptionsSetErrorHandlerExtR(opts: *mut OpenOptions, handler: Handler, data: *mut c_void);
    fn TIFFOpenOptionsSetWarningHandlerExtR(opts: *mut OpenOptions, handler: Handler, data: *mut c_void);
    #[allow(clippy::too_many_arguments)]
    fn TIFFClientOpenExt(
        name: *const c_char,
        mode: *const c_char,
        client: *mut c_void,
        read: unsafe extern "C" fn(*mut c_void, *mut c_void, tmsize_t) -> tmsize_t,
        write: unsafe extern "C" fn(*mut c_void, *mut c_void, tmsize_t) -> tmsize_t,
        seek: unsafe extern "C" fn(*mut c_void, u64, c_int) -> u64,
        close: unsafe extern "C" fn(*mut c_void) -> c_int,
        size: unsafe extern "C" fn(*mut c_void) -> u64,
        map: unsafe extern "C" fn(*mut c_void, *mut *mut c_void, *mut u64) -> c_int,
        unmap: unsafe extern "C" fn(*mut c_void, *mut c_void, u64),
        opts: *mut OpenOptions,
    ) -> *mut Tiff;
    fn TIFFClose(tif: *mut Tiff);
    fn TIFFGetField(tif: *mut Tiff, tag: u32, ...) -> c_int;
    fn TIFFRGBAImageOK(tif: *mut Tiff, emsg: *mut c_char) -> c_int;
    fn TIFFReadRGBAImageOriented(
        tif: *mut Tiff,
        width: u32,
        height: u32,
        raster: *mut u32,
        orientation: c_int,
        stop_on_error: c_int,
    ) -> c_int;
}

extern "C" {
    /// C's `vsnprintf`; `va_list` is passed as the pointer it decays to
    /// (x86-64) or by reference (AArch64's 32-byte struct).
    fn vsnprintf(buf: *mut c_char, len: usize, fmt: *const c_char, args: *mut c_void) -> c_int;
}

const TAG_WIDTH: u32 = 256;
const TAG_HEIGHT: u32 = 257;
const TAG_ORIENTATION: u32 = 274;

/// The bytes libtiff reads, with its read position and the first error it
/// reported.
struct Client<'a> {
    data: &'a [u8],
    pos: u64,
    error: Option<String>,
}

/// An open TIFF over bytes in memory (its first image).
pub(crate) struct TiffReader<'a> {
    tif: NonNull<Tiff>,
    client: Box<Client<'a>>,
    /// Width, height and the orientation tag (1 when absent).
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) orientation: u16,
}

impl<'a> TiffReader<'a> {
    /// Opens `data` and reads its first directory; `max_alloc` caps each of
    /// libtiff's own allocations (strip and tile buffers, tables).
    pub(crate) fn open(data: &'a [u8], max_alloc: usize) -> Result<Self, String> {
        let mut client = Box::new(Client {
            data,
            pos: 0,
            error: None,
        });
        let client_ptr: *mut Client<'a> = &mut *client;
        // SAFETY: the options are allocated, configured and freed here;
        // libtiff copies them into the handle. `client_ptr` points into a
        // box that the returned reader owns and that outlives the handle
        // (TIFFClose runs in Drop before the box is freed); the callbacks
        // only touch the `Client` through it.
        let tif = unsafe {
            let opts = TIFFOpenOptionsAlloc();
            if opts.is_null() {
                return Err("libtiff could not allocate its options".into());
            }
            TIFFOpenOptionsSetMaxSingleMemAlloc(opts, max_alloc.min(isize::MAX as usize) as tmsize_t);
            TIFFOpenOptionsSetErrorHandlerExtR(opts, on_error, client_ptr.cast());
            TIFFOpenOptionsSetWarningHandlerExtR(opts, on_warning, client_ptr.cast());
            let tif = TIFFClientOpenExt(
                c"memory".as_ptr(),
                c"r".as_ptr(),
                client_ptr.cast(),
                read,
                write,
                seek,
                close,
                size,
                map,
                unmap,
                opts,
            );
            TIFFOpenOptionsFree(opts);
            tif
        };
        let Some(tif) = NonNull::new(tif) else {
            return Err(client.error.take().unwrap_or_else(|| "libtiff cannot open it".into()));
        };
        let mut reader = TiffReader {
            tif,
            client,
            width: 0,
            height: 0,
            orientation: 1,
        };
        let (width, height) = (reader.field_u32(TAG_WIDTH), reader.field_u32(TAG_HEIGHT));
        let (Some(width), Some(height)) = (width, height) else {
            return Err(reader.error("no image width or height"));
        };
        (reader.width, reader.height) = (width, height);
        reader.orientation = reader
            .field_u16(TAG_ORIENTATION)
            .filter(|o| (1..=8).contains(o))
            .unwrap_or(1);
        reader.check_rgba()?;
        Ok(reader)
    }

    fn field_u32(&mut self, tag: u32) -> Option<u32> {
        let mut v: u32 = 0;
        // SAFETY: width and height are uint32 fields; libtiff writes one
        // u32 through the pointer when it returns 1.
        (unsafe { TIFFGetField(self.tif.as_ptr(), tag, &mut v as *mut u32) } == 1).then_some(v)
    }

    fn field_u16(&mut self, tag: u32) -> Option<u16> {
        let mut v: u16 = 0;
        // SAFETY: orientation is a uint16 field; libtiff writes one u16
        // through the pointer when it returns 1.
        (unsafe { TIFFGetField(self.tif.as_ptr(), tag, &mut v as *mut u16) } == 1).then_some(v)
    }

    /// Whether libtiff's RGBA interface can convert this image.
    fn check_rgba(&mut self) -> Result<(), String> {
        let mut msg = [0 as c_char; 1024];
        // SAFETY: libtiff writes a NUL-terminated message of at most 1024
        // bytes into `msg` when it returns 0.
        if unsafe { TIFFRGBAImageOK(self.tif.as_ptr(), msg.as_mut_ptr()) } == 1 {
            return Ok(());
        }
        // SAFETY: as above, `msg` holds a NUL-terminated string.
        let reason = unsafe { CStr::from_ptr(msg.as_ptr()) }.to_string_lossy().into_owned();
        Err(reason)
    }

    /// Decodes the image into `raster` (`width * height` pixels, rows top
    /// to bottom as stored: the orientation tag is not applied), one
    /// `u32` per pixel with R in its low byte, then G, B and A.
    pub(crate) fn read_rgba(&mut self, raster: &mut [u32]) -> Result<(), String> {
        let need = self.width as usize * self.height as usize;
        if raster.len() != need {
            return Err(format!("raster of {} pixels for a {need}-pixel image", raster.len()));
        }
        // SAFETY: `raster` holds width * height u32s, which is what
        // TIFFReadRGBAImageOriented writes. Asking for the file's own
        // orientation makes libtiff flip nothing.
        let ok = unsafe {
            TIFFReadRGBAImageOriented(
                self.tif.as_ptr(),
                self.width,
                self.height,
                raster.as_mut_ptr(),
                c_int::from(self.orientation),
                1,
            )
        };
        match ok {
            1 => Ok(()),
            _ => Err(self.error("libtiff could not decode it")),
        }
    }

    fn error(&mut self, fallback: &str) -> String {
        self.client.error.take().unwrap_or_else(|| fallback.to_string())
    }
}

impl Drop for TiffReader<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle was opened by TIFFClientOpenExt and is closed
        // once; its client box is still alive (fields drop after this).
        unsafe { TIFFClose(self.tif.as_ptr()) }
    }
}

/// Formats libtiff's message; the first error is kept.
unsafe extern "C" fn on_error(
    _tif: *mut c_void,
    client: *mut c_void,
    module: *const c_char,
    fmt: *const c_char,
    args: *mut c_void,
) -> c_int {
    let mut buf = [0 as c_char; 512];
    // SAFETY: libtiff passes a printf format with its arguments; vsnprintf
    // writes at most `buf.len()` bytes, NUL-terminated.
    unsafe { vsnprintf(buf.as_mut_ptr(), buf.len(), fmt, args) };
    // SAFETY: `client` is the `Client` registered in `open`, alive while
    // the handle is; `buf` is NUL-terminated; `module` is a C string or null.
    let (client, text, module) = unsafe {
        let module = (!module.is_null()).then(|| CStr::from_ptr(module).to_string_lossy().into_owned());
        (
            &mut *client.cast::<Client>(),
            CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned(),
            module,
        )
    };
    if client.error.is_none() {
        client.error = Some(match module {
            Some(m) => format!("libtiff ({m}): {text}"),
            None => format!("libtiff: {text}"),
        });
    }
    1
}

/// Warnings are not printed (libtiff reads past what it warns about, as
/// Pillow does).
unsafe extern "C" fn on_warning(
    _tif: *mut c_void,
    _client: *mut c_void,
    _module: *const c_char,
    _fmt: *const c_char,
    _args: *mut c_void,
) -> c_int {
    1
}

unsafe extern "C" fn read(client: *mut c_void, buf: *mut c_void, len: tmsize_t) -> tmsize_t {
    // SAFETY: `client` is the registered `Client`; libtiff gives a buffer
    // of `len` writable bytes.
    let c = unsafe { &mut *client.cast::<Client>() };
    let start = usize::try_from(c.pos).unwrap_or(usize::MAX).min(c.data.len());
    let n = usize::try_from(len).unwrap_or(0).min(c.data.len() - start);
    // SAFETY: `n` bytes fit in both the source tail and libtiff's buffer.
    unsafe { std::ptr::copy_nonoverlapping(c.data.as_ptr().add(start), buf.cast::<u8>(), n) };
    c.pos = (start + n) as u64;
    n as tmsize_t
}

unsafe extern "C" fn write(_client: *mut c_void, _buf: *mut c_void, _len: tmsize_t) -> tmsize_t {
    -1
}

unsafe extern "C" fn seek(client: *mut c_void, offset: u64, whence: c_int) -> u64 {
    // SAFETY: `client` is the registered `Client`.
    let c = unsafe { &mut *client.cast::<Client>() };
    let base = match whence {
        libc::SEEK_SET => 0,
        libc::SEEK_CUR => c.pos,
        libc::SEEK_END => c.data.len() as u64,
        _ => return u64::MAX,
    };
    // libtiff passes negative relative offsets as two's complement.
    c.pos = base.wrapping_add(offset);
    c.pos
}

unsafe extern "C" fn close(_client: *mut c_void) -> c_int {
    0
}

unsafe extern "C" fn size(client: *mut c_void) -> u64 {
    // SAFETY: `client` is the registered `Client`.
    unsafe { (&*client.cast::<Client>()).data.len() as u64 }
}

/// The bytes as libtiff's "mapped file": it reads strips and tiles in
/// place (and, as for a real mapping, is lenient about byte counts larger
/// than a strip needs, as Pillow's reading of files is). libtiff opened
/// read-only never writes through a mapping (its own file mappings are
/// read-only pages).
unsafe extern "C" fn map(client: *mut c_void, base: *mut *mut c_void, len: *mut u64) -> c_int {
    // SAFETY: `client` is the registered `Client`; `base` and `len` are
    // libtiff's out-parameters.
    unsafe {
        let data = (&*client.cast::<Client>()).data;
        *base = data.as_ptr().cast_mut().cast();
        *len = data.len() as u64;
    }
    1
}

unsafe extern "C" fn unmap(_client: *mut c_void, _base: *mut c_void, _len: u64) {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2x2 8-bit gray TIFF, uncompressed, with orientation `o`.
    fn gray_tiff(o: u16) -> Vec<u8> {
        let mut t = b"II*\0\x08\0\0\0".to_vec();
        let entries: [(u16, u16, u32); 9] = [
            (256, 3, 2),
            (257, 3, 2),
            (258, 3, 8),
            (259, 3, 1),
            (262, 3, 1),
            (273, 4, 8 + 2 + 9 * 12 + 4),
            (274, 3, u32::from(o)),
            (278, 3, 2),
            (279, 4, 4),
        ];
        t.extend(9u16.to_le_bytes());
        for (tag, ty, v) in entries {
            t.extend(tag.to_le_bytes());
            t.extend(ty.to_le_bytes());
            t.extend(1u32.to_le_bytes());
            t.extend(v.to_le_bytes());
        }
        t.extend(0u32.to_le_bytes());
        t.extend([10, 20, 30, 40]);
        t
    }

    #[test]
    fn reads_gray_as_stored_with_its_orientation() {
        let data = gray_tiff(3);
        let mut r = TiffReader::open(&data, 1 << 20).unwrap();
        assert_eq!((r.width, r.height, r.orientation), (2, 2, 3));
        let mut raster = vec![0u32; 4];
        r.read_rgba(&mut raster).unwrap();
        let gray: Vec<u8> = raster.iter().map(|p| (p & 0xff) as u8).collect();
        assert_eq!(gray, [10, 20, 30, 40]);
        assert!(raster.iter().all(|p| p >> 24 == 255));
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        assert!(TiffReader::open(b"II*\0\xff\xff\xff\xff", 1 << 20).is_err());
        let data = gray_tiff(1);
        let cut = &data[..data.len() - 3];
        let res = TiffReader::open(cut, 1 << 20).and_then(|mut r| r.read_rgba(&mut [0; 4]));
        let err = res.unwrap_err();
        assert!(err.contains("libtiff"), "{err}");
    }
}

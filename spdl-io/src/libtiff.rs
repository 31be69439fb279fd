//! The libtiff edge: a TIFF in memory read through libtiff's RGBA
//! interface (`TIFFRGBAImage`), the reader Pillow uses for the TIFF
//! variants the pure-Rust `tiff` crate does not decode or decodes
//! differently: YCbCr (JPEG-compressed or subsampled), old-style JPEG,
//! CIELab, 1/2/4-bit gray, palette with extra samples, IFD chains with
//! cycles; and its strip and tile reader for 8- and 16-bit samples as
//! stored (tiled layouts with separate planes, on which the `tiff` crate
//! panics).
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
    fn TIFFGetFieldDefaulted(tif: *mut Tiff, tag: u32, ...) -> c_int;
    fn TIFFRGBAImageOK(tif: *mut Tiff, emsg: *mut c_char) -> c_int;
    fn TIFFIsTiled(tif: *mut Tiff) -> c_int;
    fn TIFFTileSize(tif: *mut Tiff) -> tmsize_t;
    fn TIFFStripSize(tif: *mut Tiff) -> tmsize_t;
    fn TIFFComputeTile(tif: *mut Tiff, x: u32, y: u32, z: u32, sample: u16) -> u32;
    fn TIFFComputeStrip(tif: *mut Tiff, row: u32, sample: u16) -> u32;
    fn TIFFReadEncodedTile(tif: *mut Tiff, tile: u32, buf: *mut c_void, size: tmsize_t) -> tmsize_t;
    fn TIFFReadEncodedStrip(tif: *mut Tiff, strip: u32, buf: *mut c_void, size: tmsize_t) -> tmsize_t;
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
const TAG_BITS_PER_SAMPLE: u32 = 258;
const TAG_SAMPLES_PER_PIXEL: u32 = 277;
const TAG_ROWS_PER_STRIP: u32 = 278;
const TAG_PLANAR_CONFIG: u32 = 284;
const TAG_TILE_WIDTH: u32 = 322;
const TAG_TILE_LENGTH: u32 = 323;

/// How the first image's samples are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SampleLayout {
    pub(crate) samples_per_pixel: u16,
    pub(crate) bits_per_sample: u16,
    /// Each sample in a plane of its own (PlanarConfiguration 2).
    pub(crate) separate_planes: bool,
}

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
    max_alloc: usize,
    /// Width, height and the orientation tag (1 when absent).
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) orientation: u16,
}

impl<'a> TiffReader<'a> {
    /// Opens `data` and reads its first directory; `max_alloc` caps each of
    /// libtiff's own allocations (strip and tile buffers, tables). Its
    /// samples can then be read with [`TiffReader::read_samples`].
    pub(crate) fn open_for_samples(data: &'a [u8], max_alloc: usize) -> Result<Self, String> {
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
            max_alloc,
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
        Ok(reader)
    }

    /// [`TiffReader::open_for_samples`], once libtiff's RGBA reader says it
    /// can read the image.
    pub(crate) fn open(data: &'a [u8], max_alloc: usize) -> Result<Self, String> {
        let mut reader = Self::open_for_samples(data, max_alloc)?;
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

    fn defaulted_u16(&mut self, tag: u32) -> u16 {
        let mut v: u16 = 0;
        // SAFETY: the tags asked for (bits and samples per pixel, planar
        // configuration) are uint16 fields with defaults; libtiff writes
        // one u16 through the pointer.
        unsafe { TIFFGetFieldDefaulted(self.tif.as_ptr(), tag, &mut v as *mut u16) };
        v
    }

    /// How the samples are stored.
    pub(crate) fn sample_layout(&mut self) -> SampleLayout {
        SampleLayout {
            samples_per_pixel: self.defaulted_u16(TAG_SAMPLES_PER_PIXEL),
            bits_per_sample: self.defaulted_u16(TAG_BITS_PER_SAMPLE),
            separate_planes: self.defaulted_u16(TAG_PLANAR_CONFIG) == 2,
        }
    }

    /// The decoded samples of an image of 8-, 16-, 32- or 64-bit samples, pixel
    /// after pixel (planes interleaved), rows top to bottom as stored, in
    /// native byte order, into `out` (`width * height * samples * bytes`),
    /// strip by strip or tile by tile. Reads what the `tiff` crate panics
    /// on (tiled separate planes) with each sample as stored, where the
    /// RGBA interface would round 16 bits to 8.
    pub(crate) fn read_samples(&mut self, out: &mut [u8]) -> Result<(), String> {
        let layout = self.sample_layout();
        let bytes = match layout.bits_per_sample {
            b @ (8 | 16 | 32 | 64) => usize::from(b / 8),
            b => return Err(format!("{b}-bit samples are not read raw")),
        };
        let (w, h, spp) = (
            self.width as usize,
            self.height as usize,
            usize::from(layout.samples_per_pixel),
        );
        if out.len() != w * h * spp * bytes {
            return Err(format!("buffer of {} bytes for {w}x{h}x{spp} samples", out.len()));
        }
        let (planes, chunk_pixel) = match layout.separate_planes {
            true => (spp, bytes),
            false => (1, spp * bytes),
        };
        // SAFETY: plain queries of the open handle.
        let tiled = unsafe { TIFFIsTiled(self.tif.as_ptr()) } != 0;
        let (cw, ch) = match tiled {
            true => (self.field_u32(TAG_TILE_WIDTH), self.field_u32(TAG_TILE_LENGTH)),
            false => (
                Some(self.width),
                Some(self.defaulted_u32(TAG_ROWS_PER_STRIP).min(self.height)),
            ),
        };
        let (Some(cw), Some(ch)) = (cw, ch) else {
            return Err("no tile size".into());
        };
        let (cw, ch) = (cw as usize, ch as usize);
        // SAFETY: as above.
        let size = unsafe {
            if tiled {
                TIFFTileSize(self.tif.as_ptr())
            } else {
                TIFFStripSize(self.tif.as_ptr())
            }
        };
        let size = usize::try_from(size).map_err(|_| self.error("no strip or tile size"))?;
        if cw == 0 || ch == 0 || size < cw * ch * chunk_pixel || size > self.max_alloc {
            return Err(format!(
                "a {cw}x{ch} chunk of {size} bytes does not fit the image's samples"
            ));
        }
        let mut buf: Vec<u8> = crate::memory::zeroed(size).map_err(|n| format!("cannot allocate {n} bytes"))?;
        for plane in 0..planes {
            for y0 in (0..h).step_by(ch) {
                for x0 in (0..w).step_by(cw) {
                    self.read_chunk(tiled, (x0, y0, plane), &mut buf)?;
                    let (rows, cols) = (ch.min(h - y0), cw.min(w - x0));
                    for r in 0..rows {
                        let src = &buf[r * cw * chunk_pixel..][..cols * chunk_pixel];
                        let dst = &mut out[((y0 + r) * w + x0) * spp * bytes..][..cols * spp * bytes];
                        match layout.separate_planes {
                            false => dst.copy_from_slice(src),
                            true => {
                                for (d, s) in dst.chunks_exact_mut(spp * bytes).zip(src.chunks_exact(bytes)) {
                                    d[plane * bytes..(plane + 1) * bytes].copy_from_slice(s);
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Decodes the strip or tile holding pixel (x, y) of `plane` into
    /// `buf` (the chunk size), zeros past what it holds.
    fn read_chunk(&mut self, tiled: bool, (x, y, plane): (usize, usize, usize), buf: &mut [u8]) -> Result<(), String> {
        let (t, size, plane) = (self.tif.as_ptr(), buf.len() as tmsize_t, plane as u16);
        buf.fill(0);
        // SAFETY: `buf` holds `size` bytes, the most libtiff writes for one
        // strip or tile (TIFFStripSize / TIFFTileSize); the index comes
        // from libtiff's own computation for a pixel inside the image.
        let n = unsafe {
            match tiled {
                true => TIFFReadEncodedTile(
                    t,
                    TIFFComputeTile(t, x as u32, y as u32, 0, plane),
                    buf.as_mut_ptr().cast(),
                    size,
                ),
                false => TIFFReadEncodedStrip(t, TIFFComputeStrip(t, y as u32, plane), buf.as_mut_ptr().cast(), size),
            }
        };
        match n {
            n if n < 0 => Err(self.error("libtiff could not decode a strip or tile")),
            _ => Ok(()),
        }
    }

    fn defaulted_u32(&mut self, tag: u32) -> u32 {
        let mut v: u32 = 0;
        // SAFETY: rows per strip is a uint32 field with a default; libtiff
        // writes one u32 through the pointer.
        unsafe { TIFFGetFieldDefaulted(self.tif.as_ptr(), tag, &mut v as *mut u32) };
        v
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

    #[test]
    fn reads_raw_samples_as_stored() {
        let data = gray_tiff(1);
        let mut r = TiffReader::open(&data, 1 << 20).unwrap();
        let layout = r.sample_layout();
        assert_eq!(
            (layout.samples_per_pixel, layout.bits_per_sample, layout.separate_planes),
            (1, 8, false)
        );
        let mut out = [0u8; 4];
        r.read_samples(&mut out).unwrap();
        assert_eq!(out, [10, 20, 30, 40]);
        assert!(r.read_samples(&mut [0u8; 3]).is_err());
    }
}

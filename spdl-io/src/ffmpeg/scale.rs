//! swscale: pixel-format conversion, colour matrix and range, and
//! resizing of decoded frames, written straight into caller memory
//! (no intermediate frame); and cropping a frame in place.

use std::os::raw::c_int;
use std::ptr;
use std::sync::Mutex;

use ff::ffi;
use ffmpeg_next as ff;

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

/// A frame-to-frame swscale conversion (RGB frames into an encoder's pixel
/// format, for writing video), movable between threads.
pub(crate) struct FrameScaler(ff::software::scaling::Context);

// SAFETY: a SwsContext has no thread affinity; `FrameScaler` owns it
// exclusively and is not `Sync`, so it is used from one thread at a time.
unsafe impl Send for FrameScaler {}

impl FrameScaler {
    /// Converts `from` frames of `width` x `height` to `to` (bilinear).
    pub(crate) fn new(
        from: ff::format::Pixel,
        to: ff::format::Pixel,
        width: u32,
        height: u32,
    ) -> Result<Self, ff::Error> {
        let flags = ff::software::scaling::Flags::BILINEAR;
        ff::software::scaling::Context::get(from, width, height, to, width, height, flags).map(FrameScaler)
    }

    /// Converts `input` into `output` (allocated on first use).
    pub(crate) fn run(&mut self, input: &ff::frame::Video, output: &mut ff::frame::Video) -> Result<(), ff::Error> {
        self.0.run(input, output)
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
        let mut scaler = Self::context(key)?;
        scaler.pads_rows = scaler.pads_rows && !writes_exact_rows(&key);
        Ok(scaler)
    }

    /// The context alone, padding rows wherever [`converts_in_blocks`]
    /// says it may be needed.
    fn context(key: ScalerKey) -> std::result::Result<Self, String> {
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

/// Whether a conversion that [`converts_in_blocks`] writes every row of
/// a tightly packed output exactly as into padded rows, storing nothing
/// past the last row: then it writes straight into the output (padded
/// rows cost a copy of every frame, 3-4% of a 720p decode). Probed once
/// per width and formats, on a frame of a few rows with the same flags
/// and colour details (the converters work row by row, so the height
/// only matters for its parity). Measured on FFmpeg 5.1 (x86): widths
/// divisible by 16 are exact; by 8, 8 pixels are stored past the last
/// row; other widths leave the last `width % 8` pixels black.
fn writes_exact_rows(key: &ScalerKey) -> bool {
    static PROBED: Mutex<Vec<(ScalerKey, bool)>> = Mutex::new(Vec::new());
    let rows = 4 + (key.src_h & 1);
    let key = ScalerKey {
        src_h: rows,
        dst_h: rows,
        ..*key
    };
    let known = PROBED
        .lock()
        .ok()
        .and_then(|p| p.iter().find(|(k, _)| *k == key).map(|(_, exact)| *exact));
    known.unwrap_or_else(|| {
        let exact = probe_rows(key).unwrap_or(false);
        if let Ok(mut probed) = PROBED.lock() {
            probed.push((key, exact));
        }
        exact
    })
}

/// Converts a patterned frame of `key` into padded rows and into tight
/// rows followed by guard bytes (filled two ways, so that any store past
/// the rows shows); `None` when the conversion fails.
fn probe_rows(key: ScalerKey) -> Option<bool> {
    let frame = patterned_frame(&key);
    let mut scaler = Scaler::context(key).ok()?;
    let stride = plane_row_bytes(key.dst_fmt, key.dst_w, 0)?;
    let layout = [PlaneLayout {
        offset: 0,
        stride,
        rows: key.dst_h as usize,
    }];
    let len = stride * layout[0].rows;
    // bounded: a few rows of a width swscale accepted.
    let mut padded = vec![0u8; len];
    scaler.run(&frame, &mut padded, &layout).ok()?;
    // Far more than one block of pixels (at most 64 of 8 bytes) past the rows.
    let guard = stride.max(4096);
    for fill in [0x5a, 0xa5] {
        // bounded: as above.
        let mut tight = vec![fill; len + guard];
        scaler.scale(&frame, &mut tight, &layout).ok()?;
        if tight[..len] != padded[..] || tight[len..].iter().any(|&b| b != fill) {
            return Some(false);
        }
    }
    Some(true)
}

/// A source frame of `key`'s format and size whose bytes vary along each
/// plane (no two neighbouring pixels alike).
fn patterned_frame(key: &ScalerKey) -> ff::frame::Video {
    let mut frame = ff::frame::Video::new(key.src_fmt, key.src_w, key.src_h);
    for plane in 0..frame.planes() {
        for (i, b) in frame.data_mut(plane).iter_mut().enumerate() {
            *b = (i % 251) as u8 + 3;
        }
    }
    frame
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

/// Bytes in one row of plane `plane` of a `width`-pixel image in `fmt`,
/// without padding; `None` for formats FFmpeg cannot describe that way.
pub(crate) fn plane_row_bytes(fmt: ff::format::Pixel, width: u32, plane: usize) -> Option<usize> {
    // SAFETY: av_image_get_linesize only reads the format descriptor table.
    let n = unsafe { ffi::av_image_get_linesize(fmt.into(), width as c_int, plane as c_int) };
    (n > 0).then_some(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(width: u32) -> ScalerKey {
        ScalerKey {
            src_w: width,
            src_h: 240,
            src_fmt: ff::format::Pixel::YUV420P,
            colorspace: ff::color::Space::BT709,
            full_range: false,
            dst_w: width,
            dst_h: 240,
            dst_fmt: ff::format::Pixel::RGB24,
            flags: ffi::SWS_BILINEAR as c_int,
        }
    }

    /// Whatever the probe decides, the output equals the padded
    /// conversion and nothing is stored past the frame, for widths that
    /// swscale's block converters handle exactly (320), with a store past
    /// the last row (328) and with black pixels (426).
    #[test]
    fn frames_convert_as_into_padded_rows() {
        for width in [320, 328, 426] {
            let k = key(width);
            let frame = patterned_frame(&k);
            let stride = plane_row_bytes(k.dst_fmt, width, 0).unwrap();
            let layout = [PlaneLayout {
                offset: 0,
                stride,
                rows: 240,
            }];
            let len = stride * 240;
            let mut padded = vec![0u8; len];
            Scaler::context(k).unwrap().run(&frame, &mut padded, &layout).unwrap();
            let mut out = vec![0x77u8; len + 4096];
            let mut scaler = Scaler::new(k).unwrap();
            scaler.run(&frame, &mut out, &layout).unwrap();
            assert!(out[..len] == padded[..], "width {width}: rows differ");
            assert!(
                out[len..].iter().all(|&b| b == 0x77),
                "width {width}: stored past the frame"
            );
            if cfg!(target_arch = "x86_64") && width == 320 {
                assert!(!scaler.pads_rows, "width 320 should convert straight into the output");
            }
        }
    }
}

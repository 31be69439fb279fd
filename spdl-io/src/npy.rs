//! NumPy arrays: `.npy` files and `.npz` archives (stored or deflated
//! members), as datasets keep features and labels beside their media,
//! often inside tar shards. Every numeric dtype NumPy writes and `bool`,
//! either byte order (big-endian data is swapped to native order on load),
//! C or Fortran order. Object arrays (which NumPy stores as pickles) are
//! refused: nothing is ever unpickled. Also the `.npy` writer the CLI uses.
//!
//! Hand-rolled rather than `ndarray-npy`: that crate picks the element
//! type at compile time and sizes its buffer from the header's shape,
//! while a loader must learn the dtype from the file, check the shape
//! against the bytes present and [`Limits`] before anything is allocated,
//! and hand the data on without a copy (a little-endian array is a slice
//! of the file's bytes).

use std::io::{Read, Write};

use bytes::Bytes;
use ndarray::{ArrayD, ArrayView, Dimension, IxDyn, ShapeBuilder};

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::source::Source;

/// The longest `.npy` header read (NumPy itself refuses more than 10,000
/// bytes by default).
const MAX_HEADER_BYTES: usize = 1 << 16;

/// An element type NumPy stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dtype {
    /// `bool` (one byte, 0 or 1).
    Bool,
    /// `int8`.
    I8,
    /// `int16`.
    I16,
    /// `int32`.
    I32,
    /// `int64`.
    I64,
    /// `uint8`.
    U8,
    /// `uint16`.
    U16,
    /// `uint32`.
    U32,
    /// `uint64`.
    U64,
    /// `float16`.
    F16,
    /// `float32`.
    F32,
    /// `float64`.
    F64,
    /// `complex64` (two `float32`).
    C64,
    /// `complex128` (two `float64`).
    C128,
}

impl Dtype {
    const ALL: [(Dtype, char, usize); 14] = [
        (Dtype::Bool, 'b', 1),
        (Dtype::I8, 'i', 1),
        (Dtype::I16, 'i', 2),
        (Dtype::I32, 'i', 4),
        (Dtype::I64, 'i', 8),
        (Dtype::U8, 'u', 1),
        (Dtype::U16, 'u', 2),
        (Dtype::U32, 'u', 4),
        (Dtype::U64, 'u', 8),
        (Dtype::F16, 'f', 2),
        (Dtype::F32, 'f', 4),
        (Dtype::F64, 'f', 8),
        (Dtype::C64, 'c', 8),
        (Dtype::C128, 'c', 16),
    ];

    /// Bytes per element.
    pub fn size(self) -> usize {
        Self::ALL.iter().find(|d| d.0 == self).map_or(1, |d| d.2)
    }

    /// NumPy's little-endian type string (`"<f4"`, `"|u1"`, `"|b1"`).
    pub fn descr(self) -> String {
        let (_, kind, size) = Self::ALL
            .iter()
            .find(|d| d.0 == self)
            .copied()
            .unwrap_or((self, 'u', 1));
        let order = if size == 1 { '|' } else { '<' };
        format!("{order}{kind}{size}")
    }

    /// The dtype of a type string and whether its data is big-endian.
    fn parse(descr: &str) -> std::result::Result<(Dtype, bool), String> {
        let mut chars = descr.chars();
        let order = chars.next().ok_or("an empty dtype")?;
        let kind = chars.next().ok_or("a dtype without a kind")?;
        if kind == 'O' {
            return Err("an object array (NumPy pickles those; they are never unpickled here)".into());
        }
        let size: usize = chars.as_str().parse().map_err(|_| format!("dtype {descr:?}"))?;
        let found = Self::ALL.iter().find(|d| d.1 == kind && d.2 == size);
        match (found, order) {
            (Some(d), '<' | '|' | '=') => Ok((d.0, false)),
            (Some(d), '>') => Ok((d.0, d.2 > 1)),
            _ => Err(format!("dtype {descr:?} (numbers and bool are supported)")),
        }
    }
}

/// A NumPy array as loaded: its dtype, shape, memory order and data in
/// native (little-endian) byte order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NpyArray {
    /// The element type.
    pub dtype: Dtype,
    /// The shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// The buffer the elements lie in (the whole file as read, unless the
    /// data had to be byte-swapped) and where in it.
    buffer: Bytes,
    range: std::ops::Range<usize>,
}

/// An element type an [`NpyArray`] converts into with
/// [`NpyArray::to_array`].
pub trait NpyElement: Copy + Default {
    /// The matching dtype.
    const DTYPE: Dtype;
    /// The value from its little-endian bytes.
    fn from_le(bytes: &[u8]) -> Self;
    /// Appends the value's little-endian bytes.
    fn put_le(self, out: &mut Vec<u8>);
    /// Appends the little-endian bytes of `values`, in order.
    fn put_all_le(values: &[Self], out: &mut Vec<u8>) {
        for v in values {
            v.put_le(out);
        }
    }
}

macro_rules! npy_element {
    ($($t:ty => $d:ident),*) => {$(
        impl NpyElement for $t {
            const DTYPE: Dtype = Dtype::$d;
            fn from_le(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().unwrap_or_default())
            }
            fn put_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn put_all_le(values: &[Self], out: &mut Vec<u8>) {
                out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
            }
        }
    )*};
}
npy_element!(i8 => I8, i16 => I16, i32 => I32, i64 => I64, u8 => U8, u16 => U16, u32 => U32, u64 => U64, f32 => F32, f64 => F64);

impl NpyElement for bool {
    const DTYPE: Dtype = Dtype::Bool;
    fn from_le(bytes: &[u8]) -> Self {
        bytes[0] != 0
    }
    fn put_le(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
}

impl NpyArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    /// Whether the array has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The elements, little-endian: `len() * dtype.size()` bytes.
    pub fn data(&self) -> &[u8] {
        &self.buffer[self.range.clone()]
    }
    /// The buffer the elements lie in and their byte range in it, for a
    /// hand-off without a copy (the buffer is the file as read).
    pub fn into_buffer(self) -> (Bytes, std::ops::Range<usize>) {
        (self.buffer, self.range)
    }

    /// The array as an `ndarray` of `T`, in its own memory order.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `T` is not the array's dtype.
    pub fn to_array<T: NpyElement>(&self) -> Result<ArrayD<T>> {
        if T::DTYPE != self.dtype {
            return Err(Error::InvalidConfig(format!(
                "the array holds {:?}, not {:?}",
                self.dtype,
                T::DTYPE
            )));
        }
        let values: Vec<T> = self.data().chunks_exact(self.dtype.size()).map(T::from_le).collect();
        let shape = IxDyn(&self.shape);
        let array = match self.fortran_order {
            true => ArrayD::from_shape_vec(shape.f(), values),
            false => ArrayD::from_shape_vec(shape, values),
        };
        array.map_err(|e| Error::InvalidConfig(e.to_string()))
    }
}

/// Loads a `.npy` file from a path, URL or bytes.
///
/// ```no_run
/// let labels = spdl_io::npy::load_npy("labels.npy")?;
/// let labels = labels.to_array::<i64>()?;
/// # Ok::<(), spdl_io::Error>(())
/// ```
///
/// # Errors
/// [`Error::Array`] naming the source for a file that is not a `.npy`, a
/// truncated one, an object array or an unsupported dtype;
/// [`Error::Limit`] when the data is over [`Limits::max_output_bytes`].
pub fn load_npy(src: impl Into<Source>) -> Result<NpyArray> {
    load_npy_with_limits(src, &Limits::default())
}

/// [`load_npy`] with the given limits.
///
/// # Errors
/// As [`load_npy`].
pub fn load_npy_with_limits(src: impl Into<Source>, limits: &Limits) -> Result<NpyArray> {
    let src = src.into();
    parse_npy(src.read_all(limits)?, &src.name(), limits)
}

/// Parses `.npy` bytes (a tar-shard member, a download); `name` is used in
/// errors. The data is a slice of `data`, not a copy, unless it has to be
/// byte-swapped.
///
/// # Errors
/// As [`load_npy`].
pub fn parse_npy(data: Bytes, name: &str, limits: &Limits) -> Result<NpyArray> {
    let h = Header::read(&data, name, limits)?;
    let body = &data[h.data_start..];
    if (body.len() as u64) < h.data_bytes {
        return Err(Error::Array {
            src: name.into(),
            reason: format!(
                "truncated: the header says {} bytes of data, {} are present",
                h.data_bytes,
                body.len()
            ),
        });
    }
    let range = h.data_start..h.data_start + h.data_bytes as usize;
    let (buffer, range) = match h.big_endian {
        true => (swap_bytes(&data[range.clone()], h.dtype), 0..range.len()),
        false => (data, range),
    };
    Ok(NpyArray {
        dtype: h.dtype,
        shape: h.shape,
        fortran_order: h.fortran_order,
        buffer,
        range,
    })
}

/// What a `.npy` header says, checked against [`Limits`].
struct Header {
    dtype: Dtype,
    big_endian: bool,
    fortran_order: bool,
    shape: Vec<usize>,
    /// Where the data starts, and how many bytes it takes.
    data_start: usize,
    data_bytes: u64,
}

impl Header {
    /// Reads the header at the start of `data` (which may hold only the
    /// header's first bytes plus some data).
    fn read(data: &[u8], name: &str, limits: &Limits) -> Result<Header> {
        let bad = |reason: String| Error::Array {
            src: name.into(),
            reason: format!("not a readable .npy: {reason}"),
        };
        if data.len() < 10 || &data[..6] != b"\x93NUMPY" {
            return Err(bad("no NumPy magic bytes".into()));
        }
        let (header_len, start) = match data[6] {
            1 => (usize::from(u16::from_le_bytes([data[8], data[9]])), 10),
            2 | 3 if data.len() >= 12 => (u32::from_le_bytes([data[8], data[9], data[10], data[11]]) as usize, 12),
            v => return Err(bad(format!("format version {v}"))),
        };
        if header_len > MAX_HEADER_BYTES || start + header_len > data.len() {
            return Err(bad(format!("a header of {header_len} bytes in {} bytes", data.len())));
        }
        let text = std::str::from_utf8(&data[start..start + header_len])
            .map_err(|_| bad("a header that is not text".into()))?;
        let (descr, fortran_order, shape) = parse_header(text).map_err(bad)?;
        let (dtype, big_endian) = Dtype::parse(&descr).map_err(bad)?;
        let data_bytes = shape
            .iter()
            .try_fold(dtype.size() as u64, |n, &d| n.checked_mul(d as u64))
            .ok_or_else(|| bad(format!("shape {shape:?} overflows")))?;
        Limits::check(name, "array size in bytes", data_bytes, limits.max_output_bytes)?;
        Ok(Header {
            dtype,
            big_endian,
            fortran_order,
            shape,
            data_start: start + header_len,
            data_bytes,
        })
    }
}

/// Big-endian elements (each part of a complex one) in little-endian order.
fn swap_bytes(data: &[u8], dtype: Dtype) -> Bytes {
    let part = match dtype {
        Dtype::C64 | Dtype::C128 => dtype.size() / 2,
        _ => dtype.size(),
    };
    let mut out = data.to_vec();
    out.chunks_exact_mut(part).for_each(<[u8]>::reverse);
    out.into()
}

/// Reads NumPy's header, a Python dict literal such as
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
fn parse_header(header: &str) -> std::result::Result<(String, bool, Vec<usize>), String> {
    let value_of = |key: &str| -> std::result::Result<&str, String> {
        let at = header
            .find(&format!("'{key}'"))
            .ok_or(format!("a header without {key:?}"))?;
        let rest = header[at + key.len() + 2..].trim_start();
        Ok(rest
            .strip_prefix(':')
            .ok_or(format!("a header with no value for {key:?}"))?
            .trim_start())
    };
    let descr = value_of("descr")?;
    let descr = match descr.chars().next() {
        Some(q @ ('\'' | '"')) => descr[1..].split(q).next().unwrap_or_default().to_string(),
        _ => return Err("a structured dtype (only plain numbers and bool are supported)".into()),
    };
    let fortran_order = match value_of("fortran_order")? {
        v if v.starts_with("True") => true,
        v if v.starts_with("False") => false,
        _ => return Err("fortran_order that is neither True nor False".into()),
    };
    let shape = value_of("shape")?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or("a shape that is not a tuple")?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            d.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| format!("shape dimension {d:?}"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((descr, fortran_order, shape))
}

/// Loads every array of a `.npz` archive (NumPy's `savez`, stored, and
/// `savez_compressed`, deflated), by name without the `.npy` suffix, in
/// archive order.
///
/// ```no_run
/// for (name, array) in spdl_io::npy::load_npz("features.npz")? {
///     println!("{name}: {:?} {:?}", array.dtype, array.shape);
/// }
/// # Ok::<(), spdl_io::Error>(())
/// ```
///
/// # Errors
/// As [`load_npy`] for each member (naming it), and
/// a file that is not a zip archive ([`Error::Array`]); [`Error::Limit`] when the members
/// together decompress to more than [`Limits::max_output_bytes`].
pub fn load_npz(src: impl Into<Source>) -> Result<Vec<(String, NpyArray)>> {
    load_npz_with_limits(src, &Limits::default())
}

/// [`load_npz`] with the given limits.
///
/// # Errors
/// As [`load_npz`].
pub fn load_npz_with_limits(src: impl Into<Source>, limits: &Limits) -> Result<Vec<(String, NpyArray)>> {
    let src = src.into();
    let name = src.name();
    parse_npz(src.read_all(limits)?, &name, limits)
}

/// Parses `.npz` bytes; `name` is used in errors.
///
/// # Errors
/// As [`load_npz`].
pub fn parse_npz(data: Bytes, name: &str, limits: &Limits) -> Result<Vec<(String, NpyArray)>> {
    let bad = |member: &str, reason: String| Error::Array {
        src: format!("{name}{member}"),
        reason: format!("not a readable .npz: {reason}"),
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(data)).map_err(|e| bad("", e.to_string()))?;
    let mut arrays = Vec::new();
    let mut total = 0u64;
    for i in 0..archive.len() {
        let mut member = archive.by_index(i).map_err(|e| bad("", e.to_string()))?;
        let member_name = member.name().map_err(|e| bad("", e.to_string()))?.to_string();
        let path = format!("{name}!{member_name}");
        let read_err = |e: std::io::Error| bad(&format!("!{member_name}"), e.to_string());
        // The header first; then exactly the data it declares (checked
        // against the limits), so a zip bomb or a lying size field stops
        // at the header, and memory grows only with bytes actually read.
        let mut bytes = Vec::new();
        let head = (12 + MAX_HEADER_BYTES) as u64;
        (&mut member).take(head).read_to_end(&mut bytes).map_err(read_err)?;
        let h = Header::read(&bytes, &path, limits)?;
        total = total.saturating_add(h.data_bytes);
        Limits::check(&path, "arrays' total size in bytes", total, limits.max_output_bytes)?;
        let want = (h.data_start as u64 + h.data_bytes).saturating_sub(bytes.len() as u64);
        (&mut member).take(want).read_to_end(&mut bytes).map_err(read_err)?;
        let key = member_name.strip_suffix(".npy").unwrap_or(&member_name).to_string();
        arrays.push((key, parse_npy(bytes.into(), &path, limits)?));
    }
    Ok(arrays)
}

/// Writes `array` (any dimensionality) as a C-ordered `.npy` (format 1.0),
/// through `out` in bounded pieces (no second copy of the array).
///
/// # Errors
/// The writer's I/O errors.
pub fn write_npy<T: NpyElement, D: Dimension>(mut out: impl Write, array: ArrayView<'_, T, D>) -> std::io::Result<()> {
    let dims: Vec<String> = array.shape().iter().map(|d| d.to_string()).collect();
    // A one-element tuple needs its trailing comma.
    let dims = match dims.as_slice() {
        [one] => format!("{one},"),
        _ => dims.join(", "),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': ({dims}), }}",
        T::DTYPE.descr()
    );
    // Magic (6) + version (2) + length (2) + header + '\n': a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    out.write_all(b"\x93NUMPY\x01\x00")?;
    out.write_all(&(header.len() as u16).to_le_bytes())?;
    out.write_all(header.as_bytes())?;
    // Logical (C) order: a standard-layout array in slices of 64 Ki values,
    // any other element by element.
    let mut chunk = Vec::new();
    match array.as_slice() {
        Some(values) => {
            for part in values.chunks(1 << 16) {
                T::put_all_le(part, &mut chunk);
                out.write_all(&chunk)?;
                chunk.clear();
            }
        }
        None => {
            for v in array.iter() {
                v.put_le(&mut chunk);
                if chunk.len() >= 1 << 16 {
                    out.write_all(&chunk)?;
                    chunk.clear();
                }
            }
        }
    }
    out.write_all(&chunk)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn npy(header: &str, data: &[u8]) -> Bytes {
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(data);
        out.into()
    }

    fn parse(b: Bytes) -> Result<NpyArray> {
        parse_npy(b, "t.npy", &Limits::default())
    }

    #[test]
    fn written_arrays_read_back() {
        let a = array![[1.5f32, -2.0, 3.25], [4.0, 5.0, 6.0]];
        let mut file = Vec::new();
        write_npy(&mut file, a.view()).unwrap();
        assert_eq!(file.len() % 64, 24, "header padded to 64, then 24 data bytes");
        let back = parse(file.into()).unwrap();
        assert_eq!(
            (back.dtype, back.shape.clone(), back.fortran_order),
            (Dtype::F32, vec![2, 3], false)
        );
        assert_eq!(back.to_array::<f32>().unwrap(), a.clone().into_dyn());
        assert!(back.to_array::<f64>().is_err(), "wrong element type");
        // A transposed view is written in its logical order; a long
        // contiguous one in several slices.
        let mut file = Vec::new();
        write_npy(&mut file, a.t()).unwrap();
        assert_eq!(parse(file.into()).unwrap().to_array::<f32>().unwrap(), a.t().into_dyn());
        let long = ndarray::Array1::from_iter((0..200_000u32).map(|v| v.wrapping_mul(2_654_435_761)));
        let mut file = Vec::new();
        write_npy(&mut file, long.view()).unwrap();
        assert_eq!(parse(file.into()).unwrap().to_array::<u32>().unwrap(), long.into_dyn());
    }

    #[test]
    fn big_endian_and_fortran_order_are_honoured() {
        let data: Vec<u8> = [1i16, 2, 3, 4, 5, 6].iter().flat_map(|v| v.to_be_bytes()).collect();
        let a = parse(npy(
            "{'descr': '>i2', 'fortran_order': True, 'shape': (2, 3), }\n",
            &data,
        ))
        .unwrap();
        let a = a.to_array::<i16>().unwrap();
        assert_eq!(a, array![[1i16, 3, 5], [2, 4, 6]].into_dyn());
    }

    #[test]
    fn scalars_and_empty_arrays() {
        let s = parse(npy(
            "{'descr': '<i8', 'fortran_order': False, 'shape': (), }\n",
            &7i64.to_le_bytes(),
        ))
        .unwrap();
        assert_eq!((s.shape.len(), s.len()), (0, 1));
        let e = parse(npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 5), }\n",
            &[],
        ))
        .unwrap();
        assert!(e.is_empty());
    }

    #[test]
    fn hostile_headers_are_clean_errors() {
        let cases = [
            npy("{'descr': '|O', 'fortran_order': False, 'shape': (3,), }\n", &[0; 24]),
            npy("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (3,), }\n", &[0; 12]),
            npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }\n", &[0; 15]),
            npy(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }\n",
                &[],
            ),
            npy(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551615, 3), }\n",
                &[],
            ),
            npy(
                "{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,), }\n",
                &[0; 4],
            ),
            npy("{'descr': '<U8', 'fortran_order': False, 'shape': (1,), }\n", &[0; 32]),
            npy("{'fortran_order': False, 'shape': (1,), }\n", &[0; 4]),
            Bytes::from_static(b"\x93NUMPY\x01\x00\xff\xff{"),
            Bytes::from_static(b"PK\x03\x04 not npy"),
        ];
        for (k, case) in cases.into_iter().enumerate() {
            let err = parse(case).unwrap_err();
            assert!(err.to_string().contains("t.npy"), "case {k}: {err}");
        }
    }

    #[test]
    fn npz_that_is_not_a_zip_is_a_clean_error() {
        let err = parse_npz(Bytes::from_static(b"not a zip"), "x.npz", &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("x.npz"), "{err}");
    }
}

//! A minimal NumPy `.npy` (format 1.0) writer for uint8 and float32 arrays.

use std::io::Write;
use std::path::Path;

use ndarray::{ArrayView, Dimension};

/// A NumPy element type: its `descr` and little-endian bytes.
pub trait Element: Copy {
    /// NumPy's type string, e.g. `|u1` or `<f4`.
    const DESCR: &'static str;
    /// Appends the value's little-endian bytes.
    fn put(self, out: &mut Vec<u8>);
}

impl Element for u8 {
    const DESCR: &'static str = "|u1";
    fn put(self, out: &mut Vec<u8>) {
        out.push(self);
    }
}

impl Element for f32 {
    const DESCR: &'static str = "<f4";
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

/// Writes `array` (any dimensionality) as a C-ordered `.npy` file.
pub fn write<T: Element, D: Dimension>(path: &Path, array: ArrayView<'_, T, D>) -> std::io::Result<()> {
    let shape: Vec<String> = array.shape().iter().map(|d| d.to_string()).collect();
    // A one-element tuple needs its trailing comma.
    let dims = if shape.len() == 1 {
        format!("{},", shape[0])
    } else {
        shape.join(", ")
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': ({dims}), }}",
        T::DESCR
    );
    // Magic (6) + version (2) + header length (2) + header + '\n' is a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    out.write_all(b"\x93NUMPY\x01\x00")?;
    out.write_all(&(header.len() as u16).to_le_bytes())?;
    out.write_all(header.as_bytes())?;
    // Through the buffered writer in bounded pieces: no second copy of the
    // whole array (a long video's array can be most of the memory there is).
    let mut bytes = Vec::with_capacity(1 << 16);
    for v in array.iter() {
        v.put(&mut bytes);
        if bytes.len() >= 1 << 16 {
            out.write_all(&bytes)?;
            bytes.clear();
        }
    }
    out.write_all(&bytes)?;
    out.flush()
}

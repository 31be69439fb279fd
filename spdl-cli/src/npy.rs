//! A minimal NumPy `.npy` (format 1.0) writer for uint8 arrays.

use std::io::Write;
use std::path::Path;

use ndarray::{ArrayView, Dimension};

/// Writes `array` (any dimensionality) as a C-ordered uint8 `.npy` file.
pub fn write_u8<D: Dimension>(path: &Path, array: ArrayView<'_, u8, D>) -> std::io::Result<()> {
    let shape: Vec<String> = array.shape().iter().map(|d| d.to_string()).collect();
    let mut header = format!(
        "{{'descr': '|u1', 'fortran_order': False, 'shape': ({}), }}",
        shape.join(", ")
    );
    // Magic (6) + version (2) + header length (2) + header + '\n' is a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    out.write_all(b"\x93NUMPY\x01\x00")?;
    out.write_all(&(header.len() as u16).to_le_bytes())?;
    out.write_all(header.as_bytes())?;
    match array.as_slice() {
        Some(data) => out.write_all(data)?,
        None => {
            for v in array.iter() {
                out.write_all(&[*v])?;
            }
        }
    }
    out.flush()
}

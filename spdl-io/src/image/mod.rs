//! Images: [`load_image`] and [`load_image_u16`] into (H, W, C) arrays,
//! [`load_image_batch`] into one (N, H, W, C) array decoded in parallel,
//! [`probe_image`] for headers, and [`save_image`] / [`encode_image`] to
//! write JPEG, PNG and WebP.
//!
//! One folder per concern: `probe` reads headers and picks the decoder
//! (`jpeg`: libjpeg-turbo; the `image` crate; `tiff`: libtiff for the TIFF
//! variants the `image` crate lacks, CIELab through Little CMS as Pillow
//! converts it; `dds`, `tga`, `levels` (gray integers and floats),
//! `rasters` (formats only Pillow reads, run-length BMPs), `blp` and `fli`
//! for what is decoded as Pillow decodes it; `ffmpeg`: FFmpeg through
//! `media` for the rest), `load` decodes and writes into the output,
//! `pixels` converts layouts, `resize` samples, `exif` reads orientation,
//! `repair` fixes headers Pillow reads past, `batch` runs many at once.

mod batch;
mod blp;
mod config;
mod containers;
mod dds;
mod exif;
mod ffmpeg;
mod fli;
mod heif;
mod jpeg;
mod levels;
mod load;
mod pixels;
mod probe;
mod rasters;
mod repair;
mod resize;
mod save;
mod tga;
mod tiff;

pub use batch::{load_image_batch, BatchConfig, Cancel, FailurePolicy, ImageBatch};
pub use config::{ImageConfig, IMAGE_MAX_PIXELS};
pub use load::{load_image, load_image_u16};
pub use pixels::Sample;
pub use probe::{probe_image, ImageInfo};
pub use resize::Fit;
pub use save::{encode_image, save_image, ImageFormat, SaveConfig};

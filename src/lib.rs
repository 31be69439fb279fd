//! `spdl`: scalable and performant data loading for ML training, in Rust.
//!
//! This facade re-exports the workspace's libraries under short names:
//!
//! - [`io`]: demux and decode media (video today) into `ndarray` buffers.
//! - [`pipeline`]: the concurrent stage scheduler that feeds training.
//!
//! ```no_run
//! let video = spdl::io::load_video("clip.mp4", &spdl::io::VideoConfig::default())?;
//! println!("{} frames of {:?}", video.frames.shape()[0], video.frames.shape());
//! # Ok::<(), spdl::io::Error>(())
//! ```

pub use spdl_io as io;
pub use spdl_pipeline as pipeline;

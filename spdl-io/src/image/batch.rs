//! Batch image decoding: many sources decoded in parallel on the rayon
//! pool, each written straight into its slot of one contiguous
//! (N, H, W, C) array.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ndarray::Array4;
use rayon::prelude::*;

use super::config::ImageConfig;
use super::load::load_into;
use crate::choice;
use crate::error::{catch_panic, Error, Result};
use crate::limits::Limits;
use crate::memory;
use crate::source::Source;

/// What a batch does when an image fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// The first failure (in input order) fails the whole batch.
    #[default]
    Strict,
    /// Failed images are left out and reported in [`ImageBatch::failures`].
    Skip,
}

impl std::str::FromStr for FailurePolicy {
    type Err = Error;
    /// `strict` (or `raise`, Python's word) or `skip`.
    fn from_str(s: &str) -> Result<Self> {
        use FailurePolicy::*;
        choice::parse(
            "failure policy",
            s,
            &[("strict", Strict), ("raise", Strict), ("skip", Skip)],
        )
    }
}

/// Settings of [`load_image_batch`]: the per-image config (which must set
/// both width and height) and the failure policy.
///
/// ```
/// use spdl_io::{BatchConfig, FailurePolicy, ImageConfig};
/// let config = BatchConfig::new(ImageConfig::default().with_size(224, 224)).with_policy(FailurePolicy::Skip);
/// assert_eq!(config.policy, FailurePolicy::Skip);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BatchConfig {
    /// How each image is decoded, converted and resized.
    pub image: ImageConfig,
    /// Strict (default) or skip-and-report.
    pub policy: FailurePolicy,
    /// Stops the batch early when cancelled (none by default).
    pub cancel: Option<Cancel>,
}

impl BatchConfig {
    /// A strict batch of images decoded with `image`.
    pub fn new(image: ImageConfig) -> Self {
        BatchConfig {
            image,
            policy: FailurePolicy::Strict,
            cancel: None,
        }
    }
    /// Sets the failure policy.
    #[must_use]
    pub fn with_policy(mut self, policy: FailurePolicy) -> Self {
        self.policy = policy;
        self
    }
    /// Sets [`BatchConfig::cancel`].
    #[must_use]
    pub fn with_cancel(mut self, cancel: Cancel) -> Self {
        self.cancel = Some(cancel);
        self
    }
}

/// A flag another thread sets to stop a running batch (for example on
/// Ctrl-C): images not started yet are skipped, and the batch returns
/// [`Error::Cancelled`]. Clones share the flag.
///
/// ```
/// let cancel = spdl_io::Cancel::default();
/// let other = cancel.clone();
/// other.cancel();
/// assert!(cancel.is_cancelled());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Asks the batch to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The same flag.
impl PartialEq for Cancel {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Decoded images and what failed.
#[derive(Debug)]
#[non_exhaustive]
pub struct ImageBatch {
    /// The images that decoded, shape (N, H, W, C), in input order.
    pub images: Array4<u8>,
    /// The source name of each image in `images`.
    pub sources: Vec<String>,
    /// Sources that failed (only with [`FailurePolicy::Skip`]), with why.
    pub failures: Vec<(String, Error)>,
}

/// Decodes `srcs` in parallel (rayon's current pool: the global one, or
/// the pool a caller `install`s) into one (N, H, W, C) array.
///
/// ```no_run
/// use spdl_io::{load_image_batch, BatchConfig, ImageConfig};
/// let config = BatchConfig::new(ImageConfig::default().with_size(224, 224));
/// let batch = load_image_batch(["a.jpg", "b.png"], &config)?;
/// assert_eq!(batch.images.shape(), [2, 224, 224, 3]);
/// # Ok::<(), spdl_io::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidConfig`] without both width and height; with
/// [`FailurePolicy::Strict`], the first image's error in input order;
/// [`Error::Cancelled`] when [`BatchConfig::cancel`] was cancelled.
pub fn load_image_batch<S: Into<Source>>(
    srcs: impl IntoIterator<Item = S>,
    config: &BatchConfig,
) -> Result<ImageBatch> {
    let cfg = &config.image;
    let (Some(w), Some(h)) = (cfg.width, cfg.height) else {
        return Err(Error::InvalidConfig(
            "a batch needs both width and height to size its slots".into(),
        ));
    };
    cfg.validate()?;
    let channels = cfg
        .pix_fmt
        .packed_channels()
        .ok_or_else(|| Error::InvalidConfig(format!("{} is not an image output format", cfg.pix_fmt.name())))?;
    let srcs: Vec<Source> = srcs.into_iter().map(Into::into).collect();
    let slot = w as usize * h as usize * channels;
    let total = slot.saturating_mul(srcs.len());
    Limits::check(
        "batch",
        "output size in bytes",
        total as u64,
        cfg.limits.max_output_bytes,
    )?;
    let mut data = memory::zeroed::<u8>(total).map_err(|bytes| Error::Convert {
        src: "batch".into(),
        reason: format!("cannot allocate {bytes} bytes for the output"),
    })?;
    let cancelled = || config.cancel.as_ref().is_some_and(Cancel::is_cancelled);
    let results: Vec<Result<()>> = data
        .par_chunks_mut(slot.max(1))
        // One image per task: image sizes vary a lot, and rayon's default
        // halving left one thread idle at the end (2 threads: 1.52x ->
        // 2.09x over 1, BENCHMARKS.md).
        .with_max_len(1)
        .zip(srcs.par_iter())
        .map(|(out, src)| match cancelled() {
            true => Err(Error::Cancelled),
            // One image's panic (a bug anywhere below) fails that image only.
            false => catch_panic(|| load_into(src.clone(), cfg, out)).unwrap_or_else(|panic| {
                Err(Error::image(
                    &src.name(),
                    "unknown",
                    format!("decoding panicked ({panic})"),
                ))
            }),
        })
        .collect();
    if cancelled() {
        return Err(Error::Cancelled);
    }
    let mut sources = Vec::new();
    let mut failures = Vec::new();
    for (i, (src, result)) in srcs.iter().zip(results).enumerate() {
        match result {
            Ok(()) => {
                let k = sources.len();
                if k != i {
                    data.copy_within(i * slot..(i + 1) * slot, k * slot);
                }
                sources.push(src.name());
            }
            Err(e) if config.policy == FailurePolicy::Strict => return Err(e),
            Err(e) => failures.push((src.name(), e)),
        }
    }
    data.truncate(sources.len() * slot);
    let images = Array4::from_shape_vec((sources.len(), h as usize, w as usize, channels), data)
        .map_err(|e| Error::InvalidConfig(e.to_string()))?;
    Ok(ImageBatch {
        images,
        sources,
        failures,
    })
}

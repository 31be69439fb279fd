//! Where a Python pipeline's items come from: Python iterables (sync or
//! async), a `DistributedSampler`'s indices, and tar shards read natively.

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use spdl::io::{self as sio, Source};
use spdl::pipeline::{self as sp, Remainder};

use super::item::Item;
use crate::aio::EventLoop;
use crate::pools::with_python;

/// The exception a Python source raised, kept to become the `__cause__`
/// of the run's `PipelineFailure` (shared by the runs of one pipeline:
/// with two runs failing at once, either may get the other's cause).
pub(crate) type SourceError = Arc<std::sync::Mutex<Option<PyErr>>>;

/// Items pulled from a Python iterator. Each time the GIL is taken, items
/// are pulled for up to [`PULL_TIME`] (at most [`PULL_MAX`]), so a fast
/// iterator costs one GIL hand-off per batch and a slow one holds the GIL
/// no longer than one item past that.
pub(crate) struct PythonItems {
    iterable: Arc<Py<PyAny>>,
    /// The event loop, for an async iterable.
    aio: Option<Arc<EventLoop>>,
    /// Where the exception that ended it is kept for the run's error.
    raised: SourceError,
    iter: Option<Py<PyAny>>,
    pulled: std::collections::VecDeque<Item>,
    ended: bool,
    /// The exception the iterable raised, handed out after the items
    /// pulled before it: the run then ends with `PipelineFailure`.
    failed: Option<String>,
}

const PULL_TIME: std::time::Duration = std::time::Duration::from_micros(50);
const PULL_MAX: usize = 256;

impl PythonItems {
    pub(crate) fn new(iterable: Arc<Py<PyAny>>, aio: Option<Arc<EventLoop>>, raised: SourceError) -> Self {
        PythonItems {
            iterable,
            aio,
            raised,
            iter: None,
            pulled: Default::default(),
            ended: false,
            failed: None,
        }
    }

    /// Pulls the next batch; sets `ended` at the end, and `failed` too when
    /// the iterable raised.
    fn pull(&mut self, py: Python<'_>) {
        if self.iter.is_none() {
            let iterable = self.iterable.bind(py);
            let iter = match self.aio {
                Some(_) => iterable.call_method0("__aiter__"),
                None => iterable.try_iter().map(Bound::into_any),
            };
            match iter {
                Ok(iter) => self.iter = Some(iter.unbind()),
                Err(e) => {
                    self.fail(py, e);
                    return;
                }
            }
        }
        let Some(iter) = self.iter.as_ref().map(|i| i.bind(py).clone()) else {
            return;
        };
        if let Some(aio) = &self.aio {
            match aio.pull(py, &iter, PULL_MAX, PULL_TIME.as_secs_f64()) {
                Ok((items, ended, error)) => {
                    self.pulled.extend(items);
                    self.ended = ended;
                    if let Some(e) = error {
                        self.fail(py, e);
                    }
                }
                Err(e) => self.fail(py, e),
            }
            return;
        }
        // At least one item per call: an empty batch would read as the end.
        let t0 = std::time::Instant::now();
        loop {
            match iter.call_method0("__next__") {
                Ok(obj) => self.pulled.push_back(Item::from_py(obj)),
                Err(e) if e.is_instance_of::<pyo3::exceptions::PyStopIteration>(py) => {
                    self.ended = true;
                    return;
                }
                Err(e) => {
                    self.fail(py, e);
                    return;
                }
            }
            if self.pulled.len() >= PULL_MAX || t0.elapsed() >= PULL_TIME {
                return;
            }
        }
    }
}

impl PythonItems {
    /// Ends the source with the exception `e` (type and message).
    fn fail(&mut self, py: Python<'_>, e: PyErr) {
        let kind = e.get_type(py).name().map_or("Exception".into(), |n| n.to_string());
        self.failed = Some(format!("{kind}: {}", e.value(py)));
        self.ended = true;
        *self.raised.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
    }
}

impl Iterator for PythonItems {
    type Item = Result<Item, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pulled.is_empty() && !self.ended {
            // At interpreter exit no item is pulled: the source ends.
            self.ended |= with_python(|py| self.pull(py)).is_none();
        }
        match self.pulled.pop_front() {
            Some(item) => Some(Ok(item)),
            None => self.failed.take().map(Err),
        }
    }
}

/// Shuffled, rank-sharded dataset indices: the order is a function of
/// (seed, epoch, rank, world size) only; ranks get disjoint indices and
/// equal counts (`remainder="pad"` repeats a few, `"drop"` drops the tail).
/// `rank` and `world_size` default to torchrun's `RANK` and `WORLD_SIZE`
/// (0 and 1 when unset). As a pipeline source it yields each epoch's
/// indices for `run(epoch)`, natively.
#[pyclass(frozen, module = "spdl_rs.pipeline")]
pub(crate) struct DistributedSampler {
    pub(crate) inner: sp::DistributedSampler,
    rank: usize,
    world_size: usize,
}

#[pymethods]
impl DistributedSampler {
    #[new]
    #[pyo3(signature = (length, *, rank=None, world_size=None, seed=0, shuffle=true, remainder="pad"))]
    fn new(
        length: usize,
        rank: Option<usize>,
        world_size: Option<usize>,
        seed: u64,
        shuffle: bool,
        remainder: &str,
    ) -> PyResult<Self> {
        let (rank, world_size) = match (rank, world_size) {
            (Some(r), Some(w)) => (r, w),
            (r, w) => {
                let (env_rank, env_world) = sp::rank_from_env().map_err(|e| PyValueError::new_err(e.to_string()))?;
                (r.unwrap_or(env_rank), w.unwrap_or(env_world))
            }
        };
        if world_size == 0 || rank >= world_size {
            return Err(PyValueError::new_err(format!("rank {rank} is not in 0..{world_size}")));
        }
        let remainder = match remainder {
            "pad" => Remainder::Pad,
            "drop" => Remainder::Drop,
            other => {
                return Err(PyValueError::new_err(format!(
                    "remainder must be \"pad\" or \"drop\", not {other:?}"
                )))
            }
        };
        let inner = sp::DistributedSampler::new(length, rank, world_size)
            .with_seed(seed)
            .with_shuffle(shuffle)
            .with_remainder(remainder);
        Ok(DistributedSampler {
            inner,
            rank,
            world_size,
        })
    }

    /// This rank's indices for `epoch`.
    #[pyo3(signature = (epoch=0))]
    fn indices(&self, epoch: u64) -> Vec<usize> {
        self.inner.indices(epoch)
    }

    /// Indices per rank and epoch.
    fn __len__(&self) -> usize {
        self.inner.per_rank()
    }

    #[getter]
    fn rank(&self) -> usize {
        self.rank
    }

    #[getter]
    fn world_size(&self) -> usize {
        self.world_size
    }

    fn __repr__(&self) -> String {
        format!(
            "DistributedSampler(rank={}, world_size={}, per_rank={})",
            self.rank,
            self.world_size,
            self.inner.per_rank()
        )
    }
}

/// The samples of `shards`, one shard after another, each read as the
/// pipeline pulls (never extracted or loaded whole). A shard that cannot
/// be opened, or a broken member, becomes an `Item::Failed` naming it
/// (reported by the stage after the source); a broken header ends that
/// shard, and reading goes on with the next.
pub(crate) fn shard_items(shards: Arc<Vec<Source>>, max_member_bytes: u64) -> impl Iterator<Item = Item> + Send {
    (0..shards.len()).flat_map(move |i| -> Box<dyn Iterator<Item = Item> + Send> {
        let shard = &shards[i];
        let url = shard.name();
        match sio::ShardReader::open(shard, max_member_bytes) {
            Err(e) => Box::new(std::iter::once(Item::Failed(e.to_string()))),
            Ok(reader) => Box::new(reader.map(move |sample| match sample {
                Err(e) => Item::Failed(e.to_string()),
                Ok(sample) => {
                    let name = |ext: &str| format!("{}:{}.{ext}", sample.shard, sample.key);
                    let fields = sample
                        .fields
                        .iter()
                        .map(|(ext, data)| (ext.clone(), Item::Source(Source::from_bytes(data.clone(), name(ext)))))
                        .collect();
                    Item::Sample {
                        url: url.clone(),
                        key: sample.key,
                        fields,
                    }
                }
            })),
        }
    })
}

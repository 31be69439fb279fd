//! The values moving through a Python pipeline: Python objects, or native
//! values (sources, arrays, shard samples, groups) that native stages
//! handle without the GIL; and the native stages' work on them (collate,
//! disaggregate, aggregate).

use ndarray::{s, Array1, Array2, Array3, Array4, Array5, ArrayView, Axis, Dimension};
use numpy::{IntoPyArray, ToPyArray};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use spdl::io::Source;
use spdl::pipeline as sp;

use crate::arrays::to_numpy;
use crate::pools::with_python;

/// A value moving through the pipeline.
pub(crate) enum Item {
    /// Any Python object (GIL needed to touch it).
    Object(Py<PyAny>),
    /// A path, URL or bytes: what native decode stages take.
    Source(Source),
    /// A dataset index (from a `DistributedSampler`).
    Index(u64),
    /// A decoded image (H, W, C).
    Image(Array3<u8>),
    /// Video frames (T, H, W, C), or a batch of images (N, H, W, C).
    Frames(Array4<u8>),
    /// A batch of clips (B, T, H, W, C).
    Clips(Array5<u8>),
    /// Decoded audio, float32 (channels, samples).
    Audio(Array2<f32>),
    /// A NumPy array read from a `.npy` (any dtype).
    Array(spdl::io::npy::NpyArray),
    /// A batch of audio padded with zeros (B, channels, samples), and each
    /// one's length in samples.
    AudioBatch(Array3<f32>, Array1<i64>),
    /// A tar shard's sample: the shard, the key, and fields by extension.
    Sample {
        url: String,
        key: String,
        fields: Vec<(String, Item)>,
    },
    /// A group from `aggregate`.
    List(Vec<Item>),
    /// What could not be read (a broken shard member); the stage after the
    /// source drops it as a reported failure.
    Failed(String),
}

impl Item {
    /// Wraps a Python object, keeping strings and bytes as native sources
    /// so decode stages need no GIL, when they come back out unchanged: a
    /// `str` subclass, or a string the source would rewrite (`file:///x`
    /// is read as `/x`), stays the Python object (a decode stage still
    /// takes it, with the GIL for a moment).
    pub(crate) fn from_py(obj: Bound<'_, PyAny>) -> Item {
        let native = match obj.cast_exact::<PyString>() {
            Ok(s) => s.to_cow().is_ok_and(|text| Source::from(&*text).name() == text),
            Err(_) => obj.is_exact_instance_of::<PyBytes>(),
        };
        match native.then(|| crate::sources::extract(&obj)) {
            Some(Ok(source)) => Item::Source(source),
            _ => Item::Object(obj.unbind()),
        }
    }

    /// The Python value: arrays become NumPy arrays that own the buffer, a
    /// sample a dict (`__key__`, `__url__` and its fields, as webdataset
    /// names them), an audio batch a tuple `(array, lengths)`.
    pub(crate) fn into_py(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let array = |a: Bound<'_, PyAny>| a.unbind();
        Ok(match self {
            Item::Object(o) => o,
            Item::Source(Source::Bytes { data, .. }) => PyBytes::new(py, &data).into_any().unbind(),
            Item::Source(s) => PyString::new(py, &s.name()).into_any().unbind(),
            Item::Index(i) => i.into_pyobject(py)?.into_any().unbind(),
            Item::Image(a) => array(to_numpy(py, a)?),
            Item::Frames(a) => array(to_numpy(py, a)?),
            Item::Clips(a) => array(to_numpy(py, a)?),
            Item::Audio(a) => array(to_numpy(py, a)?),
            Item::Array(a) => array(crate::npy::to_numpy(py, a)?),
            Item::AudioBatch(a, lengths) => {
                let pair = [to_numpy(py, a)?, lengths.into_pyarray(py).into_any()];
                PyTuple::new(py, pair)?.into_any().unbind()
            }
            Item::Sample { url, key, fields } => {
                let dict = PyDict::new(py);
                dict.set_item("__key__", key)?;
                dict.set_item("__url__", url)?;
                for (name, value) in fields {
                    dict.set_item(name, value.into_py(py)?)?;
                }
                dict.into_any().unbind()
            }
            Item::List(items) => {
                let objs = items.into_iter().map(|i| i.into_py(py)).collect::<PyResult<Vec<_>>>()?;
                PyList::new(py, objs)?.into_any().unbind()
            }
            Item::Failed(reason) => return Err(pyo3::exceptions::PyRuntimeError::new_err(reason)),
        })
    }

    /// A Python view of the item that leaves it in place (for `route`'s
    /// `select`): objects are shared, sources become their name (bytes
    /// are copied), arrays are copied.
    pub(crate) fn peek(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let array = |a: Bound<'_, PyAny>| a.unbind();
        Ok(match self {
            Item::Object(o) => o.clone_ref(py),
            Item::Source(Source::Bytes { data, .. }) => PyBytes::new(py, data).into_any().unbind(),
            Item::Source(s) => PyString::new(py, &s.name()).into_any().unbind(),
            Item::Index(i) => i.into_pyobject(py)?.into_any().unbind(),
            Item::Image(a) => array(a.to_pyarray(py).into_any()),
            Item::Frames(a) => array(a.to_pyarray(py).into_any()),
            Item::Clips(a) => array(a.to_pyarray(py).into_any()),
            Item::Audio(a) => array(a.to_pyarray(py).into_any()),
            Item::Array(a) => array(crate::npy::to_numpy(py, a.clone())?),
            Item::AudioBatch(a, _) => array(a.to_pyarray(py).into_any()),
            Item::Sample { url, key, fields } => {
                let dict = PyDict::new(py);
                dict.set_item("__key__", key)?;
                dict.set_item("__url__", url)?;
                for (name, value) in fields {
                    dict.set_item(name, value.peek(py)?)?;
                }
                dict.into_any().unbind()
            }
            Item::List(items) => {
                let objs = items.iter().map(|i| i.peek(py)).collect::<PyResult<Vec<_>>>()?;
                PyList::new(py, objs)?.into_any().unbind()
            }
            Item::Failed(reason) => PyString::new(py, reason).into_any().unbind(),
        })
    }

    /// What an error of a merged pipeline or a shard becomes.
    pub(crate) fn failed(e: impl std::fmt::Display) -> Item {
        Item::Failed(e.to_string())
    }

    /// The items of an `Item::List` (a generator stage's outputs).
    pub(crate) fn elements_of_list(self) -> Result<Vec<Item>, String> {
        match self {
            Item::List(items) => Ok(items),
            _ => Err("expected the list of a generator's outputs".into()),
        }
    }

    /// Applies a native decode to this item's source, or with `key` to that
    /// field of a shard sample (the other fields pass through).
    pub(crate) fn decode(
        self,
        key: Option<&str>,
        decode: impl FnOnce(Source) -> Result<Item, spdl::io::Error>,
    ) -> Result<Item, String> {
        match (self, key) {
            (Item::Source(s), _) => decode(s).map_err(|e| e.to_string()),
            (
                Item::Sample {
                    url,
                    key: k,
                    mut fields,
                },
                Some(field),
            ) => {
                // "jpg;png": the first of these fields the sample has.
                let wanted = |name: &str| field.split(';').position(|f| f == name);
                let pick = fields.iter().filter_map(|(n, _)| wanted(n)).min();
                let Some(slot) = fields
                    .iter_mut()
                    .find(|(name, _)| pick.is_some() && wanted(name) == pick)
                else {
                    let names: Vec<_> = fields.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(format!(
                        "{url}: sample {k} has no field {field:?} (fields: {})",
                        names.join(", ")
                    ));
                };
                let Item::Source(src) = std::mem::replace(&mut slot.1, Item::Index(0)) else {
                    return Err(format!("{url}: field {field:?} of sample {k} was decoded already"));
                };
                slot.1 = decode(src).map_err(|e| e.to_string())?;
                // Stored under the first name, so a batch's samples agree.
                slot.0 = field.split(';').next().unwrap_or(field).to_string();
                Ok(Item::Sample { url, key: k, fields })
            }
            (Item::Sample { url, key, fields }, None) => {
                let names: Vec<_> = fields.iter().map(|(n, _)| n.as_str()).collect();
                Err(format!(
                    "{url}: sample {key} is a shard sample: pass key= (one of {}) to the decode stage",
                    names.join(", ")
                ))
            }
            (Item::Object(obj), _) => {
                let source = with_python(|py| crate::sources::extract(obj.bind(py)).map_err(|e| e.to_string()))
                    .unwrap_or_else(|| Err("the Python interpreter is shutting down".into()))
                    .map_err(|e| {
                        format!("a native decode stage needs a path, URL, bytes or a shard sample with key=: {e}")
                    })?;
                decode(source).map_err(|e| e.to_string())
            }
            _ => Err("a native decode stage needs a str path/URL, bytes, or a shard sample with key=".into()),
        }
    }
}

/// Collates a group from `aggregate`: images into (N, H, W, C), clips into
/// (B, T, H, W, C), audio into (B, C, N) padded with zeros plus lengths,
/// NumPy arrays (a Python stage's or `decode_npy`'s) with `numpy.stack`,
/// and shard samples field by field (fields that cannot be stacked become
/// lists).
pub(crate) fn collate(item: Item) -> Result<Item, String> {
    let Item::List(items) = item else {
        return Err("collate needs the groups made by aggregate()".into());
    };
    collate_group(items)
}

fn collate_group(items: Vec<Item>) -> Result<Item, String> {
    match items.first() {
        Some(Item::Image(_)) => stack(&items, |i| match i {
            Item::Image(a) => Some(a.view()),
            _ => None,
        })
        .map(Item::Frames),
        Some(Item::Frames(_)) => stack(&items, |i| match i {
            Item::Frames(a) => Some(a.view()),
            _ => None,
        })
        .map(Item::Clips),
        Some(Item::Audio(_)) => pad_audio(&items),
        Some(Item::Sample { .. }) => collate_samples(items),
        Some(Item::Object(_) | Item::Array(_)) => numpy_stack(items),
        _ => Err("collate takes decoded images, clips, audio, shard samples or NumPy arrays".into()),
    }
}

/// Python objects (NumPy arrays a Python stage made) stacked with
/// `numpy.stack`, with the GIL.
fn numpy_stack(items: Vec<Item>) -> Result<Item, String> {
    with_python(|py| -> PyResult<Item> {
        let objs = items.into_iter().map(|i| i.into_py(py)).collect::<PyResult<Vec<_>>>()?;
        let stacked = py.import("numpy")?.call_method1("stack", (objs,))?;
        Ok(Item::Object(stacked.unbind()))
    })
    .ok_or_else(|| "the Python interpreter is shutting down".to_string())?
    .map_err(|e| format!("cannot stack the items with numpy.stack: {e}"))
}

/// Stacks same-shaped arrays along a new first axis, into a buffer from
/// spdl-io's pool (`spdl::io::memory`), where batches NumPy freed return.
fn stack<'a, D>(
    items: &'a [Item],
    view: impl Fn(&'a Item) -> Option<ArrayView<'a, u8, D>>,
) -> Result<ndarray::Array<u8, D::Larger>, String>
where
    D: Dimension,
    D::Larger: ndarray::RemoveAxis,
{
    let views: Vec<_> = items
        .iter()
        .map(|i| view(i).ok_or("collate needs items of one kind (all images, all clips or all audio)"))
        .collect::<Result<_, _>>()?;
    let first = views.first().ok_or("collate needs at least one item")?;
    if let Some(other) = views.iter().find(|v| v.shape() != first.shape()) {
        return Err(format!(
            "cannot stack items of different shapes: {:?} and {:?}",
            first.shape(),
            other.shape()
        ));
    }
    let mut shape = first.raw_dim().insert_axis(Axis(0));
    shape[0] = views.len();
    let mut batch = ndarray::Array::from_shape_vec(shape.clone(), pooled_zeros(shape.size())?)
        .map_err(|e| format!("cannot stack the items: {e}"))?;
    for (mut slot, item) in batch.outer_iter_mut().zip(&views) {
        slot.assign(item);
    }
    Ok(batch)
}

/// `len` zeros from spdl-io's buffer pool.
fn pooled_zeros<T: spdl::io::memory::Pooled>(len: usize) -> Result<Vec<T>, String> {
    spdl::io::memory::zeroed(len).map_err(|n| format!("cannot allocate {n} bytes for the batch"))
}

/// Audio of one channel count padded to the longest, with the lengths.
fn pad_audio(items: &[Item]) -> Result<Item, String> {
    let clips: Vec<&Array2<f32>> = items
        .iter()
        .map(|i| match i {
            Item::Audio(a) => Ok(a),
            _ => Err("collate needs items of one kind (all images, all clips or all audio)"),
        })
        .collect::<Result<_, _>>()?;
    let channels = clips[0].nrows();
    if let Some(other) = clips.iter().find(|a| a.nrows() != channels) {
        return Err(format!(
            "cannot batch audio with {channels} and {} channels: pass channels= to decode_audio",
            other.nrows()
        ));
    }
    let longest = clips.iter().map(|a| a.ncols()).max().unwrap_or(0);
    let shape = (clips.len(), channels, longest);
    let mut batch = Array3::from_shape_vec(shape, pooled_zeros(clips.len() * channels * longest)?)
        .map_err(|e| format!("cannot batch the audio: {e}"))?;
    for (mut slot, clip) in batch.outer_iter_mut().zip(&clips) {
        slot.slice_mut(s![.., ..clip.ncols()]).assign(clip);
    }
    let lengths = clips.iter().map(|a| a.ncols() as i64).collect();
    Ok(Item::AudioBatch(batch, lengths))
}

/// Shard samples as one sample whose fields are collated (or listed).
fn collate_samples(items: Vec<Item>) -> Result<Item, String> {
    let mut keys = Vec::new();
    let mut urls = Vec::new();
    let mut columns: Vec<(String, Vec<Item>)> = Vec::new();
    for item in items {
        let Item::Sample { url, key, fields } = item else {
            return Err("collate needs items of one kind (all shard samples)".into());
        };
        if columns.is_empty() {
            columns = fields.iter().map(|(n, _)| (n.clone(), Vec::new())).collect();
        }
        if fields.len() != columns.len() || fields.iter().zip(&columns).any(|((a, _), (b, _))| a != b) {
            return Err(format!(
                "{url}: sample {key} has other fields than the first sample of its group"
            ));
        }
        for ((_, value), (_, column)) in fields.into_iter().zip(columns.iter_mut()) {
            column.push(value);
        }
        keys.push(key);
        urls.push(url);
    }
    let fields = columns
        .into_iter()
        .map(|(name, column)| {
            let stackable = matches!(
                column.first(),
                Some(Item::Image(_) | Item::Frames(_) | Item::Audio(_) | Item::Array(_))
            );
            let value = if stackable {
                collate_group(column)?
            } else {
                Item::List(column)
            };
            Ok((name, value))
        })
        .collect::<Result<_, String>>()?;
    Ok(Item::Sample {
        url: urls.join(","),
        key: keys.join(","),
        fields,
    })
}

/// The elements of a group, for `disaggregate`.
pub(crate) fn elements(item: Item) -> Result<Vec<Item>, String> {
    match item {
        Item::List(items) => Ok(items),
        Item::Object(obj) => with_python(|py| {
            let iter = obj.bind(py).try_iter().map_err(|e| e.to_string())?;
            iter.map(|o| o.map(Item::from_py).map_err(|e| e.to_string())).collect()
        })
        .unwrap_or_else(|| Err("the interpreter is shutting down".into())),
        _ => Err("disaggregate needs a list (from aggregate) or a Python iterable".into()),
    }
}

/// Groups items into `Item::List`s of `n`.
pub(crate) struct ListAggregator {
    pub(crate) n: usize,
    pub(crate) drop_last: bool,
    pub(crate) group: Vec<Item>,
}

impl sp::Aggregator<Item> for ListAggregator {
    type Output = Item;

    fn push(&mut self, item: Item) -> Option<Item> {
        self.group.push(item);
        (self.group.len() >= self.n).then(|| Item::List(std::mem::take(&mut self.group)))
    }

    fn finish(&mut self) -> Option<Item> {
        (!self.group.is_empty() && !self.drop_last).then(|| Item::List(std::mem::take(&mut self.group)))
    }
}

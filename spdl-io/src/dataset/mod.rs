//! Datasets: the media files under a folder or a URL prefix
//! ([`list_dataset`], [`list_store`]), ImageNet-style class folders
//! ([`class_folders`]), and webdataset tar shards streamed sample by sample
//! ([`ShardReader`]). They turn a dataset into [`Source`](crate::source::Source)s;
//! nothing here decodes media.

mod listing;
mod shard;

#[cfg(feature = "remote")]
pub use listing::list_store;
pub use listing::{class_folders, list_dataset, list_dataset_with, ClassFolders, DatasetItem};
pub use shard::{ShardReader, ShardSample};

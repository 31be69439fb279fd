//! Object storage: `s3://`, `gs://`, `az://`, `http(s)://` and `file://`
//! URLs read through `object_store`, with retries, timeouts, a concurrency
//! limit, and counters of requests and bytes fetched.
//!
//! `object_store` is async. Every request runs on one small tokio runtime
//! owned by this module (created on first use, rebuilt in a forked child),
//! so the same calls serve async callers (the pipeline awaits
//! [`Store::get`]) and blocking ones (the demuxer's ranged reads, through
//! [`Store::get_blocking`]) without ever blocking a runtime worker of the
//! caller's.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{
    ClientOptions, GetOptions, ObjectStore, ObjectStoreExt, ObjectStoreScheme, RetryConfig, WriteMultipart,
};
use url::Url;

use super::path::has_extension;
use crate::error::{Error, Result};

/// How a [`Store`] talks to its server.
///
/// Credentials and endpoints come from the usual environment variables
/// (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_REGION`, `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_NAME`,
/// ...), then from [`StoreConfig::options`] (the same keys, lower case,
/// as `object_store` spells them: `aws_endpoint`, `aws_allow_http`).
///
/// ```
/// use std::time::Duration;
/// let config = spdl_io::StoreConfig::default()
///     .with_timeout(Duration::from_secs(10))
///     .with_max_retries(3)
///     .with_option("aws_region", "eu-west-1");
/// assert_eq!(config.max_retries, 3);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreConfig {
    /// Timeout of one request, including reading its body. Default: 30 s.
    pub timeout: Duration,
    /// Timeout for establishing a connection. Default: 5 s.
    pub connect_timeout: Duration,
    /// Retries of a failed request (5xx, connection errors, timeouts),
    /// with exponential backoff. Default: 5.
    pub max_retries: usize,
    /// First backoff delay; doubles up to 4 s. Default: 50 ms.
    pub initial_backoff: Duration,
    /// Give up retrying after this long. Default: 60 s.
    pub retry_timeout: Duration,
    /// Most requests in flight at once on this store. Default: 64.
    pub max_concurrency: usize,
    /// Smallest ranged read when demuxing remote media; the window doubles
    /// (up to 16x) while reads are sequential. Default: 256 KiB.
    pub read_ahead: usize,
    /// Extra `object_store` configuration keys and values.
    pub options: Vec<(String, String)>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_retries: 5,
            initial_backoff: Duration::from_millis(50),
            retry_timeout: Duration::from_secs(60),
            max_concurrency: 64,
            read_ahead: 256 << 10,
            options: Vec::new(),
        }
    }
}

impl StoreConfig {
    /// Sets [`StoreConfig::timeout`].
    #[must_use]
    pub fn with_timeout(mut self, v: Duration) -> Self {
        self.timeout = v;
        self
    }
    /// Sets [`StoreConfig::connect_timeout`].
    #[must_use]
    pub fn with_connect_timeout(mut self, v: Duration) -> Self {
        self.connect_timeout = v;
        self
    }
    /// Sets [`StoreConfig::max_retries`].
    #[must_use]
    pub fn with_max_retries(mut self, v: usize) -> Self {
        self.max_retries = v;
        self
    }
    /// Sets [`StoreConfig::retry_timeout`].
    #[must_use]
    pub fn with_retry_timeout(mut self, v: Duration) -> Self {
        self.retry_timeout = v;
        self
    }
    /// Sets [`StoreConfig::max_concurrency`].
    #[must_use]
    pub fn with_max_concurrency(mut self, v: usize) -> Self {
        self.max_concurrency = v.max(1);
        self
    }
    /// Sets [`StoreConfig::read_ahead`].
    #[must_use]
    pub fn with_read_ahead(mut self, v: usize) -> Self {
        self.read_ahead = v.max(4096);
        self
    }
    /// Adds an `object_store` configuration key (for example
    /// `("aws_endpoint", "http://127.0.0.1:9000")`).
    #[must_use]
    pub fn with_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.push((key.into(), value.into()));
        self
    }
}

/// Requests and bytes a [`Store`] has fetched so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchStats {
    /// Successful GET requests (whole or ranged).
    pub requests: u64,
    /// Body bytes received.
    pub bytes: u64,
}

/// One object listed under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectEntry {
    /// The full URL of the object.
    pub url: String,
    /// The key relative to the listed prefix (`n01440764/img_1.jpg`).
    pub relative: String,
    /// Size in bytes.
    pub size: u64,
}

/// A connection to one bucket, container or HTTP origin.
///
/// Cheap to clone: clones share the client, the concurrency limit and the
/// counters. Stores belong to the process that made them: in a forked
/// child, open a new one (the default stores used for plain URLs are
/// rebuilt automatically).
///
/// ```no_run
/// use spdl_io::{Store, StoreConfig};
/// let store = Store::open("s3://my-bucket", &StoreConfig::default())?;
/// let image = spdl_io::load_image(store.source("train/0001.jpg"), &Default::default())?;
/// println!("{} bytes fetched", store.stats().bytes);
/// # Ok::<(), spdl_io::Error>(())
/// ```
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    /// `scheme://authority/` with a trailing slash.
    base: String,
    read_ahead: usize,
    limit: Arc<tokio::sync::Semaphore>,
    requests: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

fn invalid_url(url: &str, reason: impl std::fmt::Display) -> Error {
    Error::InvalidConfig(format!("{url}: not a usable storage URL: {reason}"))
}

/// What a store for `url` serves: `scheme://authority/`; for an HTTP URL
/// with a query (a pre-signed or tokenised link) the URL itself, since a
/// query cannot be part of an object path (its `?` would be escaped).
fn base_of(url: &Url) -> String {
    match url.query() {
        Some(_) if matches!(url.scheme(), "http" | "https") => url.to_string(),
        _ => format!("{}/", &url[..url::Position::BeforePath]),
    }
}

impl Store {
    /// Opens the store that serves `url` (only its scheme and bucket or
    /// host are used: `s3://bucket`, `https://example.com`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an unknown scheme or a bad option.
    pub fn open(url: &str, config: &StoreConfig) -> Result<Store> {
        let parsed = Url::parse(url).map_err(|e| invalid_url(url, e))?;
        let (scheme, _) = ObjectStoreScheme::parse(&parsed).map_err(|e| invalid_url(url, e))?;
        let base = base_of(&parsed);
        let inner = build_store(&scheme, &base, config).map_err(|e| invalid_url(url, e))?;
        Ok(Store {
            inner,
            base,
            read_ahead: config.read_ahead,
            limit: Arc::new(tokio::sync::Semaphore::new(config.max_concurrency)),
            requests: Arc::default(),
            bytes: Arc::default(),
        })
    }

    /// The store for `url` with the default configuration, shared by every
    /// caller in this process (rebuilt after a fork).
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn for_url(url: &str) -> Result<Store> {
        let parsed = Url::parse(url).map_err(|e| invalid_url(url, e))?;
        let base = base_of(&parsed);
        let mut cache = DEFAULT_STORES.lock().unwrap_or_else(|e| e.into_inner());
        let pid = std::process::id();
        if cache.0 != pid {
            *cache = (pid, HashMap::new());
        }
        if let Some(store) = cache.1.get(&base) {
            return Ok(store.clone());
        }
        let store = Store::open(url, &StoreConfig::default())?;
        if parsed.query().is_none() {
            cache.1.insert(base, store.clone()); // not one per pre-signed URL
        }
        Ok(store)
    }

    /// Requests and bytes fetched by this store and its clones so far.
    pub fn stats(&self) -> FetchStats {
        FetchStats {
            requests: self.requests.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn read_ahead(&self) -> usize {
        self.read_ahead
    }

    /// The full URL of `key` (a path relative to the bucket or origin, or
    /// a full URL of this store).
    pub(crate) fn url_of(&self, key: &str) -> String {
        if key.contains("://") {
            key.to_string()
        } else {
            format!("{}{}", self.base, key.trim_start_matches('/'))
        }
    }

    /// The object path of a full URL or key of this store.
    fn path_of(&self, url: &str) -> Result<ObjectPath> {
        if Url::parse(url).is_ok_and(|u| u.as_str() == self.base) {
            return Ok(ObjectPath::default()); // the store's own URL (one with a query)
        }
        let key = url.strip_prefix(&self.base).unwrap_or(url).trim_start_matches('/');
        // An HTTP path is percent-encoded; an object key (`s3://bucket/key`)
        // is literal, as the AWS CLI reads it and as listings return it.
        let path = match self.base.starts_with("http") {
            true => ObjectPath::from_url_path(key),
            false => ObjectPath::parse(key),
        };
        path.map_err(|e| invalid_url(url, e))
    }

    /// Runs one request on the I/O runtime under the concurrency limit.
    async fn request<T, F>(&self, url: &str, call: impl FnOnce(Arc<dyn ObjectStore>, ObjectPath) -> F) -> Result<T>
    where
        F: Future<Output = object_store::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let path = self.path_of(url)?;
        let future = call(self.inner.clone(), path);
        let limit = self.limit.clone();
        let task = io_runtime().spawn(async move {
            let _permit = limit.acquire_owned().await;
            future.await
        });
        match task.await {
            Ok(result) => result.map_err(|e| fetch_error(url, e)),
            Err(e) => Err(Error::Remote {
                src: url.into(),
                source: Box::new(e),
            }),
        }
    }

    fn count(&self, data: &Bytes) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
    }

    /// Fetches a whole object.
    ///
    /// # Errors
    /// [`Error::NotFound`] if it does not exist, [`Error::Remote`] when the
    /// request failed after retries (naming the URL and the cause).
    pub async fn get(&self, url: &str) -> Result<Bytes> {
        Ok(self.get_sized(url, None, u64::MAX).await?.0)
    }

    /// One GET (whole, or `range`) returning the body and the object's
    /// total size, so no separate HEAD request is needed. An object larger
    /// than `max_size` is refused from the response headers, before its
    /// body is read.
    pub(crate) async fn get_sized(&self, url: &str, range: Option<Range<u64>>, max_size: u64) -> Result<(Bytes, u64)> {
        let (data, size) = self
            .request(url, move |store, path| async move {
                let options = GetOptions {
                    range: range.map(Into::into),
                    ..Default::default()
                };
                let result = store.get_opts(&path, options).await?;
                let size = result.meta.size;
                if size > max_size {
                    return Ok((None, size));
                }
                Ok((Some(result.bytes().await?), size))
            })
            .await?;
        let data = data.ok_or_else(|| Error::Limit {
            src: url.into(),
            what: "input size in bytes",
            value: size,
            limit: max_size,
        })?;
        self.count(&data);
        Ok((data, size))
    }

    /// The first `len` bytes of an object and its total size, in one
    /// ranged GET; `None` when the server does not serve ranges
    /// (`object_store`'s `NotSupported`, as `python -m http.server` gives).
    pub(crate) fn get_first_blocking(&self, url: &str, len: u64) -> Result<Option<(Bytes, u64)>> {
        let first = block_on(self.request(url, move |store, path| async move {
            let options = GetOptions {
                range: Some((0..len).into()),
                ..Default::default()
            };
            match store.get_opts(&path, options).await {
                Err(object_store::Error::NotSupported { .. }) => Ok(None),
                Err(e) => Err(e),
                Ok(result) => {
                    let size = result.meta.size;
                    Ok(Some((result.bytes().await?, size)))
                }
            }
        }))?;
        if let Some((data, _)) = &first {
            self.count(data);
        }
        Ok(first)
    }

    /// [`Store::get_sized`] for blocking callers.
    pub(crate) fn get_sized_blocking(
        &self,
        url: &str,
        range: Option<Range<u64>>,
        max_size: u64,
    ) -> Result<(Bytes, u64)> {
        block_on(self.get_sized(url, range, max_size))
    }

    /// Fetches `range` (bytes) of an object.
    ///
    /// # Errors
    /// As [`Store::get`].
    pub async fn get_range(&self, url: &str, range: Range<u64>) -> Result<Bytes> {
        Ok(self.get_sized(url, Some(range), u64::MAX).await?.0)
    }

    /// The size of an object in bytes.
    ///
    /// # Errors
    /// As [`Store::get`].
    pub async fn size(&self, url: &str) -> Result<u64> {
        let meta = self
            .request(url, |store, path| async move { store.head(&path).await })
            .await?;
        Ok(meta.size)
    }

    /// Lists the objects under `prefix` (a URL of this store) whose names
    /// end with one of `extensions` (case-insensitive; empty: all), sorted
    /// by URL.
    ///
    /// # Errors
    /// As [`Store::get`].
    pub async fn list(&self, prefix: &str, extensions: &[&str]) -> Result<Vec<ObjectEntry>> {
        let dir = format!("{}/", self.url_of(prefix).trim_end_matches('/'));
        let metas = self
            .request(&dir, |store, path| async move {
                let prefix = (!path.as_ref().is_empty()).then_some(path);
                let mut stream = store.list(prefix.as_ref());
                let mut metas = Vec::new();
                while let Some(meta) = stream.next().await {
                    metas.push(meta?);
                }
                Ok(metas)
            })
            .await?;
        let mut entries: Vec<ObjectEntry> = metas
            .into_iter()
            .map(|m| {
                let url = format!("{}{}", self.base, m.location);
                let relative = url.strip_prefix(&dir).unwrap_or(&url).to_string();
                ObjectEntry {
                    url,
                    relative,
                    size: m.size,
                }
            })
            .filter(|e| has_extension(&e.url, extensions))
            .collect();
        entries.sort_by(|a, b| a.url.cmp(&b.url));
        Ok(entries)
    }

    /// [`Store::get`] for blocking callers (never call it on an async
    /// runtime's worker thread).
    ///
    /// # Errors
    /// As [`Store::get`].
    pub fn get_blocking(&self, url: &str) -> Result<Bytes> {
        block_on(self.get(url))
    }

    /// [`Store::get_range`] for blocking callers.
    ///
    /// # Errors
    /// As [`Store::get`].
    pub fn get_range_blocking(&self, url: &str, range: Range<u64>) -> Result<Bytes> {
        block_on(self.get_range(url, range))
    }

    /// [`Store::size`] for blocking callers.
    ///
    /// # Errors
    /// As [`Store::get`].
    pub fn size_blocking(&self, url: &str) -> Result<u64> {
        block_on(self.size(url))
    }

    /// [`Store::list`] for blocking callers.
    ///
    /// # Errors
    /// As [`Store::get`].
    pub fn list_blocking(&self, prefix: &str, extensions: &[&str]) -> Result<Vec<ObjectEntry>> {
        block_on(self.list(prefix, extensions))
    }
}

/// The size of one uploaded part (S3 wants at least 5 MiB but for the last).
const PART_SIZE: usize = 8 << 20;
/// Parts uploading at once; a write waits while this many are in flight.
const PARTS_IN_FLIGHT: usize = 2;

/// A streaming multipart upload of one object (see [`super::sink`]).
pub(crate) struct ObjectUpload {
    /// `None` once finished or aborted.
    upload: Option<WriteMultipart>,
    url: String,
}

impl Store {
    /// Starts a multipart upload of `url`.
    pub(crate) fn upload(&self, url: &str) -> Result<ObjectUpload> {
        let upload = block_on(self.request(url, |store, path| async move { store.put_multipart(&path).await }))
            .map_err(|e| Error::write(url, e))?;
        Ok(ObjectUpload {
            upload: Some(WriteMultipart::new_with_chunk_size(upload, PART_SIZE)),
            url: url.into(),
        })
    }
}

impl ObjectUpload {
    /// Buffers `data`, starting the upload of every part it fills after
    /// waiting (on this thread) until fewer than [`PARTS_IN_FLIGHT`] are
    /// in flight.
    pub(crate) fn write(&mut self, data: &[u8]) -> Result<()> {
        let Some(upload) = self.upload.as_mut() else {
            return Err(Error::write(&self.url, "the upload has ended"));
        };
        block_on(upload.wait_for_capacity(PARTS_IN_FLIGHT)).map_err(|e| Error::write(&self.url, e))?;
        // Parts are spawned as tasks of the I/O runtime.
        let _runtime = io_runtime().enter();
        upload.write(data);
        Ok(())
    }

    /// Uploads the last part and completes the upload (aborting it on
    /// failure): the object exists from here on.
    pub(crate) fn finish(mut self) -> Result<()> {
        let upload = self
            .upload
            .take()
            .ok_or_else(|| Error::write(&self.url, "the upload has ended"))?;
        let task = io_runtime().spawn(upload.finish());
        match block_on(task) {
            Ok(result) => result.map(drop).map_err(|e| Error::write(&self.url, e)),
            Err(e) => Err(Error::write(&self.url, e)),
        }
    }
}

impl Drop for ObjectUpload {
    /// An upload not finished is aborted (its parts deleted), in the
    /// background.
    fn drop(&mut self) {
        if let Some(upload) = self.upload.take() {
            io_runtime().spawn(upload.abort());
        }
    }
}

fn fetch_error(url: &str, e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::NotFound { src: url.into() },
        e => Error::Remote {
            src: url.into(),
            source: Box::new(e),
        },
    }
}

fn build_store(
    scheme: &ObjectStoreScheme,
    base: &str,
    config: &StoreConfig,
) -> object_store::Result<Arc<dyn ObjectStore>> {
    let retry = RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: config.initial_backoff,
            max_backoff: Duration::from_secs(4),
            base: 2.0,
        },
        max_retries: config.max_retries,
        retry_timeout: config.retry_timeout,
    };
    let env = |prefix: &str| -> Vec<(String, String)> {
        std::env::vars()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .chain(config.options.iter().cloned())
            .collect()
    };
    let plain_http = |options: &[(String, String)]| {
        base.starts_with("http://")
            || options
                .iter()
                .any(|(k, v)| k.contains("endpoint") && v.starts_with("http://"))
    };
    let client = |options: &[(String, String)]| {
        ClientOptions::new()
            .with_timeout(config.timeout)
            .with_connect_timeout(config.connect_timeout)
            .with_allow_http(plain_http(options))
    };
    macro_rules! build {
        ($builder:ty, $options:expr) => {{
            let options = $options;
            let builder = <$builder>::new()
                .with_client_options(client(&options))
                .with_retry(retry);
            let builder = options.iter().fold(builder, |b, (k, v)| match k.parse() {
                Ok(key) => b.with_config(key, v),
                Err(_) => b,
            });
            Arc::new(builder.with_url(base).build()?) as Arc<dyn ObjectStore>
        }};
    }
    Ok(match scheme {
        ObjectStoreScheme::AmazonS3 => build!(object_store::aws::AmazonS3Builder, env("AWS_")),
        ObjectStoreScheme::GoogleCloudStorage => build!(object_store::gcp::GoogleCloudStorageBuilder, env("GOOGLE_")),
        ObjectStoreScheme::MicrosoftAzure => build!(object_store::azure::MicrosoftAzureBuilder, env("AZURE_")),
        ObjectStoreScheme::Http => build!(object_store::http::HttpBuilder, config.options.clone()),
        ObjectStoreScheme::Local => Arc::new(object_store::local::LocalFileSystem::new()),
        other => {
            return Err(object_store::Error::NotSupported {
                source: format!("scheme {other:?}").into(),
            })
        }
    })
}

type StoreCache = (u32, HashMap<String, Store>);
static DEFAULT_STORES: LazyLock<Mutex<StoreCache>> = LazyLock::new(Mutex::default);
static IO_RUNTIME: Mutex<Option<(u32, tokio::runtime::Handle)>> = Mutex::new(None);

/// The runtime every request runs on: two worker threads, created on first
/// use and rebuilt in a forked child (whose copy of the parent's runtime has
/// no threads; it is leaked, not dropped, as dropping would wait for them).
fn io_runtime() -> tokio::runtime::Handle {
    let mut slot = IO_RUNTIME.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if let Some((owner, handle)) = slot.as_ref() {
        if *owner == pid {
            return handle.clone();
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("spdl-io-fetch")
        .enable_all()
        .build()
        .expect("cannot start the I/O runtime's threads");
    let handle = runtime.handle().clone();
    std::mem::forget(runtime);
    *slot = Some((pid, handle.clone()));
    handle
}

/// Waits on this thread for a future whose requests run on the I/O
/// runtime (it only awaits their join handles, so any thread can drive it).
fn block_on<T>(future: impl Future<Output = T>) -> T {
    futures::executor::block_on(future)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_schemes_are_config_errors() {
        let err = Store::open("ftp://host/x", &StoreConfig::default()).unwrap_err();
        assert!(err.to_string().contains("ftp://host/x"), "{err}");
    }
}

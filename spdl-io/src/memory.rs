//! Output buffers: how large frame, image and audio arrays get their memory.
//!
//! Two measured costs shape this module (BENCHMARKS.md, "Output buffer
//! pool"). First touch of fresh memory costs a page fault per 4 KiB, so
//! buffers are hinted to use transparent huge pages (one fault per 2 MiB,
//! about 5x less kernel time for an 829 MB clip). And on a VM that hands
//! freed memory back to its host (virtio free page reporting), a fresh
//! buffer made of recently freed 2 MiB blocks costs 0.8-2.2 s of kernel
//! time for that clip instead of 0.1 s, at random. So buffers of [`POOL_MIN_BYTES`]
//! or more that a caller hands back with [`recycle`] are kept in a bounded,
//! process-wide pool ([`set_pool_limit`]) and serve the next request of a
//! similar size: a loop that drops each output before asking for the next
//! touches no new memory. The Python bindings
//! hand back every large array NumPy frees; Rust callers may call
//! [`recycle`] with `array.into_raw_vec_and_offset().0`.
//!
//! The pool is hand-rolled: the allocator crates on crates.io cache small
//! blocks per thread, none keeps and reuses blocks of hundreds of MB.
//!
//! Every use of a pool's lock is a `try_lock` that gives up when the lock
//! is busy (the buffer is freed, the request gets fresh memory, a trim
//! waits for the next `recycle`): a process forked while another thread
//! held the lock (DataLoader workers) then runs without the pool instead
//! of waiting forever.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

const HUGE_PAGE: usize = 2 << 20;

/// Most idle buffers kept per element type, whatever their size: enough for
/// a loop's outputs in flight, few enough that buffers of a size no request
/// takes do not pile up to the limit.
const MAX_IDLE_BUFFERS: usize = 8;

/// Buffers smaller than this (in bytes) are neither hinted nor pooled: the
/// system allocator already reuses them.
pub const POOL_MIN_BYTES: usize = 2 * HUGE_PAGE;

/// The element types whose buffers the pool keeps: the primitive numbers
/// arrays are made of.
pub trait Pooled: Copy + Default + Send + 'static + sealed::Sealed {
    #[doc(hidden)]
    fn idle() -> &'static Mutex<Vec<Vec<Self>>>;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! pooled {
    ($($t:ty),*) => {
        $(
            impl sealed::Sealed for $t {}
            impl Pooled for $t {
                fn idle() -> &'static Mutex<Vec<Vec<$t>>> {
                    static IDLE: Mutex<Vec<Vec<$t>>> = Mutex::new(Vec::new());
                    &IDLE
                }
            }
        )*
        /// Frees idle buffers of every type until at most `limit` bytes are idle.
        fn trim_all(limit: usize) {
            $(trim::<$t>(limit);)*
        }
        /// Idle buffers of every type.
        fn idle_buffers() -> usize {
            0 $(+ <$t>::idle().try_lock().map_or(0, |v| v.len()))*
        }
    };
}
pooled!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

/// `usize::MAX` until the first use picks the default.
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);
static IDLE_BYTES: AtomicUsize = AtomicUsize::new(0);
static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);

/// What the pool holds and how often it served a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Most bytes the pool keeps idle.
    pub limit_bytes: usize,
    /// Bytes of idle buffers held now.
    pub idle_bytes: usize,
    /// Idle buffers held now.
    pub idle_buffers: usize,
    /// Requests of [`POOL_MIN_BYTES`] or more served from the pool.
    pub hits: u64,
    /// Requests of [`POOL_MIN_BYTES`] or more that got fresh memory.
    pub misses: u64,
}

/// The pool's limit in bytes: by default 1/8 of physical memory, at most
/// 2 GiB (a 10 s 1080p clip at native size is 1.87 GB).
#[must_use]
pub fn pool_limit() -> usize {
    match LIMIT.load(Relaxed) {
        usize::MAX => {
            // SAFETY: sysconf reads two system constants; no memory is passed.
            #[allow(unsafe_code)]
            let (pages, page) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
            let physical = usize::try_from(pages.max(0))
                .unwrap_or(0)
                .saturating_mul(usize::try_from(page.max(0)).unwrap_or(0));
            let limit = (physical / 8).min(2 << 30);
            let _ = LIMIT.compare_exchange(usize::MAX, limit, Relaxed, Relaxed);
            LIMIT.load(Relaxed)
        }
        limit => limit,
    }
}

/// Sets the most bytes the pool keeps idle, freeing idle buffers beyond it
/// (oldest first); 0 turns pooling off.
pub fn set_pool_limit(bytes: usize) {
    LIMIT.store(bytes.min(usize::MAX - 1), Relaxed);
    trim_all(bytes);
}

/// The pool's limit, contents and counters.
#[must_use]
pub fn pool_stats() -> PoolStats {
    PoolStats {
        limit_bytes: pool_limit(),
        idle_bytes: IDLE_BYTES.load(Relaxed),
        idle_buffers: idle_buffers(),
        hits: HITS.load(Relaxed),
        misses: MISSES.load(Relaxed),
    }
}

/// Hands a buffer back for reuse. Buffers under [`POOL_MIN_BYTES`] or over
/// the limit are freed; to make room (in bytes, and at most 8 idle buffers
/// per type), the oldest idle buffers of the same type are freed.
pub fn recycle<T: Pooled>(mut data: Vec<T>) {
    let bytes = bytes_of(&data);
    let limit = pool_limit();
    if bytes < POOL_MIN_BYTES || bytes > limit {
        return;
    }
    let Ok(mut idle) = T::idle().try_lock() else { return };
    let mut freed = evict(&mut idle, |idle| {
        IDLE_BYTES.load(Relaxed) + bytes > limit && !idle.is_empty()
    });
    if IDLE_BYTES.load(Relaxed) + bytes <= limit {
        data.clear();
        IDLE_BYTES.fetch_add(bytes, Relaxed);
        idle.push(data);
    }
    // Buffers nobody takes (their user allocates elsewhere) go after a few.
    freed.extend(evict(&mut idle, |idle| idle.len() > MAX_IDLE_BUFFERS));
    drop(idle); // frees `freed` and a refused `data` outside the lock
}

/// Frees idle buffers of type `T`, oldest first, until at most `limit`
/// bytes are idle.
fn trim<T: Pooled>(limit: usize) {
    let Ok(mut idle) = T::idle().try_lock() else { return };
    let freed = evict(&mut idle, |idle| IDLE_BYTES.load(Relaxed) > limit && !idle.is_empty());
    drop(idle);
    drop(freed); // freed outside the lock
}

/// Takes idle buffers out, oldest first, while `over` holds, and returns
/// them for the caller to free once the lock is let go.
fn evict<T>(idle: &mut Vec<Vec<T>>, over: impl Fn(&Vec<Vec<T>>) -> bool) -> Vec<Vec<T>> {
    let mut freed = Vec::new();
    while over(idle) {
        let old = idle.remove(0);
        IDLE_BYTES.fetch_sub(bytes_of(&old), Relaxed);
        freed.push(old);
    }
    freed
}

fn bytes_of<T>(data: &Vec<T>) -> usize {
    data.capacity().saturating_mul(std::mem::size_of::<T>())
}

/// An idle buffer with room for `len` values and at most twice that, the
/// smallest such, or `None` (counted as a miss) for a pooled size.
fn take<T: Pooled>(len: usize) -> Option<Vec<T>> {
    if len.saturating_mul(std::mem::size_of::<T>()) < POOL_MIN_BYTES {
        return None;
    }
    let found = T::idle().try_lock().ok().and_then(|mut idle| {
        let fits = |v: &&Vec<T>| v.capacity() >= len && v.capacity() / 2 <= len;
        let best = idle
            .iter()
            .enumerate()
            .filter(|(_, v)| fits(v))
            .min_by_key(|(_, v)| v.capacity())?
            .0;
        Some(idle.swap_remove(best))
    });
    match &found {
        Some(data) => {
            IDLE_BYTES.fetch_sub(bytes_of(data), Relaxed);
            HITS.fetch_add(1, Relaxed);
        }
        None => {
            MISSES.fetch_add(1, Relaxed);
        }
    }
    found
}

/// An empty vector with room for `capacity` values: an idle pooled buffer,
/// or fresh memory hinted to use huge pages.
///
/// # Errors
/// Returns the requested size in bytes when the allocation fails.
pub(crate) fn with_capacity<T: Pooled>(capacity: usize) -> Result<Vec<T>, usize> {
    if let Some(data) = take(capacity) {
        return Ok(data);
    }
    fresh(capacity)
}

/// `len` zeroed values: an idle pooled buffer zeroed again, or fresh memory
/// hinted to use huge pages before the zeroing first touches it. What the
/// crate's decoders allocate their outputs with, and what code that builds
/// large arrays beside them (a pipeline's collate) should use, so that the
/// buffers it hands back are taken again.
///
/// ```
/// let frames = spdl_io::memory::zeroed::<u8>(8 << 20).unwrap();
/// assert!(frames.len() == 8 << 20 && frames.iter().all(|&v| v == 0));
/// spdl_io::memory::recycle(frames); // the next request of 4-8 MiB takes it
/// ```
///
/// # Errors
/// Returns the requested size in bytes when the allocation fails.
pub fn zeroed<T: Pooled>(len: usize) -> Result<Vec<T>, usize> {
    let mut data = match take(len) {
        Some(data) => data,
        None => fresh(len)?,
    };
    data.resize(len, T::default());
    Ok(data)
}

/// An empty vector of any element type with room for `capacity` values,
/// hinted to use huge pages (for buffers the pool does not keep).
///
/// # Errors
/// Returns the requested size in bytes when the allocation fails.
fn fresh<T>(capacity: usize) -> Result<Vec<T>, usize> {
    let mut data = Vec::new();
    let bytes = capacity.saturating_mul(std::mem::size_of::<T>());
    data.try_reserve_exact(capacity).map_err(|_| bytes)?;
    advise_huge_pages(&mut data);
    Ok(data)
}

/// Asks the kernel to back the vector's spare capacity with huge pages.
/// A hint only: any failure is ignored.
fn advise_huge_pages<T>(data: &mut Vec<T>) {
    let spare = data.spare_capacity_mut();
    let spare_bytes = std::mem::size_of_val(spare);
    if spare_bytes < POOL_MIN_BYTES {
        return;
    }
    let start = spare.as_mut_ptr() as usize;
    let aligned = start.next_multiple_of(HUGE_PAGE);
    let len = (start + spare_bytes - aligned) / HUGE_PAGE * HUGE_PAGE;
    // SAFETY: the range [aligned, aligned + len) lies inside the vector's
    // allocation (its spare capacity); MADV_HUGEPAGE changes no contents and
    // no mapping, only how the kernel backs pages on first touch.
    #[allow(unsafe_code)]
    unsafe {
        libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
}

#[cfg(test)]
mod tests {
    // These tests use element types no decoder in the crate's other tests
    // allocates (i8, i64), so the shared pool holds only their buffers.

    #[test]
    fn a_recycled_buffer_serves_the_next_request_zeroed_again() {
        let len = super::POOL_MIN_BYTES + 4096;
        let mut first = super::zeroed::<i8>(len).unwrap();
        first.fill(-1);
        let ptr = first.as_ptr();
        super::recycle(first);
        let second = super::zeroed::<i8>(len).unwrap();
        assert_eq!(second.as_ptr(), ptr, "not reused");
        assert_eq!(second.len(), len);
        assert!(second.iter().all(|&x| x == 0), "not zeroed again");
    }

    #[test]
    fn only_a_buffer_of_up_to_twice_the_request_is_reused() {
        let len = super::POOL_MIN_BYTES / 8 + 512; // i64: a pooled size
        let big = super::with_capacity::<i64>(3 * len).unwrap();
        let ptr = big.as_ptr();
        super::recycle(big);
        let small = super::with_capacity::<i64>(len).unwrap();
        assert_ne!(small.as_ptr(), ptr, "a buffer three times the size was reused");
        let fits = super::with_capacity::<i64>(2 * len).unwrap();
        assert_eq!(fits.as_ptr(), ptr, "a buffer 1.5 times the size was not reused");
        assert!(fits.is_empty() && fits.capacity() >= 2 * len);
    }

    #[test]
    fn small_buffers_are_not_kept() {
        let small = vec![0u64; 1024]; // bounded: a test constant
        let before = super::pool_stats().idle_bytes;
        super::recycle(small);
        assert!(super::pool_stats().idle_bytes <= before);
    }

    #[test]
    fn buffer_has_the_requested_capacity() {
        let v = super::with_capacity::<u8>(10 << 20).unwrap();
        assert!(v.capacity() >= 10 << 20);
        assert!(v.is_empty());
    }

    #[test]
    fn zeroed_samples_are_zero_and_failure_names_the_size() {
        let v = super::zeroed::<u16>(5 << 20).unwrap();
        assert_eq!(v.len(), 5 << 20);
        assert!(v.iter().all(|&x| x == 0));
        assert_eq!(super::zeroed::<u16>(usize::MAX / 2), Err(usize::MAX - 1));
    }
}

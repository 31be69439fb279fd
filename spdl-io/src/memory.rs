//! Output buffers: large frame, image and audio arrays are allocated with a
//! transparent huge page hint, so first touch costs one page fault per
//! 2 MiB instead of one per 4 KiB (measured: see BENCHMARKS.md).

/// An empty vector with room for `capacity` values, hinted to use huge
/// pages.
///
/// # Errors
/// Returns the requested size in bytes when the allocation fails.
pub(crate) fn with_capacity<T>(capacity: usize) -> Result<Vec<T>, usize> {
    let mut data = Vec::new();
    let bytes = capacity.saturating_mul(std::mem::size_of::<T>());
    data.try_reserve_exact(capacity).map_err(|_| bytes)?;
    advise_huge_pages(&mut data);
    Ok(data)
}

/// `len` zeroed samples, hinted to use huge pages before the zeroing first
/// touches them.
///
/// # Errors
/// Returns the requested size in bytes when the allocation fails.
pub(crate) fn zeroed<T: Clone + Default>(len: usize) -> Result<Vec<T>, usize> {
    let bytes = len.saturating_mul(std::mem::size_of::<T>());
    let mut data = Vec::new();
    data.try_reserve_exact(len).map_err(|_| bytes)?;
    advise_huge_pages(&mut data);
    data.resize(len, T::default());
    Ok(data)
}

const HUGE_PAGE: usize = 2 << 20;

/// Asks the kernel to back the vector's spare capacity with huge pages.
/// A hint only: any failure is ignored.
fn advise_huge_pages<T>(data: &mut Vec<T>) {
    let spare = data.spare_capacity_mut();
    let spare_bytes = std::mem::size_of_val(spare);
    if spare_bytes < 2 * HUGE_PAGE {
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

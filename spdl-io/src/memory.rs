//! Output buffers: large frame arrays are allocated with a transparent
//! huge page hint, so first touch costs one page fault per 2 MiB instead of
//! one per 4 KiB (measured: see BENCHMARKS.md).

/// A byte vector with room for `capacity` bytes, hinted to use huge pages.
///
/// # Errors
/// Returns the requested size when the allocation fails.
pub(crate) fn frame_buffer(capacity: usize) -> Result<Vec<u8>, usize> {
    let mut data = Vec::new();
    data.try_reserve_exact(capacity).map_err(|_| capacity)?;
    advise_huge_pages(&mut data);
    Ok(data)
}

const HUGE_PAGE: usize = 2 << 20;

/// Asks the kernel to back the vector's spare capacity with huge pages.
/// A hint only: any failure is ignored.
fn advise_huge_pages(data: &mut Vec<u8>) {
    let spare = data.spare_capacity_mut();
    if spare.len() < 2 * HUGE_PAGE {
        return;
    }
    let start = spare.as_mut_ptr() as usize;
    let aligned = start.next_multiple_of(HUGE_PAGE);
    let len = (start + spare.len() - aligned) / HUGE_PAGE * HUGE_PAGE;
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
        let v = super::frame_buffer(10 << 20).unwrap();
        assert!(v.capacity() >= 10 << 20);
        assert!(v.is_empty());
    }
}

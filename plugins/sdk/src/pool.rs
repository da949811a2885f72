//! Buffers lent to the host and taken back when it releases them.
//!
//! Every answer crosses the boundary in a buffer the host releases through the function that
//! came with it. The host copies an answer and releases it at once, so the large JSON of a
//! collector (megabytes for a scraped target) would otherwise be allocated, faulted in page by
//! page and freed at every call. Here a released buffer of at least [`MIN_KEPT`] bytes is kept
//! (at most [`KEPT`] of them per library) and the next answer is written into it.

use std::sync::{Mutex, PoisonError};

use crate::abi::OwnedBuffer;

/// Buffers smaller than this are freed: the allocator serves them cheaply.
const MIN_KEPT: usize = 64 * 1024;

/// How many released buffers a library keeps at most.
const KEPT: usize = 2;

#[derive(Debug, Default)]
struct Pool {
    /// Buffers lent to the host: address and capacity, to rebuild each when it comes back.
    lent: Vec<(usize, usize)>,
    /// Released buffers waiting for the next answer.
    spare: Vec<Vec<u8>>,
}

impl Pool {
    /// The largest kept buffer, emptied.
    fn take(&mut self) -> Option<Vec<u8>> {
        let largest = (0..self.spare.len()).max_by_key(|&i| self.spare[i].capacity())?;
        let mut buf = self.spare.swap_remove(largest);
        buf.clear();
        Some(buf)
    }

    /// Keeps `buf` when it is large enough and there is room; else hands it back to be freed.
    fn keep(&mut self, buf: Vec<u8>) -> Option<Vec<u8>> {
        if buf.capacity() < MIN_KEPT || self.spare.len() >= KEPT {
            return Some(buf);
        }
        self.spare.push(buf);
        None
    }
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    lent: Vec::new(),
    spare: Vec::new(),
});

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    // The pool holds no invariant a panic could break halfway.
    POOL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An empty buffer of at least `capacity` bytes: a kept one when there is one (the largest),
/// else a new one.
pub(crate) fn take(capacity: usize) -> Vec<u8> {
    let kept = pool().take();
    match kept {
        Some(mut buf) => {
            buf.reserve(capacity);
            buf
        }
        None => Vec::with_capacity(capacity),
    }
}

/// Keeps `buf` for a later [`take`] when it is large enough and there is room; frees it
/// otherwise (outside the lock).
pub(crate) fn give_back(buf: Vec<u8>) {
    let refused = pool().keep(buf);
    drop(refused);
}

/// Moves `bytes` into a buffer for the host, released by [`release`].
pub(crate) fn lend(bytes: Vec<u8>) -> OwnedBuffer {
    if bytes.is_empty() {
        return OwnedBuffer::empty();
    }
    let mut bytes = std::mem::ManuallyDrop::new(bytes);
    let (ptr, len, capacity) = (bytes.as_mut_ptr(), bytes.len(), bytes.capacity());
    pool().lent.push((ptr as usize, capacity));
    OwnedBuffer {
        ptr,
        len,
        release: Some(release),
    }
}

/// Takes back a buffer made by [`lend`]: kept for a later answer, or freed.
///
/// # Safety
///
/// `ptr` and `len` come from one [`lend`] of this library and are released once. A pointer this
/// library never lent is left alone (leaked rather than freed with a guessed size).
unsafe extern "C" fn release(ptr: *mut u8, len: usize) {
    if ptr.is_null() {
        return;
    }
    let mut pool = pool();
    let Some(i) = pool.lent.iter().position(|&(p, _)| p == ptr as usize) else {
        return;
    };
    let (_, capacity) = pool.lent.swap_remove(i);
    drop(pool);
    // SAFETY: `ptr`, `len` and `capacity` are the parts of a `Vec<u8>` that `lend` gave up in this
    // library (found in `lent`, removed from it so it is rebuilt once), allocated by this
    // library's allocator.
    let buf = unsafe { Vec::from_raw_parts(ptr, len, capacity) };
    give_back(buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_kept_buffer_is_reused_and_small_or_extra_ones_are_freed() {
        let mut pool = Pool::default();
        assert!(pool.take().is_none());
        assert!(
            pool.keep(Vec::with_capacity(16)).is_some(),
            "too small to keep"
        );
        let mut big = Vec::with_capacity(2 * MIN_KEPT);
        big.extend_from_slice(b"old answer");
        let addr = big.as_ptr();
        assert!(pool.keep(big).is_none());
        assert!(pool.keep(Vec::with_capacity(MIN_KEPT)).is_none());
        assert!(
            pool.keep(Vec::with_capacity(MIN_KEPT)).is_some(),
            "at most KEPT"
        );
        let again = pool.take().unwrap();
        assert_eq!(again.as_ptr(), addr, "the largest, the same memory");
        assert!(again.is_empty());
    }

    #[test]
    fn a_lent_buffer_comes_back_once_and_a_stranger_is_left_alone() {
        let mut big = Vec::with_capacity(MIN_KEPT);
        big.extend_from_slice(b"answer");
        let lent = lend(big);
        assert_eq!(lent.len, 6);
        let addr = lent.ptr as usize;
        assert!(pool().lent.iter().any(|&(p, _)| p == addr));
        // SAFETY: released once, by the function that came with it.
        unsafe { (lent.release.unwrap())(lent.ptr, lent.len) };
        assert!(!pool().lent.iter().any(|&(p, _)| p == addr), "taken back");
        assert!(lend(Vec::new()).release.is_none(), "nothing to release");
        let mut stranger = [1u8; 4];
        // SAFETY: never lent: found nowhere, so nothing is done with it.
        unsafe { release(stranger.as_mut_ptr(), 4) };
        assert_eq!(stranger, [1; 4]);
    }
}

//! The binaries' global allocator ([`MiMalloc`]: mimalloc, without the `mimalloc` crate's
//! detour through its aligned API), and allocator settings for the stage function, which
//! allocates and frees the same tens of megabytes on every invocation.
//!
//! A Lambda sandbox runs one invocation at a time and its memory is reserved for it whether
//! the process uses it or not, so returning freed memory to the kernel gains nothing: the next
//! invocation asks for it again, in system calls and page faults (the kernel zeroing each
//! page). Two allocators did so on every batch:
//! - mimalloc, the Rust allocator, "purges" freed pages with `madvise` (8 calls per batch);
//! - glibc malloc, which the C libraries use (zstd allocates its compression contexts, one per
//!   Parquet column written, with `malloc`), trims the top of its heap with `brk` whenever more
//!   than 128 KiB is free at the end: 33 `brk` calls per batch, 2 ms of system time, and
//!   300 page faults.
//!
//! Measured on the profiling example (`shared/examples/stage_once.rs`, 40 back-to-back
//! batches, CPU time, alternating runs): each setting saved 5–20%.
//!
//! [`keep_freed_memory`] turns both off. The process keeps its peak resident instead: the
//! profiling example (`shared/examples/stage_once.rs`) staging the 7.35 MB benchmark batch
//! five times peaks at 66 MB resident, 53 MB of it before staging (building the event), well
//! within the smallest 128 MB function.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_option_set, mi_option_t, mi_realloc,
    mi_realloc_aligned, mi_usable_size, mi_zalloc, mi_zalloc_aligned,
};

/// The global allocator of the Lambda binaries, their benchmarks and the profiling example:
/// mimalloc, asked through its plain API whenever that gives the alignment Rust asks for.
///
/// The `mimalloc` crate's allocator passes every request to `mi_malloc_aligned`. For an
/// alignment of 16 (any type holding an `i128`, such as [`crate::value::Value`]) mimalloc v3
/// serves that from the size's page only while the page has a free block ready; once the page
/// is full it does not look for a new page of that size but over-allocates in a larger size
/// class, and keeps doing so for every later request of the size (about 150 instructions
/// each, and a larger block). A batch's rows live until they are encoded, so their pages fill
/// up: 15,800 of the benchmark batch's allocations took that path. `mi_malloc` finds a new
/// page instead. Its blocks are always 8-aligned, and 16-aligned when the size is a multiple
/// of 16 (every size class from 16 bytes up is); the address is checked all the same, and a
/// misaligned block is given back for an aligned allocation.
pub struct MiMalloc;

/// mimalloc's blocks are at least this aligned, whatever their size.
const ALWAYS_ALIGNED: usize = 8;

/// Alignments up to this are tried with the plain API (mimalloc's `MI_MAX_ALIGN_SIZE`).
const PLAIN_ALIGN: usize = 16;

/// Whether `p` (possibly null) is aligned to `align`, a power of two.
#[inline]
fn aligned(p: *mut c_void, align: usize) -> bool {
    (p as usize) & (align - 1) == 0
}

// SAFETY: every block comes from mimalloc with at least the layout's size and alignment (the
// plain API's result is checked unless its alignment is guaranteed), and every block is
// released with `mi_free` or resized with mimalloc's `realloc`, which accept blocks from any
// of its allocation functions.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        if align <= PLAIN_ALIGN {
            // SAFETY: any size may be asked for; the result is checked below.
            let p = unsafe { mi_malloc(size) };
            if align <= ALWAYS_ALIGNED || aligned(p, align) {
                return p.cast();
            }
            // SAFETY: `p` is a live block from `mi_malloc`.
            unsafe { mi_free(p) };
        }
        // SAFETY: `align` is a power of two (a `Layout` guarantees it).
        unsafe { mi_malloc_aligned(size, align).cast() }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        if align <= PLAIN_ALIGN {
            // SAFETY: as in `alloc`.
            let p = unsafe { mi_zalloc(size) };
            if align <= ALWAYS_ALIGNED || aligned(p, align) {
                return p.cast();
            }
            // SAFETY: `p` is a live block from `mi_zalloc`.
            unsafe { mi_free(p) };
        }
        // SAFETY: as in `alloc`.
        unsafe { mi_zalloc_aligned(size, align).cast() }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: the caller passes a live block of this allocator.
        unsafe { mi_free(ptr.cast()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        if align <= ALWAYS_ALIGNED {
            // SAFETY: the caller passes a live block of this allocator; any block of mimalloc
            // is 8-aligned.
            return unsafe { mi_realloc(ptr.cast(), new_size).cast() };
        }
        if align <= PLAIN_ALIGN {
            // As `mi_realloc` does: a block that holds the new size and is not more than twice
            // as large stays where it is.
            // SAFETY: the caller passes a live block of this allocator.
            let usable = unsafe { mi_usable_size(ptr.cast()) };
            if new_size <= usable && new_size >= usable / 2 {
                return ptr;
            }
            // SAFETY: `align` is a `Layout`'s alignment and `new_size`, rounded up to it, does
            // not overflow `isize` (the caller's contract).
            let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, align) };
            // SAFETY: `new_layout` has a non-zero size (the caller's contract).
            let new = unsafe { self.alloc(new_layout) };
            if !new.is_null() {
                // SAFETY: both blocks are live, distinct, and hold at least this many bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    mi_free(ptr.cast());
                }
            }
            return new;
        }
        // SAFETY: the caller passes a live block of this allocator; `align` is a power of two.
        unsafe { mi_realloc_aligned(ptr.cast(), new_size, align).cast() }
    }
}

/// `mi_option_purge_delay` in `mi_option_e` (mimalloc v3's `mimalloc.h`, as vendored by
/// libmimalloc-sys 0.1.49, which names no constant for it). A test checks that this index
/// still has the purge delay's default.
const MI_OPTION_PURGE_DELAY: mi_option_t = 15;

/// glibc keeps up to this much free memory at the top of its heap instead of trimming it.
const GLIBC_TRIM_THRESHOLD: i32 = 256 << 20;

/// glibc serves requests below this from its heap (reused) rather than from fresh `mmap`s;
/// 32 MiB is the largest value glibc accepts on 64-bit.
const GLIBC_MMAP_THRESHOLD: i32 = 32 << 20;

/// Never return freed memory to the kernel: it is reused by the next allocations (and the
/// next invocation) without page faults. Call once at start, before the work. Returns whether
/// glibc accepted its settings (always `true` where glibc is not the C allocator).
#[allow(unsafe_code)]
pub fn keep_freed_memory() -> bool {
    // SAFETY: mimalloc options are plain integers, settable at any time from any thread.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    glibc_keep_freed_memory()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn glibc_keep_freed_memory() -> bool {
    // SAFETY: `mallopt` only changes malloc's tuning parameters; it takes malloc's own lock.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, GLIBC_TRIM_THRESHOLD) == 1
            && libc::mallopt(libc::M_MMAP_THRESHOLD, GLIBC_MMAP_THRESHOLD) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn glibc_keep_freed_memory() -> bool {
    true
}

/// mimalloc's current purge delay in milliseconds (-1: never), for the test.
#[cfg(test)]
#[allow(unsafe_code)]
#[allow(clippy::useless_conversion)] // `c_long` is `i64` on Linux, not everywhere.
fn purge_delay_ms() -> i64 {
    // SAFETY: as above; reading an option is always allowed.
    i64::from(unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes around mimalloc's size classes and page limits, powers of two or not.
    const SIZES: &[usize] = &[
        1, 7, 8, 15, 16, 24, 40, 48, 56, 96, 112, 432, 440, 1000, 1024, 4000, 65_536, 100_000,
    ];
    const ALIGNS: &[usize] = &[1, 2, 4, 8, 16, 32, 64, 128, 4096];

    #[allow(unsafe_code)]
    fn alloc(layout: Layout, zeroed: bool) -> *mut u8 {
        // SAFETY: every layout of the tests has a non-zero size.
        let p = unsafe {
            if zeroed {
                MiMalloc.alloc_zeroed(layout)
            } else {
                MiMalloc.alloc(layout)
            }
        };
        assert!(!p.is_null(), "{layout:?}");
        p
    }

    #[allow(unsafe_code)]
    fn free(p: *mut u8, layout: Layout) {
        // SAFETY: `p` is a live block of `MiMalloc` of this layout.
        unsafe { MiMalloc.dealloc(p, layout) }
    }

    #[allow(unsafe_code)]
    fn usable(p: *mut u8) -> usize {
        // SAFETY: `p` is a live mimalloc block.
        unsafe { mi_usable_size(p.cast()) }
    }

    #[test]
    #[allow(unsafe_code)]
    fn blocks_have_the_size_and_alignment_asked_for() {
        for &align in ALIGNS {
            for &size in SIZES {
                let layout = Layout::from_size_align(size, align).unwrap();
                for zeroed in [false, true] {
                    // Enough blocks to fill the size's pages, so fresh pages are used too.
                    let count = (256 * 1024 / size).clamp(4, 2000);
                    let blocks: Vec<*mut u8> = (0..count).map(|_| alloc(layout, zeroed)).collect();
                    for (i, &p) in blocks.iter().enumerate() {
                        assert_eq!(p as usize % align, 0, "{layout:?} block {i}");
                        assert!(usable(p) >= size, "{layout:?} block {i}");
                        // SAFETY: the block holds `size` bytes.
                        let bytes = unsafe { std::slice::from_raw_parts_mut(p, size) };
                        if zeroed {
                            assert!(bytes.iter().all(|&b| b == 0), "{layout:?} block {i}");
                        }
                        bytes.fill(i as u8);
                    }
                    for (i, &p) in blocks.iter().enumerate() {
                        // SAFETY: as above; no block overlaps another.
                        let bytes = unsafe { std::slice::from_raw_parts(p, size) };
                        assert!(bytes.iter().all(|&b| b == i as u8), "{layout:?} block {i}");
                        free(p, layout);
                    }
                }
            }
        }
    }

    #[test]
    #[allow(unsafe_code)]
    fn reallocation_keeps_the_contents_and_the_alignment() {
        // Growing and shrinking through in-place resizes and moves, for every alignment path.
        let steps = [16, 48, 40, 432, 4000, 440, 100_000, 96, 65_536, 16];
        for &align in &[8, 16, 64] {
            let mut layout = Layout::from_size_align(steps[0], align).unwrap();
            let mut p = alloc(layout, false);
            // SAFETY: the block holds `layout.size()` bytes.
            unsafe { std::ptr::write_bytes(p, 0xA5, layout.size()) };
            for &new_size in &steps[1..] {
                // SAFETY: `p` is a live block of this layout; `new_size` is non-zero.
                let q = unsafe { MiMalloc.realloc(p, layout, new_size) };
                assert!(!q.is_null());
                assert_eq!(q as usize % align, 0, "align {align}, {new_size} bytes");
                assert!(usable(q) >= new_size);
                let kept = layout.size().min(new_size);
                // SAFETY: the block holds at least `new_size` bytes.
                let bytes = unsafe { std::slice::from_raw_parts_mut(q, new_size) };
                assert!(
                    bytes[..kept].iter().all(|&b| b == 0xA5),
                    "align {align}: contents lost growing to {new_size}"
                );
                bytes.fill(0xA5);
                p = q;
                layout = Layout::from_size_align(new_size, align).unwrap();
            }
            free(p, layout);
        }
    }

    #[test]
    fn freed_memory_is_kept_and_the_option_is_the_purge_delay() {
        // The hard-coded index must name the purge delay: its default (1000 ms in
        // mimalloc v3's options.c) identifies it among the options, unless the environment
        // overrides it.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(
                purge_delay_ms(),
                1000,
                "option {MI_OPTION_PURGE_DELAY} is not the purge delay"
            );
        }
        assert!(keep_freed_memory(), "glibc refused its malloc settings");
        assert_eq!(purge_delay_ms(), -1);
    }
}

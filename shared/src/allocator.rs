//! Allocator settings for the stage function, which allocates and frees the same tens of
//! megabytes on every invocation.
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

use libmimalloc_sys::{mi_option_set, mi_option_t};

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

//! Settings of mimalloc, the allocator the Lambda binaries use.
//!
//! A Lambda sandbox runs one invocation at a time and its memory is reserved for it whether
//! the process uses it or not, so returning freed memory to the kernel gains nothing. mimalloc
//! does it by default ("purging" freed pages with `madvise`), and every invocation then
//! faults those pages back in, the kernel zeroing each one: about 7% of the stage benchmark's
//! time (`clear_page_erms` in its profile). [`keep_freed_memory`] turns purging off; the
//! process keeps its peak (about 64 MB resident for the 10k-record benchmark batch, within
//! the smallest 128 MB function).

use libmimalloc_sys::{mi_option_get, mi_option_set, mi_option_t};

/// `mi_option_purge_delay` in `mi_option_e` (mimalloc v3's `mimalloc.h`, as vendored by
/// libmimalloc-sys 0.1.49, which names no constant for it). A test checks that this index
/// still has the purge delay's default.
const MI_OPTION_PURGE_DELAY: mi_option_t = 15;

/// Never return freed memory to the kernel: it is reused by the next allocations (and the
/// next invocation) without page faults. Call once at start, before the work.
#[allow(unsafe_code)]
pub fn keep_freed_memory() {
    // SAFETY: mimalloc options are plain integers, settable at any time from any thread.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

/// mimalloc's current purge delay in milliseconds (-1: never).
#[allow(unsafe_code)]
#[allow(clippy::useless_conversion)] // `c_long` is `i64` on Linux, not everywhere.
pub fn purge_delay_ms() -> i64 {
    // SAFETY: as above; reading an option is always allowed.
    i64::from(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) })
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
        keep_freed_memory();
        assert_eq!(purge_delay_ms(), -1);
    }
}

//! Peak heap memory of the stage pipeline for one batch, by number of tables touched.
//! A counting allocator records the high-water mark of live heap bytes (the event JSON
//! itself included, as the Lambda runtime holds it too).
//! `cargo bench -p deltasink --bench stage_memory`

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

#[path = "support.rs"]
mod support;

struct Counting;

/// The allocator the Lambda binaries use; the counter wraps it. (Its own metadata and
/// retained pages are not counted: this is live heap, the figure that scales with input.)
static INNER: deltasink::allocator::MiMalloc = deltasink::allocator::MiMalloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// A GlobalAlloc impl is unsafe by definition; it only forwards to the system allocator.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { INNER.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { INNER.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { INNER.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size > layout.size() {
                let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                    - layout.size();
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn main() {
    let config = support::config();
    println!("| records | tables | event MB | peak heap MB | parquet KB |");
    println!("|---|---|---|---|---|");
    for (records, topics) in [(10_000, 1), (10_000, 3), (10_000, 30), (10_000, 300)] {
        let event = support::msk_event(records, topics);
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let out = support::stage_in_process(&config, &event);
        let peak = PEAK.load(Ordering::Relaxed) - base + event.len();
        println!(
            "| {records} | {topics} | {:.2} | {:.1} | {} |",
            event.len() as f64 / 1e6,
            peak as f64 / (1024.0 * 1024.0),
            out / 1024
        );
    }
}

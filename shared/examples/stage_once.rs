//! One run of the stage pipeline in-process (MSK event JSON in, Parquet bytes out) on the
//! benchmark's event, for instruction-count profiling:
//! `cargo build --profile profiling --example stage_once -p deltasink`, then
//! `valgrind --tool=callgrind --toggle-collect='*support::stage_in_process*' target/profiling/examples/stage_once [records] [topics] [iterations]`

#[path = "../benches/support.rs"]
mod support;

// The allocator the Lambda binaries use, with the stage function's settings.
#[global_allocator]
static GLOBAL: deltasink::allocator::MiMalloc = deltasink::allocator::MiMalloc;

fn main() {
    deltasink::allocator::keep_freed_memory();
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (records, topics, iterations) = (arg(1, 10_000), arg(2, 1), arg(3, 1));
    let config = support::config();
    let event = support::msk_event(records, topics);
    let mut out = 0;
    for _ in 0..iterations {
        out = support::stage_in_process(&config, &event);
    }
    println!("event {} bytes, parquet {} bytes", event.len(), out);
}

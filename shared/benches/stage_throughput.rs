//! Throughput of the stage pipeline in-process: MSK event JSON in, Parquet bytes out.
//! `cargo bench -p deltasink --bench stage_throughput`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

#[path = "support.rs"]
mod support;

// The allocator the Lambda binaries use, with the stage function's settings.
#[global_allocator]
static GLOBAL: deltasink::allocator::MiMalloc = deltasink::allocator::MiMalloc;

fn bench(c: &mut Criterion) {
    deltasink::allocator::keep_freed_memory();
    let config = support::config();
    let mut group = c.benchmark_group("stage");
    group.sample_size(30);
    for topics in [1, 3, 30] {
        let event = support::msk_event(10_000, topics);
        group.throughput(Throughput::Bytes(event.len() as u64));
        group.bench_function(format!("debezium_json_10k_{topics}_tables"), |b| {
            b.iter(|| support::stage_in_process(&config, &event))
        });
    }
    let avro = support::msk_avro_event(10_000);
    let avro_config = support::avro_config();
    let schemas = support::avro_schemas();
    group.throughput(Throughput::Bytes(avro.len() as u64));
    group.bench_function("debezium_avro_10k_1_table", |b| {
        b.iter(|| support::stage_in_process_with(&avro_config, &avro, &schemas))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

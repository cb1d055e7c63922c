//! Speed of the functional (bit-exact INT8) path: one B1-sized layer
//! (128 -> 128 channels at 56x56, 462 M MACs) and the whole `tiny` network at
//! 28x28, on the edge-fpga chip. Criterion reports images/s (elements); the
//! GMAC/s figure is that times the MACs per image printed first.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use repopt_int8::testutil::{chain_geometry, random_model, random_model_with};
use repopt_sim::{functional, ChipSpec};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let chip = ChipSpec::preset("edge-fpga").unwrap();
    let mut group = c.benchmark_group("functional");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));

    let layer_model = random_model_with(1, &chain_geometry(128, 56, &[(128, 1)]), 10);
    let layer = &layer_model.layers[0];
    let input: Vec<u8> = (0..56 * 56 * 128).map(|i| (i * 37 % 256) as u8).collect();
    eprintln!(
        "b1_layer_128x56: {} MACs per image",
        56u64 * 56 * 128 * 128 * 9
    );
    group.bench_function("b1_layer_128x56", |b| {
        b.iter(|| functional::run_layer(&chip, black_box(layer), black_box(&input)).unwrap())
    });

    let spec = repopt_spec::preset("tiny").unwrap();
    let tiny = random_model(2, &spec);
    let image: Vec<u8> = (0..28 * 28).map(|i| (i * 53 % 256) as u8).collect();
    eprintln!("tiny_network: {} MACs per image", spec.macs());
    group.bench_function("tiny_network", |b| {
        b.iter(|| functional::run_network(&chip, black_box(&tiny), black_box(&image)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Golden engine vs Candle INT8 engine (CPU) on the tiny preset with a random
//! INT8 model: 64 images per iteration.

use candle_core::Device;
use criterion::{criterion_group, criterion_main, Criterion};
use repopt_int8::golden;
use repopt_int8::testutil::{random_image, random_model};
use repopt_quant::CandleInt8;

fn engines(c: &mut Criterion) {
    let spec = repopt_spec::preset("tiny").unwrap();
    let model = random_model(1, &spec);
    let images: Vec<Vec<u8>> = (0..64).map(|k| random_image(k, &model)).collect();
    let pixels: Vec<u8> = images.iter().flatten().copied().collect();
    let engine = CandleInt8::new(&model, &Device::Cpu).unwrap();
    let mut g = c.benchmark_group("tiny-64-images");
    g.sample_size(10);
    g.bench_function("golden", |b| {
        b.iter(|| {
            for img in &images {
                golden::run_network(&model, img).unwrap();
            }
        })
    });
    g.bench_function("candle-cpu", |b| {
        b.iter(|| engine.run(&pixels, images.len(), false, 0).unwrap())
    });
    g.finish();
}

criterion_group!(benches, engines);
criterion_main!(benches);

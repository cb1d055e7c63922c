//! One training step (forward, backward, optimizer update) at batch 64 on
//! 28x28 grey images: RepOpt-VGG with RepOpt-SGD and RepVGG with SGD, both of
//! the `tiny` preset (the same deploy shape). `scripts/bench_vs_pytorch.sh`
//! runs this next to the same step in PyTorch and prints the ratios.

use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use repopt_data::Normalization;
use repopt_train::{Arch, Scales, TrainConfig, Trainer};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub const BATCH: usize = 64;

fn trainer(arch: Arch, model: &str) -> Trainer {
    let spec = repopt_spec::preset(model).unwrap();
    let mut config = TrainConfig::new(arch, spec.clone());
    let scales = (arch == Arch::RepOptVgg).then(|| Scales::initial(&spec));
    config.scales = scales.as_ref().map(|_| "initial".to_string());
    Trainer::new(
        config,
        Normalization::fashion_mnist(),
        scales.as_ref(),
        &Device::Cpu,
    )
    .unwrap()
}

fn batch() -> (Tensor, Vec<u32>) {
    let images: Vec<f32> = (0..BATCH * 28 * 28)
        .map(|i| ((i * 7919) % 255) as f32 / 255.0 - 0.5)
        .collect();
    let labels = (0..BATCH as u32).map(|i| i % 10).collect();
    (
        Tensor::from_vec(images, (BATCH, 28, 28, 1), &Device::Cpu).unwrap(),
        labels,
    )
}

fn train_step(c: &mut Criterion) {
    repopt_train::configure_cpu_threads();
    let (images, labels) = batch();
    let mut group = c.benchmark_group("train_step");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    for model in ["tiny", "small"] {
        for (arch, name) in [(Arch::RepOptVgg, "repopt_vgg"), (Arch::RepVgg, "repvgg")] {
            let mut t = trainer(arch, model);
            group.bench_function(format!("{name}_{model}_b{BATCH}"), |b| {
                b.iter(|| t.step(&images, &labels, 0.01).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, train_step);
criterion_main!(benches);

//! Runs N training steps of one model at batch 64, for profilers
//! (`perf stat`, `valgrind --tool=callgrind`) that want a fixed amount of work.
//! Usage: step_loop [repopt-vgg|repvgg|hyper-search] [tiny|small|...] [steps]

use candle_core::{Device, Tensor};
use repopt_data::Normalization;
use repopt_train::{Arch, Scales, TrainConfig, Trainer};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    repopt_train::configure_cpu_threads();
    let args: Vec<String> = std::env::args().collect();
    let arch = match args.get(1).map(String::as_str).unwrap_or("repopt-vgg") {
        "repvgg" => Arch::RepVgg,
        "hyper-search" => Arch::HyperSearch,
        _ => Arch::RepOptVgg,
    };
    let spec =
        repopt_spec::preset(args.get(2).map(String::as_str).unwrap_or("tiny")).expect("preset");
    let steps: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20);
    let scales = (arch == Arch::RepOptVgg).then(|| Scales::initial(&spec));
    let mut config = TrainConfig::new(arch, spec.clone());
    config.scales = scales.as_ref().map(|_| "initial".into());
    let mut t = Trainer::new(
        config,
        Normalization::identity(spec.in_channels),
        scales.as_ref(),
        &Device::Cpu,
    )
    .unwrap();
    let n = 64;
    let px = spec.image_size * spec.image_size * spec.in_channels;
    let images: Vec<f32> = (0..n * px)
        .map(|i| ((i * 7919) % 255) as f32 / 255.0 - 0.5)
        .collect();
    let s = spec.image_size;
    let images = Tensor::from_vec(images, (n, s, s, spec.in_channels), &Device::Cpu).unwrap();
    let labels: Vec<u32> = (0..n as u32).map(|i| i % spec.classes as u32).collect();
    // Untimed warm-up, as the PyTorch side does: the first steps pay for
    // allocator growth and thread start-up.
    for _ in 0..5 {
        t.step(&images, &labels, 0.01).unwrap();
    }
    let start = std::time::Instant::now();
    for _ in 0..steps {
        t.step(&images, &labels, 0.01).unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{:.1} img/s ({steps} steps of {n})",
        (steps * n) as f64 / secs
    );
}

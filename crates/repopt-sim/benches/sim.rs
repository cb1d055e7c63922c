//! Speed of the two timing levels on B1 at 224x224 (one frame, every chip preset).

use criterion::{criterion_group, criterion_main, Criterion};
use repopt_sim::{analytic, event, ChipSpec, Workload};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let w = Workload::from_spec(&repopt_spec::preset("B1").unwrap());
    for chip_name in ["edge-fpga", "asic"] {
        let chip = ChipSpec::preset(chip_name).unwrap();
        c.bench_function(&format!("analytic_quick_b1_{chip_name}"), |b| {
            b.iter(|| analytic::quick(black_box(&chip), black_box(&w)))
        });
        c.bench_function(&format!("analytic_report_b1_{chip_name}"), |b| {
            b.iter(|| analytic::simulate(black_box(&chip), black_box(&w)).unwrap())
        });
        c.bench_function(&format!("event_b1_{chip_name}"), |b| {
            b.iter(|| event::simulate(black_box(&chip), black_box(&w)).unwrap())
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = bench
}
criterion_main!(benches);

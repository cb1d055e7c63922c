//! The analytic model and the event simulation agree on every preset network
//! and every chip preset.

use repopt_sim::{analytic, event, ChipSpec, Workload};
use repopt_spec::{preset, PRESETS};

/// Whole-network latency: analytic within this fraction of the event simulation.
const NETWORK_TOLERANCE: f64 = 0.10;
/// Any single layer.
const LAYER_TOLERANCE: f64 = 0.25;

#[test]
fn analytic_agrees_with_event_on_every_preset_and_chip() {
    let mut worst_net: f64 = 0.0;
    let mut worst_layer: f64 = 0.0;
    for chip_name in ChipSpec::preset_names() {
        let chip = ChipSpec::preset(chip_name).unwrap();
        for model in PRESETS {
            let w = Workload::from_spec(&preset(model).unwrap());
            let a = analytic::simulate(&chip, &w).unwrap();
            let e = event::simulate(&chip, &w).unwrap();
            let dev = (a.total_cycles as f64 - e.total_cycles as f64) / e.total_cycles as f64;
            eprintln!(
                "{chip_name:>10} {model:>5}: analytic {:>10} event {:>10} ({:+.2}%) util {:.1}%",
                a.total_cycles,
                e.total_cycles,
                100.0 * dev,
                100.0 * e.utilisation
            );
            worst_net = worst_net.max(dev.abs());
            assert!(dev.abs() <= NETWORK_TOLERANCE, "{chip_name} {model}: {dev}");
            for (la, le) in a.layers.iter().zip(&e.layers) {
                assert_eq!(la.dram_read_bytes, le.dram_read_bytes);
                assert_eq!(la.cycles.compute, le.cycles.compute);
                assert_eq!(la.cycles.fill_drain, le.cycles.fill_drain);
                let d = (la.total_cycles as f64 - le.total_cycles as f64) / le.total_cycles as f64;
                if d.abs() > worst_layer {
                    eprintln!(
                        "   worst layer so far {} {}: {:+.2}% (a {:?} e {:?})",
                        model,
                        la.name,
                        100.0 * d,
                        la.cycles,
                        le.cycles
                    );
                }
                worst_layer = worst_layer.max(d.abs());
                assert!(
                    d.abs() <= LAYER_TOLERANCE,
                    "{chip_name} {model} {}: {d}",
                    la.name
                );
            }
        }
    }
    eprintln!(
        "worst network deviation {:.2}%, worst layer {:.2}%",
        100.0 * worst_net,
        100.0 * worst_layer
    );
}

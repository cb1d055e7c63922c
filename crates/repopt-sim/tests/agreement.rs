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

mod random {
    use super::*;
    use proptest::prelude::*;
    use repopt_sim::sweep::SweepGrid;
    use repopt_spec::{ModelSpec, StageSpec, SPEC_FORMAT_VERSION};

    /// Random chips, including starved DRAM and tiny buffers (many bands),
    /// on random small networks: the network latency stays within this.
    pub const RANDOM_TOLERANCE: f64 = 0.20;

    fn model() -> impl Strategy<Value = ModelSpec> {
        (
            proptest::collection::vec((1usize..3, 1usize..48, 1usize..3), 1..4),
            1usize..4,
            8usize..40,
        )
            .prop_map(|(stages, in_channels, image_size)| ModelSpec {
                format_version: SPEC_FORMAT_VERSION,
                name: "rand".into(),
                stages: stages
                    .into_iter()
                    .map(|(blocks, width, stride)| StageSpec {
                        blocks,
                        width,
                        stride,
                    })
                    .collect(),
                classes: 10,
                in_channels,
                image_size,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn analytic_tracks_event_on_random_chips(
            spec in model(),
            units in 1usize..6,
            pi in 1usize..17,
            po in 1usize..17,
            bw in 0.2f64..100.0,
            latency in 0u64..300,
            depth in 1u64..20,
            fmap_scale in 1u64..6,
        ) {
            let w = Workload::from_spec(&spec);
            let mut base = ChipSpec::preset("edge-fpga").unwrap();
            base.buffers.fmap_bytes = 1;
            base.buffers.weight_bytes_per_unit = 1;
            base.dram.latency_cycles = latency;
            base.array.pipeline_depth = depth;
            let grid = SweepGrid {
                units: vec![units],
                pi: vec![pi],
                po: vec![po],
                bandwidth_gb_per_s: vec![bw],
                clock_mhz: vec![200.0],
                fit_buffers: true,
            };
            let mut chip = grid.chip(&base, &w, 0);
            chip.buffers.fmap_bytes *= fmap_scale;
            let a = analytic::simulate(&chip, &w).unwrap();
            let e = event::simulate(&chip, &w).unwrap();
            let dev = (a.total_cycles as f64 - e.total_cycles as f64) / e.total_cycles as f64;
            prop_assert!(dev.abs() <= RANDOM_TOLERANCE, "analytic {} event {} ({:+.2}%)", a.total_cycles, e.total_cycles, 100.0 * dev);
        }
    }
}

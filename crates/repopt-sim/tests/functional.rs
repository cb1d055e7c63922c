//! The functional path is bit-exact to the golden INT8 engine on every layer,
//! on random small models and random chip shapes, and reports accumulator
//! overflow of narrow accumulators with the layer.

use proptest::prelude::*;
use repopt_int8::golden;
use repopt_int8::testutil::{chain_geometry, random_image, random_model, random_model_with};
use repopt_sim::functional::{self, check_against_golden, FunctionalError};
use repopt_sim::schedule::{min_fmap_buffer_bytes, min_weight_buffer_bytes, LayerSchedule};
use repopt_sim::ChipSpec;

/// A chip of the given shape whose buffers are `fmap_factor` times the
/// minimum the model needs (factor 1: one-row bands, many tiles).
fn chip_for(
    model: &repopt_int8::Int8Model,
    units: usize,
    pi: usize,
    po: usize,
    fmap_factor: u64,
    bits: u32,
) -> ChipSpec {
    let mut c = ChipSpec::preset("edge-fpga").unwrap();
    c.array.units = units;
    c.array.pi = pi;
    c.array.po = po;
    c.array.accumulator_bits = bits;
    c.buffers.fmap_bytes = 1;
    c.buffers.weight_bytes_per_unit = 1;
    for l in &functional::workload_of(model).layers {
        c.buffers.fmap_bytes = c.buffers.fmap_bytes.max(min_fmap_buffer_bytes(&c, &l.conv));
        c.buffers.weight_bytes_per_unit = c
            .buffers
            .weight_bytes_per_unit
            .max(min_weight_buffer_bytes(&c, &l.conv));
    }
    c.buffers.fmap_bytes *= fmap_factor;
    c
}

fn geometry() -> impl Strategy<Value = (usize, usize, Vec<(usize, usize)>)> {
    (
        1usize..6,
        3usize..20,
        proptest::collection::vec((1usize..20, 1usize..3), 1..4),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn bit_exact_to_golden_on_random_models_and_chips(
        seed in any::<u64>(),
        (in_ch, size, layers) in geometry(),
        units in 1usize..5,
        pi in 1usize..9,
        po in 1usize..9,
        fmap_factor in 1u64..4,
    ) {
        let geo = chain_geometry(in_ch, size, &layers);
        let model = random_model_with(seed, &geo, 5);
        let chip = chip_for(&model, units, pi, po, fmap_factor, 32);
        let image = random_image(seed, &model);
        let n = check_against_golden(&chip, &model, &image).map_err(TestCaseError::fail)?;
        prop_assert_eq!(n, layers.len());
    }

    #[test]
    fn narrow_accumulators_overflow_with_the_layer_or_stay_exact(
        seed in any::<u64>(),
        (in_ch, size, layers) in geometry(),
        pi in 1usize..9,
        po in 1usize..9,
        bits in 10u32..26,
    ) {
        let geo = chain_geometry(in_ch, size, &layers);
        let model = random_model_with(seed, &geo, 5);
        let chip = chip_for(&model, 2, pi, po, 2, bits);
        let image = random_image(seed, &model);
        let gold = golden::run_network(&model, &image).unwrap();
        // First layer whose exact (final) sums do not fit `bits`.
        let mut first_bad = None;
        for (i, l) in model.layers.iter().enumerate() {
            let bad = if i == 0 {
                golden::accumulate(l, &gold.input, bits).is_err()
            } else {
                golden::accumulate(l, &gold.per_layer[i - 1], bits).is_err()
            };
            if bad {
                first_bad = Some(i);
                break;
            }
        }
        match functional::run_network(&chip, &model, &image) {
            Ok(out) => {
                prop_assert!(first_bad.is_none(), "missed the overflow of layer {:?}", first_bad);
                prop_assert_eq!(out, gold);
            }
            Err(FunctionalError::AccumulatorOverflow { layer, name, bits: b, value, .. }) => {
                prop_assert_eq!(b, bits);
                prop_assert!(!repopt_int8::arith::fits_bits(value, bits));
                prop_assert_eq!(&name, &model.layers[layer].geometry.name);
                if let Some(fb) = first_bad {
                    prop_assert!(layer <= fb);
                }
            }
            Err(e) => prop_assert!(false, "unexpected error {}", e),
        }
    }
}

#[test]
fn presets_tiny_and_small_are_bit_exact_on_every_chip_preset() {
    for name in ["tiny", "small"] {
        let spec = repopt_spec::preset(name).unwrap();
        let model = random_model(7, &spec);
        let image = random_image(11, &model);
        for chip in ChipSpec::preset_names() {
            let c = ChipSpec::preset(chip).unwrap();
            let n = check_against_golden(&c, &model, &image).unwrap();
            assert_eq!(n, spec.conv_layers().len(), "{name} on {chip}");
        }
    }
}

#[test]
fn odd_shapes_stride_two_and_ragged_tiles() {
    // 7 input channels over PI 3, 13 outputs over 2 units x PO 4 (2 passes,
    // the last with idle units), a 15x15 map in one-row bands, stride 2 next.
    let geo = chain_geometry(7, 15, &[(13, 1), (5, 2), (9, 2)]);
    let model = random_model_with(3, &geo, 4);
    let chip = chip_for(&model, 2, 3, 4, 1, 32);
    let s = LayerSchedule::new(&chip, &functional::workload_of(&model).layers[0].conv);
    assert_eq!(s.passes, 2);
    assert!(s.bands > 1, "one-row bands expected, got {}", s.bands);
    let image = random_image(5, &model);
    assert_eq!(check_against_golden(&chip, &model, &image), Ok(3));
}

#[test]
fn overflow_message_names_layer_position_and_schedule() {
    let spec = repopt_spec::preset("tiny").unwrap();
    let model = random_model(1, &spec);
    let image = random_image(2, &model);
    let chip = chip_for(&model, 4, 8, 8, 2, 12);
    let e = functional::run_network(&chip, &model, &image)
        .unwrap_err()
        .to_string();
    assert!(e.contains("accumulator overflow"), "{e}");
    assert!(e.contains("12-bit"), "{e}");
    assert!(e.contains("stage0") || e.contains("stage1"), "{e}");
    assert!(e.contains("pass") && e.contains("unit"), "{e}");
}

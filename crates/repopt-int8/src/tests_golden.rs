//! Hand-computed and property tests of the golden engine and the bounds.

use proptest::prelude::*;

use crate::arith::quantize_multiplier;
use crate::golden::*;
use crate::model::*;
use crate::testutil::{chain_geometry, random_image, random_model, random_model_with, SplitMix64};
use crate::Int8Error;

/// Index of `w[o][ky][kx][i]` in OHWI layout.
fn wi(o: usize, ky: usize, kx: usize, i: usize, cin: usize) -> usize {
    ((o * 3 + ky) * 3 + kx) * cin + i
}

#[allow(clippy::too_many_arguments)]
/// A layer with every scale 1-ish and requantisation multiplier `real`.
fn layer(
    index: usize,
    cin: usize,
    cout: usize,
    stride: usize,
    size: usize,
    weights: Vec<i8>,
    bias: Vec<i32>,
    real: f64,
) -> Int8Layer {
    let (m, s) = quantize_multiplier(real).unwrap();
    Int8Layer {
        geometry: LayerGeometry {
            index,
            name: format!("t{index}"),
            in_channels: cin,
            out_channels: cout,
            stride,
            in_size: size,
            out_size: repopt_spec::conv_out_size(size, stride),
        },
        input_scale: 1.0,
        output_scale: 1.0,
        weight_scales: vec![1.0; cout],
        weights,
        bias,
        multiplier: vec![m; cout],
        shift: vec![s; cout],
    }
}

const IMG3: [u8; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 9];

#[test]
fn all_ones_kernel_sums_neighbourhoods_with_zero_padding() {
    let l = layer(1, 1, 1, 1, 3, vec![1; 9], vec![0], 1.0);
    assert_eq!(
        run_layer(&l, &IMG3).unwrap(),
        vec![12, 21, 16, 27, 45, 33, 24, 39, 28]
    );
    assert_eq!(
        accumulate(&l, &IMG3, 32).unwrap(),
        vec![12, 21, 16, 27, 45, 33, 24, 39, 28]
    );
}

#[test]
fn single_tap_kernels_shift_the_image() {
    // w[0][0][0] (top-left tap) reads in[y-1][x-1]
    let mut w = vec![0i8; 9];
    w[0] = 1;
    let l = layer(1, 1, 1, 1, 3, w, vec![0], 1.0);
    assert_eq!(
        run_layer(&l, &IMG3).unwrap(),
        vec![0, 0, 0, 0, 1, 2, 0, 4, 5]
    );
    // w[2][2] (bottom-right tap) reads in[y+1][x+1]
    let mut w = vec![0i8; 9];
    w[8] = 1;
    let l = layer(1, 1, 1, 1, 3, w, vec![0], 1.0);
    assert_eq!(
        run_layer(&l, &IMG3).unwrap(),
        vec![5, 6, 0, 8, 9, 0, 0, 0, 0]
    );
    // w[0][2] (top-right tap) reads in[y-1][x+1]
    let mut w = vec![0i8; 9];
    w[2] = 1;
    let l = layer(1, 1, 1, 1, 3, w, vec![0], 1.0);
    assert_eq!(
        run_layer(&l, &IMG3).unwrap(),
        vec![0, 0, 0, 2, 3, 0, 5, 6, 0]
    );
}

#[test]
fn stride_two_on_odd_and_even_sizes() {
    // 5x5 ones, all-ones kernel, stride 2 -> 3x3 outputs at input centres 0, 2, 4
    let l = layer(1, 1, 1, 2, 5, vec![1; 9], vec![0], 1.0);
    assert_eq!(l.geometry.out_size, 3);
    assert_eq!(
        run_layer(&l, &[1u8; 25]).unwrap(),
        vec![4, 6, 4, 6, 9, 6, 4, 6, 4]
    );
    // 4x4 -> 2x2 at centres 0, 2; the bottom/right padding is never read
    let l = layer(1, 1, 1, 2, 4, vec![1; 9], vec![0], 1.0);
    assert_eq!(l.geometry.out_size, 2);
    assert_eq!(run_layer(&l, &[1u8; 16]).unwrap(), vec![4, 6, 6, 9]);
    // 1x1 map: only the centre tap sees data
    let l = layer(1, 1, 1, 2, 1, vec![1; 9], vec![0], 1.0);
    assert_eq!(run_layer(&l, &[7u8]).unwrap(), vec![7]);
    // 3x3 stride 2 with the 1..9 image: centres (0,0),(0,2),(2,0),(2,2)
    let l = layer(1, 1, 1, 2, 3, vec![1; 9], vec![0], 1.0);
    assert_eq!(run_layer(&l, &IMG3).unwrap(), vec![12, 16, 24, 28]);
}

#[test]
fn hwc_and_ohwi_layouts() {
    // 2 in channels, 2 out channels, 1x1 map, centre taps only:
    // out0 = 3*in0 + 1*in1, out1 = -1*in0 + 2*in1 (+ bias)
    let mut w = vec![0i8; 2 * 9 * 2];
    // w[o][1][1][i] at ((o*3+1)*3+1)*2+i
    w[wi(0, 1, 1, 0, 2)] = 3;
    w[wi(0, 1, 1, 1, 2)] = 1;
    w[wi(1, 1, 1, 0, 2)] = -1;
    w[wi(1, 1, 1, 1, 2)] = 2;
    let l = layer(1, 2, 2, 1, 1, w, vec![10, 0], 1.0);
    assert_eq!(
        accumulate(&l, &[5u8, 7], 32).unwrap(),
        vec![10 + 15 + 7, -5 + 14]
    );
    assert_eq!(l.weight(1, 1, 1, 1), 2);
}

#[test]
fn requantisation_rounding_and_relu() {
    // multiplier 0.5: acc 1 -> 0.5 -> 1 (half up); acc 3 -> 2; negatives -> 0
    let l = layer(
        1,
        1,
        4,
        1,
        1,
        [0, 0, 0, 0, 1, 0, 0, 0, 0].repeat(4),
        vec![0, 2, -100, 1000],
        0.5,
    );
    assert_eq!(accumulate(&l, &[1u8], 32).unwrap(), vec![1, 3, -99, 1001]);
    assert_eq!(run_layer(&l, &[1u8]).unwrap(), vec![1, 2, 0, 255]);
}

#[test]
fn first_layer_reads_signed_input() {
    let l = layer(0, 1, 1, 1, 3, vec![1; 9], vec![0], 1.0);
    let x: [i8; 9] = [-127, 0, 127, 10, -10, 5, 0, 0, 1];
    // centre output = sum = 6
    assert_eq!(accumulate(&l, &x, 32).unwrap()[4], 6);
    // top-left = -127 + 0 + 10 - 10 = -127 -> ReLU -> 0
    assert_eq!(run_layer(&l, &x).unwrap()[0], 0);
}

#[test]
fn input_dtype_and_length_are_checked() {
    let l0 = layer(0, 1, 1, 1, 3, vec![1; 9], vec![0], 1.0);
    assert!(matches!(
        run_layer(&l0, &IMG3),
        Err(Int8Error::InputDtype { layer: 0, .. })
    ));
    let l1 = layer(1, 1, 1, 1, 3, vec![1; 9], vec![0], 1.0);
    let e = run_layer(&l1, &IMG3[..8]).unwrap_err();
    assert!(
        matches!(
            e,
            Int8Error::InputLength {
                expected: 9,
                found: 8,
                ..
            }
        ),
        "{e}"
    );
    let mut bad = l1.clone();
    bad.bias.clear();
    assert!(matches!(
        run_layer(&bad, &IMG3),
        Err(Int8Error::Invalid { .. })
    ));
}

#[test]
fn overflow_is_an_error_naming_layer_and_position() {
    let l = layer(3, 1, 1, 1, 3, vec![127; 9], vec![i32::MAX - 1000], 1e-9);
    let e = run_layer(&l, &[255u8; 9]).unwrap_err();
    match &e {
        Int8Error::AccumulatorOverflow {
            layer: 3,
            name,
            y: 0,
            x: 0,
            channel: 0,
            bits: 32,
            ..
        } => assert_eq!(name, "t3"),
        other => panic!("unexpected {other}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("layer 3 (t3)") && msg.contains("y=0, x=0"),
        "{msg}"
    );
    // negative overflow
    let l = layer(3, 1, 1, 1, 3, vec![-127; 9], vec![i32::MIN + 1000], 1e-9);
    assert!(run_layer(&l, &[255u8; 9]).is_err());
    // a narrower accumulator (simulator) overflows earlier
    let l = layer(2, 1, 1, 1, 3, vec![127; 9], vec![0], 1e-3);
    assert!(accumulate(&l, &[255u8; 9], 32).is_ok());
    let e = accumulate(&l, &[255u8; 9], 16).unwrap_err();
    assert!(
        matches!(
            e,
            Int8Error::AccumulatorOverflow {
                layer: 2,
                bits: 16,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn pooling_rounds_half_up() {
    // 2x2 map (HW = 4), 3 channels: sums 2, 1, 6 -> 0.5 -> 1, 0.25 -> 0, 1.5 -> 2
    let fm = [1u8, 1, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0];
    assert_eq!(global_avg_pool(&fm, 2, 3), vec![1, 0, 2]);
    // 3x3 (odd HW): 255 everywhere stays 255; sum 4 -> 4/9 -> 0; sum 5 -> 5/9 -> 1
    assert_eq!(global_avg_pool(&[255u8; 9], 3, 1), vec![255]);
    assert_eq!(global_avg_pool(&[1, 1, 1, 1, 0, 0, 0, 0, 0], 3, 1), vec![0]);
    assert_eq!(global_avg_pool(&[1, 1, 1, 1, 1, 0, 0, 0, 0], 3, 1), vec![1]);
}

#[test]
fn head_is_exact_and_checked() {
    let head = Int8Head {
        in_features: 2,
        classes: 2,
        input_scale: 0.1,
        weight_scale: 0.5,
        weights: vec![1, -2, 127, 127],
        bias: vec![5, i32::MAX - 10],
    };
    assert!(matches!(
        run_head(&head, &[3, 4]),
        Err(Int8Error::HeadOverflow { class: 1, .. })
    ));
    let mut ok = head.clone();
    ok.bias[1] = 0;
    assert_eq!(run_head(&ok, &[3, 4]).unwrap(), vec![5 + 3 - 8, 127 * 7]);
    assert!(run_head(&ok, &[3]).is_err());
    assert_eq!(ok.logit_scale(), 0.1f32 * 0.5f32);
}

#[test]
fn accumulator_bounds_are_exact_worst_cases() {
    let spec = repopt_spec::ModelSpec::resolve("A0")
        .unwrap()
        .with_io(10, 3, 32);
    let m = random_model(7, &spec);
    let bounds = m.accumulator_bounds();
    assert_eq!(bounds.len(), m.layers.len() + 1);
    for (b, l) in bounds.iter().zip(&m.layers) {
        let per = 9 * l.geometry.in_channels;
        let max_x = if l.geometry.index == 0 { 128 } else { 255 };
        let want = (0..l.geometry.out_channels)
            .map(|o| {
                l.bias[o].unsigned_abs() as u64
                    + max_x
                        * l.weights[o * per..(o + 1) * per]
                            .iter()
                            .map(|w| w.unsigned_abs() as u64)
                            .sum::<u64>()
            })
            .max()
            .unwrap();
        assert_eq!(b.bound, want);
        assert!(crate::arith::fits_bits(b.bound as i64, b.bits_needed));
        assert!(!crate::arith::fits_bits(b.bound as i64, b.bits_needed - 1));
    }
    assert!(m.check_accumulator_bounds(32).is_ok());
    let e = m.check_accumulator_bounds(16).unwrap_err().to_string();
    assert!(e.contains("layer 0 (stage0)") && e.contains("16"), "{e}");
    assert!(!m.layers_that_may_overflow(20).is_empty());
}

#[test]
fn random_spec_model_runs_end_to_end() {
    let spec = repopt_spec::ModelSpec::resolve("A0")
        .unwrap()
        .with_io(10, 3, 32);
    let m = random_model(1, &spec);
    m.validate().unwrap();
    let img = random_image(2, &m);
    let out = run_network(&m, &img).unwrap();
    assert_eq!(out.per_layer.len(), m.layers.len());
    for (fm, l) in out.per_layer.iter().zip(&m.layers) {
        assert_eq!(fm.len(), l.geometry.output_len());
    }
    assert_eq!(out.logits.len(), 10);
    // activations are neither all zero nor all saturated in the middle of the net
    let mid = &out.per_layer[m.layers.len() / 2];
    let zeros = mid.iter().filter(|&&v| v == 0).count();
    let sat = mid.iter().filter(|&&v| v == 255).count();
    assert!(
        zeros < mid.len() && sat < mid.len() / 2,
        "zeros {zeros} sat {sat} of {}",
        mid.len()
    );
    // deterministic
    assert_eq!(run_network(&m, &img).unwrap(), out);
    assert_eq!(
        out.argmax(),
        out.logits
            .iter()
            .enumerate()
            .max_by_key(|(k, &l)| (l, std::cmp::Reverse(*k)))
            .unwrap()
            .0
    );
    assert_eq!(out.logits_f32(&m).len(), 10);
}

#[test]
fn input_quantisation_uses_the_lut() {
    let m = random_model_with(3, &chain_geometry(2, 2, &[(1, 1)]), 2);
    let img = [0u8, 255, 128, 7, 1, 2, 3, 4];
    let q = quantize_input(&m, &img).unwrap();
    for (k, &p) in img.iter().enumerate() {
        let c = k % 2;
        let x = (p as f64 / 255.0 - m.input.mean[c] as f64) / m.input.std[c] as f64;
        assert_eq!(
            q[k],
            crate::arith::quantize_symmetric(x, m.input.scale as f64)
        );
    }
    assert!(quantize_input(&m, &img[..7]).is_err());
    let norm: Vec<f32> = vec![0.0, 1.0, -1.0, 100.0, -100.0, 0.5, 0.01, 0.02];
    let qn = quantize_normalized(&m, &norm).unwrap();
    assert_eq!(qn[0], 0);
    assert_eq!(qn[3], 127);
    assert_eq!(qn[4], -127);
    let out = run_network_normalized(&m, &norm).unwrap();
    assert_eq!(out.input, qn);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Stride 2 is exactly the stride-1 output subsampled at even positions
    /// (same padding), an independent statement of the contract.
    #[test]
    fn stride_two_is_subsampled_stride_one(seed in any::<u64>(), size in 1usize..9, cin in 1usize..5, cout in 1usize..5) {
        let g2 = chain_geometry(cin, size, &[(cout, 2)]);
        let m = random_model_with(seed, &g2, 3);
        let mut l1 = m.layers[0].clone();
        l1.geometry.stride = 1;
        l1.geometry.out_size = size;
        let x = crate::golden::quantize_input(&m, &random_image(seed, &m)).unwrap();
        let a2 = accumulate(&m.layers[0], &x, 32).unwrap();
        let a1 = accumulate(&l1, &x, 32).unwrap();
        let o2 = m.layers[0].geometry.out_size;
        for y in 0..o2 {
            for xx in 0..o2 {
                for o in 0..cout {
                    prop_assert_eq!(a2[(y * o2 + xx) * cout + o], a1[(2 * y * size + 2 * xx) * cout + o]);
                }
            }
        }
    }

    /// Padding: the conv equals a conv over an explicitly zero-padded map.
    #[test]
    fn padding_equals_explicit_zero_border(seed in any::<u64>(), size in 1usize..7, cin in 1usize..4, cout in 1usize..4, stride in 1usize..=2) {
        let g = chain_geometry(cin, size, &[(cin, 1), (cout, stride)]);
        let m = random_model_with(seed, &g, 2);
        let l = &m.layers[1];
        let mut rng = SplitMix64(seed);
        let x: Vec<u8> = (0..size * size * cin).map(|_| rng.range_i64(0, 255) as u8).collect();
        let acc = accumulate(l, &x, 32).unwrap();
        let p = size + 2;
        let mut padded = vec![0i64; p * p * cin];
        for y in 0..size { for xx in 0..size { for i in 0..cin {
            padded[((y + 1) * p + xx + 1) * cin + i] = x[(y * size + xx) * cin + i] as i64;
        }}}
        let os = l.geometry.out_size;
        for y in 0..os { for xx in 0..os { for o in 0..cout {
            let mut s = l.bias[o] as i64;
            for ky in 0..3 { for kx in 0..3 { for i in 0..cin {
                s += l.weight(o, ky, kx, i) as i64 * padded[((y * stride + ky) * p + xx * stride + kx) * cin + i];
            }}}
            prop_assert_eq!(acc[(y * os + xx) * cout + o] as i64, s);
        }}}
    }

    /// Random models of random geometry run without panicking, and an
    /// accumulator that the static bound says is wide enough never overflows.
    #[test]
    fn random_models_run(seed in any::<u64>(), size in 1usize..12, cin in 1usize..4,
                         layers in proptest::collection::vec((1usize..6, 1usize..=2), 1..5), classes in 1usize..5) {
        let g = chain_geometry(cin, size, &layers);
        let m = random_model_with(seed, &g, classes);
        prop_assert!(m.validate().is_ok());
        let out = run_network(&m, &random_image(seed, &m)).unwrap();
        prop_assert_eq!(out.logits.len(), classes);
        for b in m.accumulator_bounds() {
            if let Some(i) = b.layer {
                let input: Vec<u8>;
                let r = if i == 0 {
                    accumulate(&m.layers[0], &out.input, b.bits_needed)
                } else {
                    input = out.per_layer[i - 1].clone();
                    accumulate(&m.layers[i], &input, b.bits_needed)
                };
                prop_assert!(r.is_ok(), "layer {} overflowed {} bits", i, b.bits_needed);
            }
        }
    }
}

/// The integers mean what the contract says: a float conv + bias + ReLU,
/// quantised with the host helpers (§10), run by the golden engine and
/// dequantised with `s_out`, stays within one output step plus the
/// weight/input rounding noise of the float result.
#[test]
fn integer_layer_tracks_the_float_layer() {
    use crate::host::{channel_multiplier, quantize_bias, quantize_per_channel};
    let (cin, cout, size) = (4usize, 3usize, 6usize);
    let mut rng = SplitMix64(99);
    let mut f = |a: f64| ((rng.unit_f64() * 2.0 - 1.0) * a) as f32;
    let w_oihw: Vec<f32> = (0..cout * cin * 9).map(|_| f(0.3)).collect();
    let b: Vec<f32> = (0..cout).map(|_| f(0.2)).collect();
    let x: Vec<f32> = (0..size * size * cin).map(|_| f(2.0)).collect(); // HWC, normalised
                                                                        // float reference (cross-correlation, zero padding, stride 1), then ReLU
    let mut yf = vec![0f64; size * size * cout];
    for y in 0..size {
        for xx in 0..size {
            for o in 0..cout {
                let mut s = b[o] as f64;
                for ky in 0..3 {
                    for kx in 0..3 {
                        let (iy, ix) =
                            (y as isize + ky as isize - 1, xx as isize + kx as isize - 1);
                        if iy < 0 || ix < 0 || iy >= size as isize || ix >= size as isize {
                            continue;
                        }
                        for i in 0..cin {
                            s += w_oihw[(o * cin + i) * 9 + ky * 3 + kx] as f64
                                * x[(iy as usize * size + ix as usize) * cin + i] as f64;
                        }
                    }
                }
                yf[(y * size + xx) * cout + o] = s.max(0.0);
            }
        }
    }
    let s_in = x.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
    let s_out = yf.iter().fold(0f64, |m, &v| m.max(v)) as f32 / 255.0;
    let w_ohwi = crate::host::oihw_to_ohwi(&w_oihw, cout, cin);
    let (wq, s_w) = quantize_per_channel(&w_ohwi, cout);
    let bias: Vec<i32> = (0..cout)
        .map(|o| quantize_bias(b[o], s_in, s_w[o], "b").unwrap())
        .collect();
    let (multiplier, shift): (Vec<i32>, Vec<i32>) = (0..cout)
        .map(|o| channel_multiplier(s_in, s_w[o], s_out).unwrap())
        .unzip();
    let layer = Int8Layer {
        geometry: LayerGeometry {
            index: 0,
            name: "float-check".into(),
            in_channels: cin,
            out_channels: cout,
            stride: 1,
            in_size: size,
            out_size: size,
        },
        input_scale: s_in,
        output_scale: s_out,
        weight_scales: s_w.clone(),
        weights: wq,
        bias,
        multiplier,
        shift,
    };
    let xq: Vec<i8> = x
        .iter()
        .map(|&v| crate::arith::quantize_symmetric(v as f64, s_in as f64))
        .collect();
    let yq = run_layer(&layer, &xq).unwrap();
    // error budget: half an output step + accumulated input/weight rounding
    let budget = 0.5 * s_out as f64 + 36.0 * (0.5 * s_in as f64 * 0.3 + 2.0 * 0.5 * 0.3 / 127.0);
    let mut worst = 0f64;
    for (k, &q) in yq.iter().enumerate() {
        worst = worst.max((q as f64 * s_out as f64 - yf[k]).abs());
    }
    assert!(worst <= budget, "worst {worst} budget {budget}");
    assert!(yq.iter().any(|&q| q > 100), "outputs span the uint8 range");
}

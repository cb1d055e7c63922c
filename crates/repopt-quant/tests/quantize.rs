//! The quantizer's pieces on synthetic data: thresholds of the three
//! calibration methods, the contract quantities of `build_int8`, its errors,
//! Table-11 weight statistics.

use candle_core::Device;
use repopt_data::Normalization;
use repopt_int8::arith::quantize_multiplier;
use repopt_int8::golden;
use repopt_quant::calibrate::{Calibration, Histogram, BINS};
use repopt_quant::deploy::{DeployedLayer, DeployedModel};
use repopt_quant::report::{sqnr_db, weight_stats};
use repopt_quant::{build_int8, CandleInt8, QuantError};
use repopt_train::{Arch, Network};

fn hist(values: &[f32]) -> Histogram {
    let max = values.iter().fold(0f32, |m, &v| m.max(v.abs()));
    let mut h = Histogram::new(max);
    h.add(values);
    h
}

#[test]
fn minmax_is_the_maximum() {
    let h = hist(&[0.0, 0.5, 3.0, -4.0, 1.0]);
    assert_eq!(h.threshold(Calibration::MinMax, 255), 4.0);
    assert_eq!(h.total(), 5);
    assert_eq!(h.zeros, 1);
    // a dead tensor still gets a positive scale
    assert_eq!(hist(&[0.0; 7]).threshold(Calibration::MinMax, 255), 1.0);
    assert_eq!(hist(&[0.0; 7]).threshold(Calibration::Mse, 255), 1.0);
}

#[test]
fn percentile_clips_the_outlier() {
    // 9999 values uniform in (0, 1], one outlier at 100
    let mut v: Vec<f32> = (1..10_000).map(|k| k as f32 / 9999.0).collect();
    v.push(100.0);
    let h = hist(&v);
    let t = h.threshold(Calibration::Percentile(99.9), 255);
    assert!(t > 0.99 && t < 1.0 + 2.0 * 100.0 / BINS as f32, "{t}");
    assert_eq!(h.threshold(Calibration::Percentile(100.0), 255), 100.0);
    // MSE keeps a single far outlier (its clipping error would dominate) and
    // is never worse than the candidates it compares
    let m = h.threshold(Calibration::Mse, 255) as f64;
    assert!(m > 90.0, "{m}");
    assert!(h.quantization_mse(m, 255) <= h.quantization_mse(t as f64, 255));
    assert!(h.quantization_mse(m, 255) <= h.quantization_mse(100.0, 255));
    // a 2% tail: the MSE threshold beats the maximum and the 99th percentile
    let mut v: Vec<f32> = (0..9800).map(|k| k as f32 / 9800.0).collect();
    v.extend((0..200).map(|k| 1.0 + 99.0 * k as f32 / 200.0));
    let h = hist(&v);
    let m = h.threshold(Calibration::Mse, 255) as f64;
    let p99 = h.threshold(Calibration::Percentile(99.0), 255) as f64;
    assert!(h.quantization_mse(m, 255) <= h.quantization_mse(p99, 255));
    assert!(h.quantization_mse(m, 255) <= h.quantization_mse(100.0, 255));
}

#[test]
fn mse_keeps_the_range_of_a_uniform_distribution() {
    let v: Vec<f32> = (0..50_000).map(|k| (k % 1000) as f32 / 999.0).collect();
    let h = hist(&v);
    let t = h.threshold(Calibration::Mse, 255);
    assert!(t > 0.97, "{t}");
    assert!(h.quantization_mse(1.0, 255) < h.quantization_mse(0.5, 255));
}

#[test]
fn calibration_names_and_parsing() {
    assert_eq!(Calibration::parse("minmax", 0.0).unwrap().name(), "minmax");
    assert_eq!(
        Calibration::parse("percentile", 99.99).unwrap().name(),
        "percentile99.99"
    );
    assert_eq!(Calibration::parse("mse", 0.0).unwrap().name(), "mse");
    let e = Calibration::parse("percentile", 0.0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("(0, 100]"), "{e}");
    let e = Calibration::parse("kl", 0.0).unwrap_err().to_string();
    assert!(e.contains("`kl`"), "{e}");
}

#[test]
fn weight_statistics_split_centre_and_surround() {
    // one 1x1x3x3 kernel: centre 4, surround alternating +-1
    let w = [1.0f32, -1.0, 1.0, -1.0, 4.0, -1.0, 1.0, -1.0, 1.0];
    let s = weight_stats(&w);
    assert_eq!((s.min, s.max), (-1.0, 4.0));
    assert_eq!(s.centre_std, 0.0);
    assert!((s.surround_std - 1.0).abs() < 1e-12);
    let mean = 4.0 / 9.0;
    let var = (8.0 * 1.0 + 16.0) / 9.0 - mean * mean;
    assert!((s.std - f64::sqrt(var)).abs() < 1e-12);
    assert_eq!(sqnr_db(100.0, 1.0), 20.0);
    assert_eq!(sqnr_db(1.0, 0.0), f64::INFINITY);
}

fn small_model() -> DeployedModel {
    let spec = repopt_spec::ModelSpec::resolve("tiny")
        .unwrap()
        .with_io(4, 2, 9);
    let net = Network::new(Arch::RepVgg, &spec, None, 3, &Device::Cpu).unwrap();
    DeployedModel::from_network(
        &net,
        Normalization {
            mean: vec![0.3, 0.6],
            std: vec![0.2, 0.25],
        },
    )
    .unwrap()
}

#[test]
fn build_int8_follows_the_contract() {
    let model = small_model();
    let n = model.layers.len();
    let s_out: Vec<f32> = (0..n).map(|i| 0.01 + 0.002 * i as f32).collect();
    let q = build_int8(&model, 0.02, &s_out, "test").unwrap();
    assert_eq!(q.calibration, "test");
    assert_eq!(q.input.scale, 0.02);
    assert_eq!(
        q.input.lut[256 + 255],
        repopt_int8::arith::quantize_symmetric((1.0 - 0.6) / 0.25, 0.02f32 as f64)
    );
    for (i, l) in q.layers.iter().enumerate() {
        assert_eq!(l.output_scale, s_out[i]);
        assert_eq!(l.input_scale, if i == 0 { 0.02 } else { s_out[i - 1] });
        let g = &l.geometry;
        let d = &model.layers[i];
        for o in 0..g.out_channels {
            let sw = l.weight_scales[o];
            let oihw = &d.weight[o * g.in_channels * 9..(o + 1) * g.in_channels * 9];
            let max = oihw.iter().fold(0f32, |m, &w| m.max(w.abs()));
            assert_eq!(sw, max / 127.0);
            // w[o][ky=1][kx=2][i=0] is OIHW element (o, 0, 1, 2)
            assert_eq!(
                l.weight(o, 1, 2, 0),
                repopt_int8::arith::quantize_symmetric(oihw[5] as f64, sw as f64)
            );
            let real = l.input_scale as f64 * sw as f64 / l.output_scale as f64;
            assert_eq!(
                (l.multiplier[o], l.shift[o]),
                quantize_multiplier(real).unwrap()
            );
            assert_eq!(
                l.bias[o] as i64,
                repopt_int8::arith::round_half_away(
                    d.bias[o] as f64 / (l.input_scale as f64 * sw as f64)
                )
            );
        }
    }
    // it runs, and both engines agree
    let img: Vec<u8> = (0..9 * 9 * 2).map(|k| (k * 37 % 256) as u8).collect();
    let g = golden::run_network(&q, &img).unwrap();
    let c = CandleInt8::new(&q, &Device::Cpu)
        .unwrap()
        .run_image(&img, 0)
        .unwrap();
    assert_eq!(g, c);
}

#[test]
fn unrepresentable_bias_or_multiplier_names_the_layer() {
    let mut model = small_model();
    let n = model.layers.len();
    model.layers[2].bias[1] = 1e9;
    let e = build_int8(&model, 1e-3, &vec![0.01; n], "x").unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, QuantError::Quantize { .. }), "{msg}");
    assert!(msg.contains("layer 2 (stage2.0) bias[1]"), "{msg}");
    let model = small_model();
    let mut s_out = vec![0.01; n];
    s_out[3] = 1e-30; // multiplier far above 2^30
    let msg = build_int8(&model, 0.02, &s_out, "x")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("layer 3 (stage2.1) multiplier[0]"), "{msg}");
    let msg = build_int8(&model, 0.02, &s_out[..2], "x")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("2 output scales for 7 layers"), "{msg}");
}

#[test]
fn deployed_layers_carry_geometry() {
    let model = small_model();
    let names: Vec<&str> = model
        .layers
        .iter()
        .map(|l| l.geometry.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["stage0", "stage1.0", "stage2.0", "stage2.1", "stage3.0", "stage3.1", "stage4.0"]
    );
    let DeployedLayer {
        stride, geometry, ..
    } = &model.layers[0];
    assert_eq!((*stride, geometry.in_size, geometry.out_size), (2, 9, 5));
    assert_eq!(model.head_w.len(), 4 * model.spec.feature_width());
}

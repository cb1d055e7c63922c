//! The per-layer quantisation report: weight statistics as in the paper's
//! Table 11 (overall, centre tap, surrounding taps), activation scales, SQNR
//! of every layer's INT8 output against the float output, and float vs INT8
//! top-1 accuracy.

use std::fmt::Write as _;
use std::path::Path;

use repopt_data::Dataset;
use repopt_int8::Int8Model;
use serde::{Deserialize, Serialize};

use crate::calibrate::ActivationStats;
use crate::deploy::{argmax, DeployedModel, FloatNet};
use crate::engine::CandleInt8;
use crate::error::{QuantError, Result};

/// Statistics of a float conv kernel `[O][I][3][3]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WeightStats {
    pub min: f32,
    pub max: f32,
    /// Population standard deviation of all weights.
    pub std: f64,
    /// ... of the centre taps `w[.][.][1][1]`.
    pub centre_std: f64,
    /// ... of the eight surrounding taps.
    pub surround_std: f64,
}

fn std_of(values: impl Iterator<Item = f32> + Clone) -> f64 {
    let (mut n, mut s) = (0usize, 0f64);
    for v in values.clone() {
        n += 1;
        s += v as f64;
    }
    if n == 0 {
        return 0.0;
    }
    let mean = s / n as f64;
    let var = values
        .map(|v| (v as f64 - mean) * (v as f64 - mean))
        .sum::<f64>()
        / n as f64;
    var.sqrt()
}

/// Table 11's statistics of a `[O][I][3][3]` kernel.
pub fn weight_stats(oihw: &[f32]) -> WeightStats {
    let all = oihw.iter().copied();
    let centre = oihw
        .iter()
        .enumerate()
        .filter(|(k, _)| k % 9 == 4)
        .map(|(_, &w)| w);
    let surround = oihw
        .iter()
        .enumerate()
        .filter(|(k, _)| k % 9 != 4)
        .map(|(_, &w)| w);
    WeightStats {
        min: oihw.iter().copied().fold(f32::INFINITY, f32::min),
        max: oihw.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        std: std_of(all),
        centre_std: std_of(centre),
        surround_std: std_of(surround),
    }
}

/// `10 log10(signal / noise)`; infinite for a noiseless match.
pub fn sqnr_db(signal: f64, noise: f64) -> f64 {
    if noise <= 0.0 {
        f64::INFINITY
    } else if signal <= 0.0 {
        f64::NEG_INFINITY
    } else {
        10.0 * (signal / noise).log10()
    }
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerReport {
    pub index: usize,
    pub name: String,
    pub in_channels: usize,
    pub out_channels: usize,
    pub stride: usize,
    pub out_size: usize,
    pub weight: WeightStats,
    /// Range of the per-channel weight scales.
    pub weight_scale_min: f32,
    pub weight_scale_max: f32,
    /// Largest float activation seen in calibration.
    pub float_max: f32,
    /// Scale of the uint8 output (`threshold / 255`).
    pub output_scale: f32,
    /// Fraction of calibration activations above `255 * output_scale` (clipped).
    pub clipped_fraction: f64,
    /// SQNR of the INT8 output (dequantised) against the float output on the
    /// calibration images, end to end (errors of earlier layers included).
    pub sqnr_db: f64,
}

/// The whole report (`report.json`).
/// Infinite SQNRs (a noiseless layer) are written as `null` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuantReport {
    pub model: String,
    pub arch: String,
    pub calibration: String,
    pub calib_images: usize,
    pub input_scale: f32,
    pub layers: Vec<LayerReport>,
    pub head_weight_scale: f32,
    /// SQNR of the dequantised INT8 logits against the float logits.
    pub logits_sqnr_db: f64,
    pub test_images: usize,
    pub float_top1: f64,
    pub int8_top1: f64,
    /// Fraction of test images where float and INT8 predict the same class.
    pub agreement: f64,
    /// Worst-case accumulator width of each layer (contract §4 bound).
    pub accumulator_bits: Vec<u32>,
}

fn host_f32(t: &candle_core::Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_device(&candle_core::Device::Cpu)?
        .to_vec1::<f32>()?)
}

/// Float and INT8 predictions over a data set: `(float, int8)` class indices.
pub fn predictions(
    float: &FloatNet,
    int8: &CandleInt8,
    data: &Dataset,
    batch_size: usize,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let (mut pf, mut pq) = (Vec::new(), Vec::new());
    let idx: Vec<usize> = (0..data.len()).collect();
    for chunk in idx.chunks(batch_size.max(1)) {
        let x = float.batch(data, chunk)?;
        let logits = host_f32(&float.forward(&x)?.logits)?;
        let k = logits.len() / chunk.len();
        pf.extend(logits.chunks(k.max(1)).map(argmax));
        let pixels: Vec<u8> = chunk.iter().flat_map(|&i| data.image(i)).copied().collect();
        let out = int8.run(&pixels, chunk.len(), false, chunk[0])?;
        pq.extend(out.logits_i32()?.iter().map(|l| argmax(l)));
    }
    Ok((pf, pq))
}

/// Builds the report: SQNR on the calibration images `calib` of `train`,
/// accuracy on `test` (both engines on `float`'s / `int8`'s device).
#[allow(clippy::too_many_arguments)]
pub fn build_report(
    model: &DeployedModel,
    q: &Int8Model,
    stats: &ActivationStats,
    float: &FloatNet,
    int8: &CandleInt8,
    train: &Dataset,
    calib: &[usize],
    test: &Dataset,
    batch_size: usize,
) -> Result<QuantReport> {
    model.check_data(test)?;
    let nl = q.layers.len();
    if stats.layers.len() != nl || model.layers.len() != nl {
        return Err(QuantError::Mismatch {
            what: "report".into(),
            message: format!(
                "{} calibration histograms and {} float layers for {nl} INT8 layers",
                stats.layers.len(),
                model.layers.len()
            ),
        });
    }
    let (mut sig, mut noise) = (vec![0f64; nl], vec![0f64; nl]);
    let (mut lsig, mut lnoise) = (0f64, 0f64);
    let logit_scale = q.head.logit_scale() as f64;
    for chunk in calib.chunks(batch_size.max(1)) {
        let fo = float.forward(&float.batch(train, chunk)?)?;
        let pixels: Vec<u8> = chunk
            .iter()
            .flat_map(|&i| train.image(i))
            .copied()
            .collect();
        let qo = int8.run(&pixels, chunk.len(), true, chunk[0])?;
        for l in 0..nl {
            let f = host_f32(&fo.per_layer[l])?;
            let v = host_f32(&qo.per_layer[l])?;
            let s = q.layers[l].output_scale as f64;
            for (a, b) in f.iter().zip(&v) {
                let (a, b) = (*a as f64, *b as f64 * s);
                sig[l] += a * a;
                noise[l] += (a - b) * (a - b);
            }
        }
        let f = host_f32(&fo.logits)?;
        let v = host_f32(&qo.logits)?;
        for (a, b) in f.iter().zip(&v) {
            let (a, b) = (*a as f64, *b as f64 * logit_scale);
            lsig += a * a;
            lnoise += (a - b) * (a - b);
        }
    }
    let bounds = q.accumulator_bounds();
    let layers = q
        .layers
        .iter()
        .enumerate()
        .map(|(l, ql)| {
            let g = &ql.geometry;
            let h = &stats.layers[l];
            let limit = 255.0 * ql.output_scale as f64;
            let total = h.total().max(1) as f64;
            let w = h.max as f64 / crate::calibrate::BINS as f64;
            let clipped: u64 = h
                .counts
                .iter()
                .enumerate()
                .filter(|(b, _)| (*b as f64 + 0.5) * w > limit)
                .map(|(_, &c)| c)
                .sum();
            LayerReport {
                index: g.index,
                name: g.name.clone(),
                in_channels: g.in_channels,
                out_channels: g.out_channels,
                stride: g.stride,
                out_size: g.out_size,
                weight: weight_stats(&model.layers[l].weight),
                weight_scale_min: ql
                    .weight_scales
                    .iter()
                    .copied()
                    .fold(f32::INFINITY, f32::min),
                weight_scale_max: ql.weight_scales.iter().copied().fold(0.0, f32::max),
                float_max: h.max,
                output_scale: ql.output_scale,
                clipped_fraction: clipped as f64 / total,
                sqnr_db: sqnr_db(sig[l], noise[l]),
            }
        })
        .collect();
    let (pf, pq) = predictions(float, int8, test, batch_size)?;
    let n = test.len().max(1) as f64;
    let hits = |p: &[usize]| {
        p.iter()
            .enumerate()
            .filter(|(i, &c)| usize::from(test.label(*i)) == c)
            .count() as f64
            / n
    };
    Ok(QuantReport {
        model: q.name.clone(),
        arch: model.source_arch.label().to_string(),
        calibration: q.calibration.clone(),
        calib_images: calib.len(),
        input_scale: q.input.scale,
        layers,
        head_weight_scale: q.head.weight_scale,
        logits_sqnr_db: sqnr_db(lsig, lnoise),
        test_images: test.len(),
        float_top1: hits(&pf),
        int8_top1: hits(&pq),
        agreement: pf.iter().zip(&pq).filter(|(a, b)| a == b).count() as f64 / n,
        accumulator_bits: bounds.iter().map(|b| b.bits_needed).collect(),
    })
}

impl QuantReport {
    pub const CSV_HEADER: &'static str = "index,name,in_channels,out_channels,stride,out_size,w_min,w_max,w_std,w_centre_std,w_surround_std,weight_scale_min,weight_scale_max,float_max,output_scale,clipped_fraction,sqnr_db";

    pub fn csv(&self) -> String {
        let mut s = String::from(Self::CSV_HEADER);
        s.push('\n');
        for l in &self.layers {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{:.6e},{:.6e},{:.6e},{:.6e},{:.6e},{},{:.6e},{:.6e},{:.3}",
                l.index,
                l.name,
                l.in_channels,
                l.out_channels,
                l.stride,
                l.out_size,
                l.weight.min,
                l.weight.max,
                l.weight.std,
                l.weight.centre_std,
                l.weight.surround_std,
                l.weight_scale_min,
                l.weight_scale_max,
                l.float_max,
                l.output_scale,
                l.clipped_fraction,
                l.sqnr_db
            );
        }
        s
    }

    /// The readable terminal table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} ({}), calibration {} on {} images, input scale {:.5}",
            self.model, self.arch, self.calibration, self.calib_images, self.input_scale
        );
        let _ = writeln!(
            s,
            "{:<10} {:>9} {:>2} {:>18} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>8}",
            "layer",
            "I->O",
            "s",
            "w range",
            "w std",
            "centre",
            "surround",
            "act max",
            "act scale",
            "clip%",
            "SQNR dB"
        );
        for l in &self.layers {
            let _ = writeln!(
                s,
                "{:<10} {:>9} {:>2} {:>18} {:>9.5} {:>9.5} {:>9.5} {:>9.4} {:>9.5} {:>7.3} {:>8.2}",
                l.name,
                format!("{}->{}", l.in_channels, l.out_channels),
                l.stride,
                format!("[{:.3}, {:.3}]", l.weight.min, l.weight.max),
                l.weight.std,
                l.weight.centre_std,
                l.weight.surround_std,
                l.float_max,
                l.output_scale,
                100.0 * l.clipped_fraction,
                l.sqnr_db
            );
        }
        let _ = writeln!(
            s,
            "logits SQNR {:.2} dB; top-1 on {} test images: float {:.2}%  INT8 {:.2}%  (delta {:+.2} points, {:.2}% same prediction)",
            self.logits_sqnr_db,
            self.test_images,
            100.0 * self.float_top1,
            100.0 * self.int8_top1,
            100.0 * (self.int8_top1 - self.float_top1),
            100.0 * self.agreement
        );
        s
    }

    /// Writes `report.json` and `report.csv` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| QuantError::io(dir, e))?;
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| QuantError::Config(format!("report: {e}")))?;
        let p = dir.join("report.json");
        std::fs::write(&p, json).map_err(|e| QuantError::io(&p, e))?;
        let p = dir.join("report.csv");
        std::fs::write(&p, self.csv()).map_err(|e| QuantError::io(&p, e))
    }
}

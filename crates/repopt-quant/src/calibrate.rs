//! Activation calibration: histograms of the float network's activations on
//! real training images, and the three ways of turning a histogram into a
//! clipping threshold `T` (scale `T / 255` for uint8 activations, `T / 127`
//! for the int8 network input).

use candle_core::Tensor;
use repopt_data::Dataset;
use serde::{Deserialize, Serialize};

use crate::deploy::FloatNet;
use crate::error::{QuantError, Result};

/// Histogram resolution (bins over `[0, max]`).
pub const BINS: usize = 2048;

/// How activation scales are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Calibration {
    /// `T` = the largest value seen (no clipping).
    MinMax,
    /// `T` = this percentile (e.g. 99.99) of all values, zeros included.
    Percentile(f64),
    /// `T` minimising the histogram's quantisation MSE (rounding + clipping).
    Mse,
}

impl Calibration {
    /// `minmax`, `percentile` (with `percentile`) or `mse`.
    pub fn parse(method: &str, percentile: f64) -> Result<Self> {
        match method {
            "minmax" | "min-max" => Ok(Calibration::MinMax),
            "percentile" => {
                if !(percentile > 0.0 && percentile <= 100.0) {
                    return Err(QuantError::Config(format!(
                        "--percentile {percentile}: expected a value in (0, 100]"
                    )));
                }
                Ok(Calibration::Percentile(percentile))
            }
            "mse" => Ok(Calibration::Mse),
            other => Err(QuantError::Config(format!(
                "calibration method `{other}`: expected minmax, percentile or mse"
            ))),
        }
    }

    /// The name recorded in the INT8 manifest (`minmax`, `percentile99.99`, `mse`).
    pub fn name(&self) -> String {
        match self {
            Calibration::MinMax => "minmax".into(),
            Calibration::Percentile(p) => format!("percentile{p}"),
            Calibration::Mse => "mse".into(),
        }
    }

    /// Needs the histogram pass (everything but min-max).
    pub fn needs_histogram(&self) -> bool {
        !matches!(self, Calibration::MinMax)
    }
}

/// Histogram of non-negative values (post-ReLU activations, or magnitudes of
/// the network input): exact zeros counted apart, the rest in [`BINS`] equal
/// bins over `(0, max]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub max: f32,
    pub zeros: u64,
    pub counts: Vec<u64>,
}

impl Histogram {
    pub fn new(max: f32) -> Self {
        Self {
            max,
            zeros: 0,
            counts: vec![0; BINS],
        }
    }

    pub fn total(&self) -> u64 {
        self.zeros + self.counts.iter().sum::<u64>()
    }

    fn width(&self) -> f64 {
        self.max as f64 / BINS as f64
    }

    /// Adds magnitudes `|v|` (values above `max` go to the last bin).
    pub fn add(&mut self, values: &[f32]) {
        let w = self.width();
        for &v in values {
            let a = v.abs() as f64;
            if a == 0.0 || w == 0.0 || !a.is_finite() {
                self.zeros += 1;
                continue;
            }
            let b = ((a / w) as usize).min(BINS - 1);
            self.counts[b] += 1;
        }
    }

    /// The clipping threshold for `levels` positive quantisation levels
    /// (255 for uint8, 127 for int8). Always finite and > 0.
    pub fn threshold(&self, method: Calibration, levels: u32) -> f32 {
        if !(self.max.is_finite() && self.max > 0.0) {
            return 1.0; // a dead layer: any positive scale represents its zeros
        }
        let t = match method {
            Calibration::MinMax => return self.max,
            Calibration::Percentile(p) => self.percentile(p),
            Calibration::Mse => self.mse_threshold(levels),
        };
        (t as f32).clamp(f32::MIN_POSITIVE, self.max)
    }

    fn percentile(&self, p: f64) -> f64 {
        let total = self.total();
        let target = ((p / 100.0) * total as f64).ceil() as u64;
        let mut cum = self.zeros;
        let w = self.width();
        if cum >= target {
            return w; // nearly everything is zero: the smallest bin edge
        }
        for (b, &c) in self.counts.iter().enumerate() {
            cum += c;
            if cum >= target {
                return (b + 1) as f64 * w;
            }
        }
        self.max as f64
    }

    /// Quantisation MSE of the histogram (bin centres) for threshold `t`.
    pub fn quantization_mse(&self, t: f64, levels: u32) -> f64 {
        let w = self.width();
        let delta = t / levels as f64;
        let mut err = 0.0;
        for (b, &c) in self.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let x = (b as f64 + 0.5) * w;
            let q = (x / delta).round().min(levels as f64) * delta;
            err += c as f64 * (x - q) * (x - q);
        }
        err / self.total().max(1) as f64
    }

    fn mse_threshold(&self, levels: u32) -> f64 {
        let w = self.width();
        let mut best = (f64::INFINITY, self.max as f64);
        // candidates: bin edges from 1/32 of the range to the maximum
        for k in (BINS / 32..=BINS).rev() {
            let t = k as f64 * w;
            let e = self.quantization_mse(t, levels);
            if e < best.0 {
                best = (e, t);
            }
        }
        best.1
    }
}

/// Histograms of the network input (magnitudes) and of every layer's
/// post-ReLU output, over the calibration images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationStats {
    pub images: usize,
    pub input: Histogram,
    pub layers: Vec<Histogram>,
}

fn host_f32(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?
        .to_device(&candle_core::Device::Cpu)?
        .to_vec1::<f32>()?)
}

fn max_abs(t: &Tensor) -> Result<f32> {
    Ok(t.abs()?
        .flatten_all()?
        .max(0)?
        .to_device(&candle_core::Device::Cpu)?
        .to_scalar::<f32>()?)
}

/// Collects activation statistics of `net` on `data[indices]`, in batches.
/// Min-max needs one pass (maxima); the other methods a second pass that
/// fills histograms over `[0, max]`. `tick(k)` reports `k` more images done
/// (passes counted separately).
pub fn collect_stats(
    net: &FloatNet,
    data: &Dataset,
    indices: &[usize],
    method: Calibration,
    batch_size: usize,
    tick: &mut dyn FnMut(usize),
) -> Result<ActivationStats> {
    if indices.is_empty() {
        return Err(QuantError::Config(
            "calibration needs at least one image".into(),
        ));
    }
    let bs = batch_size.max(1);
    let mut input = Histogram::new(0.0);
    let mut layers: Vec<Histogram> = Vec::new();
    // pass 1: maxima
    for chunk in indices.chunks(bs) {
        let x = net.batch(data, chunk)?;
        let out = net.forward(&x)?;
        input.max = input.max.max(max_abs(&x)?);
        if layers.is_empty() {
            layers = vec![Histogram::new(0.0); out.per_layer.len()];
        }
        for (h, t) in layers.iter_mut().zip(&out.per_layer) {
            h.max = h.max.max(max_abs(t)?);
        }
        tick(chunk.len());
    }
    if method.needs_histogram() {
        input = Histogram::new(input.max);
        layers = layers.iter().map(|h| Histogram::new(h.max)).collect();
        for chunk in indices.chunks(bs) {
            let x = net.batch(data, chunk)?;
            let out = net.forward(&x)?;
            input.add(&host_f32(&x)?);
            for (h, t) in layers.iter_mut().zip(&out.per_layer) {
                h.add(&host_f32(t)?);
            }
            tick(chunk.len());
        }
    }
    Ok(ActivationStats {
        images: indices.len(),
        input,
        layers,
    })
}

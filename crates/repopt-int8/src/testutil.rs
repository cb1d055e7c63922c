//! Random valid INT8 models and images for property tests, here and in the
//! simulator, the Candle reference and the HLS generator. Deterministic in
//! the seed (SplitMix64, no dependency).

use repopt_spec::{conv_out_size, ModelSpec};

use crate::arith::quantize_multiplier;
use crate::model::{InputQuant, Int8Head, Int8Layer, Int8Model, LayerGeometry, FORMAT_VERSION};

/// SplitMix64: a tiny deterministic generator.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi]` (inclusive).
    pub fn range_i64(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo) as u64 + 1;
        lo + (self.next_u64() % span) as i64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Geometry of a chain of layers given `(out_channels, stride)` per layer.
pub fn chain_geometry(
    in_channels: usize,
    image_size: usize,
    layers: &[(usize, usize)],
) -> Vec<LayerGeometry> {
    let (mut ch, mut size) = (in_channels, image_size);
    layers
        .iter()
        .enumerate()
        .map(|(i, &(out, stride))| {
            let g = LayerGeometry {
                index: i,
                name: format!("layers.{i}"),
                in_channels: ch,
                out_channels: out,
                stride,
                in_size: size,
                out_size: conv_out_size(size, stride),
            };
            ch = out;
            size = g.out_size;
            g
        })
        .collect()
}

/// A random valid model with the given layer geometry (a valid chain) and
/// head size. Weights are uniform in [-127, 127]; multipliers are chosen so
/// that typical outputs spread over [0, 255] rather than saturating, and
/// biases are moderate, so every layer exercises requantisation and the ReLU.
/// Worst-case accumulators fit int32 for `in_channels <= 7000`.
pub fn random_model_with(seed: u64, geometry: &[LayerGeometry], classes: usize) -> Int8Model {
    let mut rng = SplitMix64(seed);
    let first = &geometry[0];
    let channels = first.in_channels;
    let mean: Vec<f32> = (0..channels)
        .map(|_| 0.3 + 0.4 * rng.unit_f64() as f32)
        .collect();
    let std: Vec<f32> = (0..channels)
        .map(|_| 0.15 + 0.2 * rng.unit_f64() as f32)
        .collect();
    let in_scale = 0.02f32 + 0.01 * rng.unit_f64() as f32;
    let input = InputQuant::new(channels, first.in_size, mean, std, in_scale);

    let mut scale = in_scale;
    let mut layers = Vec::with_capacity(geometry.len());
    for g in geometry {
        let o = g.out_channels;
        let fan_in = 9 * g.in_channels;
        let weights: Vec<i8> = (0..g.weight_len())
            .map(|_| rng.range_i64(-127, 127) as i8)
            .collect();
        // typical |acc| ~ sqrt(fan_in) * 73 * mean|x|; aim outputs at ~ 64
        let mean_x = if g.index == 0 { 40.0 } else { 60.0 };
        let acc_std = (fan_in as f64).sqrt() * 73.0 * mean_x;
        let target = 64.0 / acc_std;
        let weight_scales: Vec<f32> = (0..o)
            .map(|_| (0.005 + 0.01 * rng.unit_f64()) as f32)
            .collect();
        let mean_ws = weight_scales.iter().map(|&w| w as f64).sum::<f64>() / o as f64;
        let out_scale = (scale as f64 * mean_ws / target) as f32;
        let mut multiplier = Vec::with_capacity(o);
        let mut shift = Vec::with_capacity(o);
        for &ws in &weight_scales {
            let real = scale as f64 * ws as f64 / out_scale as f64;
            let (m, s) = quantize_multiplier(real).expect("random multipliers are in range");
            multiplier.push(m);
            shift.push(s);
        }
        let bmax = (acc_std * 0.5) as i64;
        let bias: Vec<i32> = (0..o).map(|_| rng.range_i64(-bmax, bmax) as i32).collect();
        layers.push(Int8Layer {
            geometry: g.clone(),
            input_scale: scale,
            output_scale: out_scale,
            weight_scales,
            weights,
            bias,
            multiplier,
            shift,
        });
        scale = out_scale;
    }
    let f = geometry.last().map(|g| g.out_channels).unwrap_or(channels);
    let head = Int8Head {
        in_features: f,
        classes,
        input_scale: scale,
        weight_scale: (0.001 + 0.01 * rng.unit_f64()) as f32,
        weights: (0..classes * f)
            .map(|_| rng.range_i64(-127, 127) as i8)
            .collect(),
        bias: (0..classes)
            .map(|_| rng.range_i64(-100_000, 100_000) as i32)
            .collect(),
    };
    Int8Model {
        format_version: FORMAT_VERSION,
        name: format!("random-{seed}"),
        calibration: "random".into(),
        spec: None,
        input,
        layers,
        head,
    }
}

/// A random valid model for a network spec (the spec is recorded in the model).
pub fn random_model(seed: u64, spec: &ModelSpec) -> Int8Model {
    let geometry: Vec<LayerGeometry> = spec
        .conv_layers()
        .iter()
        .map(LayerGeometry::from_conv)
        .collect();
    let mut m = random_model_with(seed, &geometry, spec.classes);
    m.name = spec.name.clone();
    m.spec = Some(spec.clone());
    m
}

/// A random HWC uint8 image of the model's input size.
pub fn random_image(seed: u64, model: &Int8Model) -> Vec<u8> {
    let mut rng = SplitMix64(seed ^ 0xA5A5_5A5A_DEAD_BEEF);
    let n = model.input.size * model.input.size * model.input.channels;
    (0..n).map(|_| rng.range_i64(0, 255) as u8).collect()
}

//! From a float deployed model and calibration statistics to the contract's
//! INT8 model (`docs/int8-datapath.md` §10, via `repopt_int8::host`).

use candle_core::Device;
use repopt_data::Dataset;
use repopt_int8::arith::quantize_symmetric;
use repopt_int8::host::{
    channel_multiplier, oihw_to_ohwi, quantize_bias, quantize_per_channel, symmetric_scale,
};
use repopt_int8::{InputQuant, Int8Head, Int8Layer, Int8Model, FORMAT_VERSION};

use crate::calibrate::{collect_stats, ActivationStats, Calibration};
use crate::deploy::DeployedModel;
use crate::error::{QuantError, Result};

/// Options of [`quantize_model`].
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizeOptions {
    pub calibration: Calibration,
    /// Number of (class-balanced) training images used for calibration.
    pub calib_images: usize,
    pub batch_size: usize,
}

impl Default for QuantizeOptions {
    fn default() -> Self {
        Self {
            calibration: Calibration::MinMax,
            calib_images: 512,
            batch_size: 64,
        }
    }
}

/// Indices of the calibration images: a deterministic class-balanced
/// selection of `n` images of `data` (all of them if it has fewer).
pub fn calibration_indices(data: &Dataset, n: usize) -> Vec<usize> {
    data.balanced_indices(n)
}

/// Scales of the input and of every layer's output from the statistics.
pub fn activation_scales(stats: &ActivationStats, method: Calibration) -> (f32, Vec<f32>) {
    let s_in = stats.input.threshold(method, 127) / 127.0;
    let s_out = stats
        .layers
        .iter()
        .map(|h| h.threshold(method, 255) / 255.0)
        .collect();
    (s_in, s_out)
}

/// Builds the INT8 model: per-output-channel symmetric weights, the given
/// activation scales, int32 biases, requantisation pairs, the input LUT and
/// the head (§10). Errors name the layer and channel that cannot be
/// represented (bias outside int32, multiplier out of range).
pub fn build_int8(
    model: &DeployedModel,
    input_scale: f32,
    output_scales: &[f32],
    calibration: &str,
) -> Result<Int8Model> {
    if output_scales.len() != model.layers.len() {
        return Err(QuantError::Config(format!(
            "{} output scales for {} layers",
            output_scales.len(),
            model.layers.len()
        )));
    }
    let spec = &model.spec;
    let norm = &model.normalization;
    let input = InputQuant::new(
        spec.in_channels,
        spec.image_size,
        norm.mean.clone(),
        norm.std.clone(),
        input_scale,
    );
    let mut layers = Vec::with_capacity(model.layers.len());
    let mut s_in = input_scale;
    for (l, &s_out) in model.layers.iter().zip(output_scales) {
        let g = &l.geometry;
        let (o, i) = (g.out_channels, g.in_channels);
        let (q_oihw, weight_scales) = quantize_per_channel(&l.weight, o);
        let weights = oihw_to_ohwi(&q_oihw, o, i);
        let mut bias = Vec::with_capacity(o);
        let mut multiplier = Vec::with_capacity(o);
        let mut shift = Vec::with_capacity(o);
        for (k, (&b, &sw)) in l.bias.iter().zip(&weight_scales).enumerate() {
            let field = format!("layer {} ({}) bias[{k}]", g.index, g.name);
            bias.push(
                quantize_bias(b, s_in, sw, &field).map_err(|e| QuantError::Quantize {
                    field: field.clone(),
                    message: e.to_string(),
                })?,
            );
            let (m, s) = channel_multiplier(s_in, sw, s_out).map_err(|e| QuantError::Quantize {
                field: format!("layer {} ({}) multiplier[{k}]", g.index, g.name),
                message: format!("{s_in} * {sw} / {s_out}: {e}"),
            })?;
            multiplier.push(m);
            shift.push(s);
        }
        layers.push(Int8Layer {
            geometry: g.clone(),
            input_scale: s_in,
            output_scale: s_out,
            weight_scales,
            weights,
            bias,
            multiplier,
            shift,
        });
        s_in = s_out;
    }
    let k = model.classes();
    let f = model.head_w.len() / k.max(1);
    let max_abs = model.head_w.iter().fold(0f32, |m, &w| m.max(w.abs()));
    let s_hw = symmetric_scale(max_abs);
    let head = Int8Head {
        in_features: f,
        classes: k,
        input_scale: s_in,
        weight_scale: s_hw,
        weights: model
            .head_w
            .iter()
            .map(|&w| quantize_symmetric(w as f64, s_hw as f64))
            .collect(),
        bias: model
            .head_b
            .iter()
            .enumerate()
            .map(|(c, &b)| {
                let field = format!("head bias[{c}]");
                quantize_bias(b, s_in, s_hw, &field).map_err(|e| QuantError::Quantize {
                    field,
                    message: e.to_string(),
                })
            })
            .collect::<Result<Vec<i32>>>()?,
    };
    let m = Int8Model {
        format_version: FORMAT_VERSION,
        name: format!("{}-{}", spec.name, model.source_arch.label()),
        calibration: calibration.to_string(),
        spec: Some(spec.clone()),
        input,
        layers,
        head,
    };
    m.validate()?;
    Ok(m)
}

/// The whole post-training quantisation: calibration on `train` (float
/// network on `dev`), then [`build_int8`]. Returns the model and the
/// statistics (for the report).
pub fn quantize_model(
    model: &DeployedModel,
    train: &Dataset,
    options: &QuantizeOptions,
    dev: &Device,
    tick: &mut dyn FnMut(usize),
) -> Result<(Int8Model, ActivationStats, Vec<usize>)> {
    model.check_data(train)?;
    let indices = calibration_indices(train, options.calib_images);
    let net = model.float_net(dev)?;
    let stats = collect_stats(
        &net,
        train,
        &indices,
        options.calibration,
        options.batch_size,
        tick,
    )?;
    let (s_in, s_out) = activation_scales(&stats, options.calibration);
    let int8 = build_int8(model, s_in, &s_out, &options.calibration.name())?;
    Ok((int8, stats, indices))
}

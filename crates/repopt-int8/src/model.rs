//! The in-memory INT8 model (contract, "Tensors and layouts") and its
//! validation. File I/O lives in [`crate::format`].

use repopt_spec::{conv_out_size, ConvLayer, ModelSpec};
use serde::{Deserialize, Serialize};

use crate::arith::{multiplier_is_valid, quantize_symmetric, MULTIPLIER_MIN, SHIFT_MAX, SHIFT_MIN};
use crate::error::Int8Error;

/// Version of the INT8 file set (`manifest.json` + `model.safetensors`).
pub const FORMAT_VERSION: u32 = 1;
/// Value of the manifest's `format` field.
pub const FORMAT_NAME: &str = "repopt-int8";
/// The contract document every implementation cites.
pub const CONTRACT: &str = "docs/int8-datapath.md v1";

/// Element type of a layer's input activations (contract, "Types").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActDtype {
    /// Network input: int8 in [-127, 127], zero point 0.
    I8,
    /// Post-ReLU activations: uint8 in [0, 255], zero point 0.
    U8,
}

impl ActDtype {
    /// Largest magnitude an activation of this type can take (used by the
    /// worst-case accumulator bound; 128 for I8 covers a stray -128).
    pub fn max_abs(self) -> u64 {
        match self {
            ActDtype::I8 => 128,
            ActDtype::U8 => 255,
        }
    }
}

/// Geometry of one 3x3 conv layer, padding 1 (square maps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerGeometry {
    /// Position in the network, 0-based.
    pub index: usize,
    /// Human name, e.g. `stage2.3` (from [`ConvLayer::name`]).
    pub name: String,
    pub in_channels: usize,
    pub out_channels: usize,
    /// 1 or 2.
    pub stride: usize,
    pub in_size: usize,
    /// `floor((in_size - 1) / stride) + 1`.
    pub out_size: usize,
}

impl LayerGeometry {
    pub fn from_conv(l: &ConvLayer) -> Self {
        Self {
            index: l.index,
            name: l.name(),
            in_channels: l.in_channels,
            out_channels: l.out_channels,
            stride: l.stride,
            in_size: l.in_size,
            out_size: l.out_size,
        }
    }

    /// Contract: layer 0 reads the int8 network input, later layers uint8.
    pub fn input_dtype(&self) -> ActDtype {
        if self.index == 0 {
            ActDtype::I8
        } else {
            ActDtype::U8
        }
    }

    /// Weight tensor shape `[O, 3, 3, I]` (OHWI).
    pub fn weight_shape(&self) -> Vec<usize> {
        vec![self.out_channels, 3, 3, self.in_channels]
    }

    pub fn weight_len(&self) -> usize {
        self.out_channels
            .saturating_mul(9)
            .saturating_mul(self.in_channels)
    }

    /// Input length, HWC: `in_size * in_size * in_channels`.
    pub fn input_len(&self) -> usize {
        self.in_size
            .saturating_mul(self.in_size)
            .saturating_mul(self.in_channels)
    }

    /// Output length, HWC: `out_size * out_size * out_channels`.
    pub fn output_len(&self) -> usize {
        self.out_size
            .saturating_mul(self.out_size)
            .saturating_mul(self.out_channels)
    }
}

/// Host-side input quantisation (contract, "Network input").
///
/// `lut[c * 256 + p]` is the int8 value of pixel value `p` in channel `c`:
/// `clamp(round_half_away(((p / 255) - mean[c]) / std[c] / scale), -127, 127)`
/// evaluated once in f64 by [`InputQuant::new`]. The table, not the formula,
/// is authoritative: implementations look values up, so no float arithmetic
/// (whose rounding could differ between compilers) is part of the datapath.
#[derive(Debug, Clone, PartialEq)]
pub struct InputQuant {
    pub channels: usize,
    /// Image height = width.
    pub size: usize,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// Input scale `s_in`: real value = int8 value * scale.
    pub scale: f32,
    /// `[channels][256]` int8 lookup table.
    pub lut: Vec<i8>,
}

impl InputQuant {
    /// Builds the lookup table from the normalisation and the input scale.
    pub fn new(channels: usize, size: usize, mean: Vec<f32>, std: Vec<f32>, scale: f32) -> Self {
        let mut lut = Vec::with_capacity(channels * 256);
        for c in 0..channels {
            let m = mean.get(c).copied().unwrap_or(0.0) as f64;
            let s = std.get(c).copied().unwrap_or(1.0) as f64;
            for p in 0..256u32 {
                let x = (p as f64 / 255.0 - m) / s;
                lut.push(quantize_symmetric(x, scale as f64));
            }
        }
        Self {
            channels,
            size,
            mean,
            std,
            scale,
            lut,
        }
    }
}

/// One conv layer: conv 3x3 (padding 0-valued, stride 1 or 2) + bias +
/// requantisation + clamp to [0, 255] (= ReLU).
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Layer {
    pub geometry: LayerGeometry,
    /// Scale of the input activations.
    pub input_scale: f32,
    /// Scale of the uint8 output activations.
    pub output_scale: f32,
    /// Per output channel weight scale `s_w[o]`.
    pub weight_scales: Vec<f32>,
    /// int8 in [-127, 127], layout `[O][3][3][I]`.
    pub weights: Vec<i8>,
    /// int32 bias in the accumulator scale `input_scale * s_w[o]`.
    pub bias: Vec<i32>,
    /// Per output channel Q31 multiplier, 0 or in [2^30, 2^31).
    pub multiplier: Vec<i32>,
    /// Per output channel shift in [-30, 31]; total right shift `31 + shift`.
    pub shift: Vec<i32>,
}

impl Int8Layer {
    /// Weight `w[o][ky][kx][i]`.
    #[inline]
    pub fn weight(&self, o: usize, ky: usize, kx: usize, i: usize) -> i8 {
        let g = &self.geometry;
        self.weights[((o * 3 + ky) * 3 + kx) * g.in_channels + i]
    }
}

/// The linear head (contract, "Global average pooling and head").
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Head {
    pub in_features: usize,
    pub classes: usize,
    /// Scale of the pooled uint8 features (= last layer's output scale).
    pub input_scale: f32,
    /// ONE per-tensor weight scale, so int32 logits of all classes share a
    /// scale and integer argmax equals float argmax.
    pub weight_scale: f32,
    /// int8 in [-127, 127], layout `[classes][in_features]`.
    pub weights: Vec<i8>,
    /// int32 bias in scale `input_scale * weight_scale`.
    pub bias: Vec<i32>,
}

impl Int8Head {
    /// Real value of one int32 logit unit: `input_scale * weight_scale` (f32).
    pub fn logit_scale(&self) -> f32 {
        self.input_scale * self.weight_scale
    }
}

/// A complete quantised network.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Model {
    pub format_version: u32,
    pub name: String,
    /// Calibration method that produced the scales, e.g. `minmax`, `percentile99.99`.
    pub calibration: String,
    /// The network spec, when the model was built from one.
    pub spec: Option<ModelSpec>,
    pub input: InputQuant,
    pub layers: Vec<Int8Layer>,
    pub head: Int8Head,
}

fn invalid(path: &str, field: impl Into<String>, message: impl Into<String>) -> Int8Error {
    Int8Error::Invalid {
        path: path.to_string(),
        field: field.into(),
        message: message.into(),
    }
}

fn check_scale(path: &str, field: String, v: f32) -> Result<(), Int8Error> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(invalid(
            path,
            field,
            format!("scale {v} must be finite and > 0"),
        ))
    }
}

fn check_len(path: &str, field: String, found: usize, expected: usize) -> Result<(), Int8Error> {
    if found == expected {
        Ok(())
    } else {
        Err(invalid(
            path,
            field,
            format!("has {found} values, expected {expected}"),
        ))
    }
}

fn check_i8_range(path: &str, field: String, v: &[i8]) -> Result<(), Int8Error> {
    match v.iter().position(|&w| w == i8::MIN) {
        None => Ok(()),
        Some(k) => Err(invalid(
            path,
            format!("{field}[{k}]"),
            "value -128 is outside the symmetric int8 range [-127, 127]",
        )),
    }
}

impl Int8Model {
    /// Checks every invariant of the contract; `path` names the source in
    /// errors (`<memory>` for models built in memory).
    pub fn validate_as(&self, path: &str) -> Result<(), Int8Error> {
        if self.format_version != FORMAT_VERSION {
            return Err(Int8Error::UnsupportedVersion {
                path: path.into(),
                found: Some(self.format_version as u64),
                expected: FORMAT_VERSION,
            });
        }
        let inp = &self.input;
        if inp.channels == 0 || inp.size == 0 {
            return Err(invalid(
                path,
                "input",
                format!(
                    "channels ({}) and size ({}) must be >= 1",
                    inp.channels, inp.size
                ),
            ));
        }
        check_len(path, "input.mean".into(), inp.mean.len(), inp.channels)?;
        check_len(path, "input.std".into(), inp.std.len(), inp.channels)?;
        for (c, (&m, &s)) in inp.mean.iter().zip(&inp.std).enumerate() {
            if !m.is_finite() {
                return Err(invalid(
                    path,
                    format!("input.mean[{c}]"),
                    format!("{m} is not finite"),
                ));
            }
            check_scale(path, format!("input.std[{c}]"), s)?;
        }
        check_scale(path, "input.scale".into(), inp.scale)?;
        check_len(
            path,
            "input.lut".into(),
            inp.lut.len(),
            inp.channels.saturating_mul(256),
        )?;
        check_i8_range(path, "input.lut".into(), &inp.lut)?;

        if self.layers.is_empty() {
            return Err(invalid(path, "layers", "at least one conv layer is needed"));
        }
        let (mut ch, mut size, mut scale) = (inp.channels, inp.size, inp.scale);
        let mut prev = "input".to_string();
        for (i, l) in self.layers.iter().enumerate() {
            let g = &l.geometry;
            let f = |name: &str| format!("layers.{i}.{name}");
            if g.index != i {
                return Err(invalid(
                    path,
                    f("index"),
                    format!("is {}, expected {i}", g.index),
                ));
            }
            if g.stride != 1 && g.stride != 2 {
                return Err(invalid(
                    path,
                    f("stride"),
                    format!("is {}, expected 1 or 2", g.stride),
                ));
            }
            if g.out_channels == 0 {
                return Err(invalid(path, f("out_channels"), "must be >= 1"));
            }
            if g.in_channels != ch {
                return Err(invalid(
                    path,
                    f("in_channels"),
                    format!(
                        "is {}, expected {ch} (the output channels of {prev})",
                        g.in_channels
                    ),
                ));
            }
            if g.in_size != size {
                return Err(invalid(
                    path,
                    f("in_size"),
                    format!(
                        "is {}, expected {size} (the output size of {prev})",
                        g.in_size
                    ),
                ));
            }
            let want = conv_out_size(g.in_size, g.stride);
            if g.out_size != want {
                return Err(invalid(
                    path,
                    f("out_size"),
                    format!(
                        "is {}, expected {want} = floor(({} - 1) / {}) + 1",
                        g.out_size, g.in_size, g.stride
                    ),
                ));
            }
            if l.input_scale != scale {
                return Err(invalid(
                    path,
                    f("input_scale"),
                    format!(
                        "is {}, expected {scale} (the output scale of {prev})",
                        l.input_scale
                    ),
                ));
            }
            check_scale(path, f("input_scale"), l.input_scale)?;
            check_scale(path, f("output_scale"), l.output_scale)?;
            let o = g.out_channels;
            check_len(path, f("weight"), l.weights.len(), g.weight_len())?;
            check_len(path, f("bias"), l.bias.len(), o)?;
            check_len(path, f("multiplier"), l.multiplier.len(), o)?;
            check_len(path, f("shift"), l.shift.len(), o)?;
            check_len(path, f("weight_scale"), l.weight_scales.len(), o)?;
            check_i8_range(path, f("weight"), &l.weights)?;
            for (k, &s) in l.weight_scales.iter().enumerate() {
                check_scale(path, format!("layers.{i}.weight_scale[{k}]"), s)?;
            }
            for k in 0..o {
                let (m, s) = (l.multiplier[k], l.shift[k]);
                if !(SHIFT_MIN..=SHIFT_MAX).contains(&s) {
                    return Err(invalid(
                        path,
                        format!("layers.{i}.shift[{k}]"),
                        format!("{s} is out of range, expected {SHIFT_MIN}..={SHIFT_MAX}"),
                    ));
                }
                if !multiplier_is_valid(m, s) {
                    return Err(invalid(
                        path,
                        format!("layers.{i}.multiplier[{k}]"),
                        format!(
                            "{m} is out of range, expected 0 or {MULTIPLIER_MIN}..={}",
                            i32::MAX
                        ),
                    ));
                }
            }
            ch = g.out_channels;
            size = g.out_size;
            scale = l.output_scale;
            prev = format!("layer {i}");
        }

        let h = &self.head;
        if h.in_features != ch {
            return Err(invalid(
                path,
                "head.in_features",
                format!(
                    "is {}, expected {ch} (the output channels of {prev})",
                    h.in_features
                ),
            ));
        }
        if h.classes == 0 {
            return Err(invalid(path, "head.classes", "must be >= 1"));
        }
        if h.input_scale != scale {
            return Err(invalid(
                path,
                "head.input_scale",
                format!(
                    "is {}, expected {scale} (the output scale of {prev})",
                    h.input_scale
                ),
            ));
        }
        check_scale(path, "head.weight_scale".into(), h.weight_scale)?;
        check_len(
            path,
            "head.weight".into(),
            h.weights.len(),
            h.classes.saturating_mul(h.in_features),
        )?;
        check_len(path, "head.bias".into(), h.bias.len(), h.classes)?;
        check_i8_range(path, "head.weight".into(), &h.weights)?;

        if let Some(spec) = &self.spec {
            spec.validate()
                .map_err(|e| invalid(path, "spec", e.to_string()))?;
            let convs = spec.conv_layers();
            if convs.len() != self.layers.len() {
                return Err(invalid(
                    path,
                    "spec",
                    format!(
                        "describes {} conv layers, the model has {}",
                        convs.len(),
                        self.layers.len()
                    ),
                ));
            }
            for (c, l) in convs.iter().zip(&self.layers) {
                let want = LayerGeometry::from_conv(c);
                if want != l.geometry {
                    return Err(invalid(
                        path,
                        format!("layers.{}", c.index),
                        format!("geometry {:?} differs from the spec's {want:?}", l.geometry),
                    ));
                }
            }
            if spec.classes != h.classes {
                return Err(invalid(
                    path,
                    "head.classes",
                    format!("is {}, the spec says {}", h.classes, spec.classes),
                ));
            }
        }
        Ok(())
    }

    /// [`Int8Model::validate_as`] for a model built in memory.
    pub fn validate(&self) -> Result<(), Int8Error> {
        self.validate_as("<memory>")
    }

    /// Geometry of every layer.
    pub fn geometry(&self) -> Vec<LayerGeometry> {
        self.layers.iter().map(|l| l.geometry.clone()).collect()
    }
}

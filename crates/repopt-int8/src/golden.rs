//! The golden reference engine: plain integer loops that state the contract
//! (`docs/int8-datapath.md`) as directly as possible. Accumulation is done in
//! i64 and each exact sum is checked against the accumulator width, so an
//! overflow is an error naming the layer and position, never a silent wrap.

use crate::arith::{fits_bits, requantize_u8};
use crate::error::Int8Error;
use crate::model::{ActDtype, Int8Head, Int8Layer, Int8Model};

/// The contract's accumulator width.
pub const ACC_BITS: u32 = 32;

/// An activation element type the conv layers accept: `i8` (network input)
/// or `u8` (every later layer).
pub trait Activation: Copy {
    const DTYPE: ActDtype;
    fn widen(self) -> i64;
}

impl Activation for i8 {
    const DTYPE: ActDtype = ActDtype::I8;
    #[inline]
    fn widen(self) -> i64 {
        self as i64
    }
}

impl Activation for u8 {
    const DTYPE: ActDtype = ActDtype::U8;
    #[inline]
    fn widen(self) -> i64 {
        self as i64
    }
}

/// Everything one forward pass produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outputs {
    /// Quantised network input, HWC int8.
    pub input: Vec<i8>,
    /// Output of every conv layer, HWC uint8.
    pub per_layer: Vec<Vec<u8>>,
    /// Global average pool of the last layer, uint8 per channel.
    pub pooled: Vec<u8>,
    /// int32 logits, scale [`Int8Head::logit_scale`].
    pub logits: Vec<i32>,
}

impl Outputs {
    /// Logits dequantised with the head's logit scale (reports only).
    pub fn logits_f32(&self, model: &Int8Model) -> Vec<f32> {
        let s = model.head.logit_scale();
        self.logits.iter().map(|&l| l as f32 * s).collect()
    }

    /// Index of the largest logit (first one on ties).
    pub fn argmax(&self) -> usize {
        let mut best = 0;
        for (k, &l) in self.logits.iter().enumerate() {
            if l > self.logits[best] {
                best = k;
            }
        }
        best
    }
}

/// Quantises an HWC uint8 image (`size * size * channels` pixels) through the
/// model's lookup table (contract, "Network input").
pub fn quantize_input(model: &Int8Model, image: &[u8]) -> Result<Vec<i8>, Int8Error> {
    let inp = &model.input;
    check_input_len(model, image.len())?;
    if inp.lut.len() != inp.channels.saturating_mul(256) {
        return Err(Int8Error::Invalid {
            path: "<memory>".into(),
            field: "input.lut".into(),
            message: format!(
                "has {} values, expected {}",
                inp.lut.len(),
                inp.channels * 256
            ),
        });
    }
    Ok(image
        .iter()
        .enumerate()
        .map(|(k, &p)| inp.lut[(k % inp.channels) * 256 + p as usize])
        .collect())
}

/// Quantises an already normalised HWC float image:
/// `clamp(round_half_away(x / input_scale), -127, 127)` in f64. For images
/// that exist as uint8, [`quantize_input`] is the canonical path.
pub fn quantize_normalized(model: &Int8Model, image: &[f32]) -> Result<Vec<i8>, Int8Error> {
    check_input_len(model, image.len())?;
    let s = model.input.scale as f64;
    Ok(image
        .iter()
        .map(|&x| crate::arith::quantize_symmetric(x as f64, s))
        .collect())
}

fn check_input_len(model: &Int8Model, found: usize) -> Result<(), Int8Error> {
    let inp = &model.input;
    let expected = inp
        .size
        .saturating_mul(inp.size)
        .saturating_mul(inp.channels);
    if found != expected {
        let name = model
            .layers
            .first()
            .map(|l| l.geometry.name.clone())
            .unwrap_or_default();
        return Err(Int8Error::InputLength {
            layer: 0,
            name,
            what: "the input image",
            expected,
            found,
        });
    }
    Ok(())
}

/// Exact accumulators of one conv layer, HWC `[out][out][O]`, each checked to
/// fit `acc_bits` bits (contract §3, §4):
///
/// ```text
/// acc[y][x][o] = bias[o] + sum_{ky,kx,i} w[o][ky][kx][i] * in[y*s+ky-1][x*s+kx-1][i]
/// ```
///
/// with input positions outside the map reading 0.
pub fn accumulate<T: Activation>(
    layer: &Int8Layer,
    input: &[T],
    acc_bits: u32,
) -> Result<Vec<i32>, Int8Error> {
    let g = &layer.geometry;
    if T::DTYPE != g.input_dtype() {
        return Err(Int8Error::InputDtype {
            layer: g.index,
            name: g.name.clone(),
            expected: g.input_dtype(),
            found: T::DTYPE,
        });
    }
    check_layer_vectors(layer)?;
    if input.len() != g.input_len() {
        return Err(Int8Error::InputLength {
            layer: g.index,
            name: g.name.clone(),
            what: "the input feature map",
            expected: g.input_len(),
            found: input.len(),
        });
    }
    let (n, ci, co, s) = (
        g.in_size as isize,
        g.in_channels,
        g.out_channels,
        g.stride as isize,
    );
    let mut out = Vec::with_capacity(g.output_len());
    for y in 0..g.out_size {
        for x in 0..g.out_size {
            for o in 0..co {
                let mut acc = layer.bias[o] as i64;
                for ky in 0..3 {
                    for kx in 0..3 {
                        let iy = y as isize * s + ky as isize - 1;
                        let ix = x as isize * s + kx as isize - 1;
                        if iy < 0 || ix < 0 || iy >= n || ix >= n {
                            continue; // padding: value 0
                        }
                        let base = (iy as usize * g.in_size + ix as usize) * ci;
                        for i in 0..ci {
                            acc += layer.weight(o, ky, kx, i) as i64 * input[base + i].widen();
                        }
                    }
                }
                if !fits_bits(acc, acc_bits.min(ACC_BITS)) {
                    return Err(Int8Error::AccumulatorOverflow {
                        layer: g.index,
                        name: g.name.clone(),
                        y,
                        x,
                        channel: o,
                        value: acc,
                        bits: acc_bits.min(ACC_BITS),
                    });
                }
                out.push(acc as i32);
            }
        }
    }
    Ok(out)
}

/// Lengths of a layer's vectors against its geometry (a validated model
/// always passes; this keeps the engine panic-free on hand-built layers).
fn check_layer_vectors(layer: &Int8Layer) -> Result<(), Int8Error> {
    let g = &layer.geometry;
    let o = g.out_channels;
    for (what, found, expected) in [
        ("weight", layer.weights.len(), g.weight_len()),
        ("bias", layer.bias.len(), o),
        ("multiplier", layer.multiplier.len(), o),
        ("shift", layer.shift.len(), o),
    ] {
        if found != expected {
            return Err(Int8Error::Invalid {
                path: "<memory>".into(),
                field: format!("layers.{}.{what}", g.index),
                message: format!("has {found} values, expected {expected}"),
            });
        }
    }
    if g.stride == 0 {
        return Err(Int8Error::Invalid {
            path: "<memory>".into(),
            field: format!("layers.{}.stride", g.index),
            message: "must be 1 or 2".into(),
        });
    }
    Ok(())
}

/// Requantises HWC accumulators of a layer to uint8 (includes the ReLU).
/// `layer`'s multiplier and shift vectors must have `out_channels` entries
/// (true of every validated model).
pub fn requantize_layer(layer: &Int8Layer, acc: &[i32]) -> Vec<u8> {
    let co = layer.geometry.out_channels.max(1);
    acc.iter()
        .enumerate()
        .map(|(k, &a)| {
            let o = k % co;
            requantize_u8(a, layer.multiplier[o], layer.shift[o])
        })
        .collect()
}

/// One conv layer with the contract's 32-bit accumulator: HWC in, HWC uint8 out.
pub fn run_layer<T: Activation>(layer: &Int8Layer, input: &[T]) -> Result<Vec<u8>, Int8Error> {
    let acc = accumulate(layer, input, ACC_BITS)?;
    Ok(requantize_layer(layer, &acc))
}

/// Global average pool of an HWC uint8 map: per channel,
/// `(sum + floor(HW / 2)) / HW` in unsigned integers (round half up).
pub fn global_avg_pool(fm: &[u8], size: usize, channels: usize) -> Vec<u8> {
    if channels == 0 {
        return Vec::new();
    }
    let hw = (size * size) as u64;
    let mut sums = vec![0u64; channels];
    for (k, &v) in fm.iter().enumerate() {
        sums[k % channels] += v as u64;
    }
    sums.iter()
        .map(|&s| ((s + hw / 2) / hw.max(1)).min(255) as u8)
        .collect()
}

/// The linear head: `logit[k] = bias[k] + sum_f w[k][f] * pooled[f]`, exact,
/// checked to fit int32.
pub fn run_head(head: &Int8Head, pooled: &[u8]) -> Result<Vec<i32>, Int8Error> {
    if head.bias.len() != head.classes || head.weights.len() != head.classes * head.in_features {
        return Err(Int8Error::Invalid {
            path: "<memory>".into(),
            field: "head".into(),
            message: "weight/bias lengths do not match classes x in_features".into(),
        });
    }
    if pooled.len() != head.in_features {
        return Err(Int8Error::InputLength {
            layer: usize::MAX,
            name: "head".into(),
            what: "the pooled feature vector",
            expected: head.in_features,
            found: pooled.len(),
        });
    }
    let f = head.in_features;
    let mut logits = Vec::with_capacity(head.classes);
    for k in 0..head.classes {
        let mut acc = head.bias[k] as i64;
        for (i, &p) in pooled.iter().enumerate() {
            acc += head.weights[k * f + i] as i64 * p as i64;
        }
        if !fits_bits(acc, ACC_BITS) {
            return Err(Int8Error::HeadOverflow {
                class: k,
                value: acc,
                bits: ACC_BITS,
            });
        }
        logits.push(acc as i32);
    }
    Ok(logits)
}

/// Forward pass from an already quantised int8 HWC input.
pub fn run_network_quantized(model: &Int8Model, input: Vec<i8>) -> Result<Outputs, Int8Error> {
    model.validate()?;
    check_input_len(model, input.len())?;
    let mut per_layer: Vec<Vec<u8>> = Vec::with_capacity(model.layers.len());
    for (i, layer) in model.layers.iter().enumerate() {
        let out = if i == 0 {
            run_layer(layer, &input)?
        } else {
            run_layer(layer, &per_layer[i - 1])?
        };
        per_layer.push(out);
    }
    let last = model.layers.last().map(|l| &l.geometry);
    let pooled = match (last, per_layer.last()) {
        (Some(g), Some(fm)) => global_avg_pool(fm, g.out_size, g.out_channels),
        _ => Vec::new(),
    };
    let logits = run_head(&model.head, &pooled)?;
    Ok(Outputs {
        input,
        per_layer,
        pooled,
        logits,
    })
}

/// Forward pass from an HWC uint8 image (the canonical entry point).
pub fn run_network(model: &Int8Model, image: &[u8]) -> Result<Outputs, Int8Error> {
    let input = quantize_input(model, image)?;
    run_network_quantized(model, input)
}

/// Forward pass from an already normalised HWC float image.
pub fn run_network_normalized(model: &Int8Model, image: &[f32]) -> Result<Outputs, Int8Error> {
    let input = quantize_normalized(model, image)?;
    run_network_quantized(model, input)
}

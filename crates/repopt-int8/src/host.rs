//! Host-side quantisation helpers implementing contract §5, §6 and §10
//! exactly (f64 arithmetic on the stored f32 scales), so that the quantizer
//! and any re-derivation agree on every integer.

use crate::arith::{quantize_multiplier, quantize_symmetric, round_half_away, MultiplierError};
use crate::error::Int8Error;

/// Symmetric int8 scale for a tensor or channel whose largest magnitude is
/// `max_abs`: `max_abs / 127`, or 1.0 when `max_abs` is 0 or not finite
/// (an all-zero channel quantises to zeros with any positive scale).
pub fn symmetric_scale(max_abs: f32) -> f32 {
    if max_abs.is_finite() && max_abs > 0.0 {
        max_abs / 127.0
    } else {
        1.0
    }
}

/// Quantises float conv weights `[O][..]` (any per-channel layout, `O`
/// equal chunks) per output channel: returns the int8 weights (same layout)
/// and the per-channel scales.
pub fn quantize_per_channel(weights: &[f32], out_channels: usize) -> (Vec<i8>, Vec<f32>) {
    let per = weights.len().checked_div(out_channels).unwrap_or(0);
    let mut q = Vec::with_capacity(weights.len());
    let mut scales = Vec::with_capacity(out_channels);
    for chunk in weights.chunks(per.max(1)).take(out_channels) {
        let max_abs = chunk.iter().fold(0f32, |m, &w| m.max(w.abs()));
        let s = symmetric_scale(max_abs);
        q.extend(
            chunk
                .iter()
                .map(|&w| quantize_symmetric(w as f64, s as f64)),
        );
        scales.push(s);
    }
    (q, scales)
}

/// int32 bias in the accumulator scale: `round_half_away(b / (s_in * s_w))`
/// in f64. A value outside int32 is an error naming `field`, not a silent
/// saturation (contract §5).
pub fn quantize_bias(b: f32, s_in: f32, s_w: f32, field: &str) -> Result<i32, Int8Error> {
    let q = round_half_away(b as f64 / (s_in as f64 * s_w as f64));
    let exact = b as f64 / (s_in as f64 * s_w as f64);
    if !exact.is_finite() || q < i32::MIN as i64 || q > i32::MAX as i64 {
        return Err(Int8Error::Invalid {
            path: "<quantizer>".into(),
            field: field.into(),
            message: format!("bias {b} / ({s_in} * {s_w}) = {exact} does not fit int32"),
        });
    }
    Ok(q as i32)
}

/// The per-channel requantisation pair for `s_in * s_w / s_out` (f64).
pub fn channel_multiplier(s_in: f32, s_w: f32, s_out: f32) -> Result<(i32, i32), MultiplierError> {
    quantize_multiplier(s_in as f64 * s_w as f64 / s_out as f64)
}

/// Converts a conv weight from PyTorch/Candle layout `[O][I][3][3]` to the
/// contract's `[O][3][3][I]` (contract §3). `w.len()` must be `O * I * 9`.
pub fn oihw_to_ohwi<T: Copy>(w: &[T], out_channels: usize, in_channels: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(w.len());
    for o in 0..out_channels {
        for k in 0..9 {
            for i in 0..in_channels {
                out.push(w[(o * in_channels + i) * 9 + k]);
            }
        }
    }
    out
}

/// The inverse of [`oihw_to_ohwi`].
pub fn ohwi_to_oihw<T: Copy>(w: &[T], out_channels: usize, in_channels: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(w.len());
    for o in 0..out_channels {
        for i in 0..in_channels {
            for k in 0..9 {
                out.push(w[(o * 9 + k) * in_channels + i]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_channel_weights() {
        let w = [0.5f32, -1.0, 0.25, 0.0, 0.0, 0.0, 2.0, 1.0, -2.0];
        let (q, s) = quantize_per_channel(&w, 3);
        assert_eq!(s, vec![1.0 / 127.0, 1.0, 2.0 / 127.0]);
        assert_eq!(q, vec![64, -127, 32, 0, 0, 0, 127, 64, -127]);
    }

    #[test]
    fn bias_and_multiplier() {
        assert_eq!(quantize_bias(1.0, 0.5, 0.01, "b").unwrap(), 200);
        assert_eq!(quantize_bias(-0.0075, 0.5, 0.01, "b").unwrap(), -2); // -1.5 -> -2
        let e = quantize_bias(1e9, 1e-3, 1e-3, "layers.2.bias[7]").unwrap_err();
        assert!(e.to_string().contains("layers.2.bias[7]"), "{e}");
        assert_eq!(channel_multiplier(0.5, 0.5, 0.5).unwrap(), (1 << 30, 0));
    }

    #[test]
    fn layout_conversion_round_trips() {
        let (o, i) = (3, 4);
        let oihw: Vec<u32> = (0..(o * i * 9) as u32).collect();
        let ohwi = oihw_to_ohwi(&oihw, o, i);
        // w[o=2][ky=1][kx=0][i=3] = oihw[((2*4)+3)*9 + 3]
        assert_eq!(ohwi[((2 * 3 + 1) * 3) * i + 3], oihw[(2 * i + 3) * 9 + 3]);
        assert_eq!(ohwi_to_oihw(&ohwi, o, i), oihw);
    }
}

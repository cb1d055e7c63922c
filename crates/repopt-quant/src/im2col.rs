//! The 3x3, padding-1 patch matrix of a channels-last batch on any device.
//!
//! On the CPU this is `repopt_train::conv::im2col3x3` (a parallel custom op,
//! f32 and f64). That op has no CUDA kernel, so other devices use
//! [`im2col_generic`], built from `pad_with_zeros`, `index_select` and `cat`,
//! which every Candle backend has. Both give the same matrix: column
//! `(ky * 3 + kx) * C + c` of row `(n, y, x)` holds
//! `x[n][y*s + ky - 1][x*s + kx - 1][c]`, 0 outside the map
//! (`docs/int8-datapath.md` §3); a test checks them against each other.

use candle_core::{Device, Tensor};
use repopt_spec::conv_out_size;

use crate::error::Result;

/// `x [N, H, W, C]` -> `[N * Ho * Wo, 9 * C]`.
pub fn im2col(x: &Tensor, stride: usize) -> Result<Tensor> {
    if x.device().is_cpu() {
        Ok(repopt_train::conv::im2col3x3(x, stride)?)
    } else {
        im2col_generic(x, stride)
    }
}

/// Device-independent im2col from basic tensor ops.
pub fn im2col_generic(x: &Tensor, stride: usize) -> Result<Tensor> {
    let (n, h, w, c) = x.dims4()?;
    let (oh, ow) = (conv_out_size(h, stride), conv_out_size(w, stride));
    let dev = x.device();
    let padded = x.pad_with_zeros(1, 1, 1)?.pad_with_zeros(2, 1, 1)?;
    let index = |k: usize, len: usize, dev: &Device| -> Result<Tensor> {
        let v: Vec<u32> = (0..len).map(|o| (o * stride + k) as u32).collect();
        Ok(Tensor::from_vec(v, len, dev)?)
    };
    let mut taps = Vec::with_capacity(9);
    for ky in 0..3 {
        let rows = padded.index_select(&index(ky, oh, dev)?, 1)?;
        for kx in 0..3 {
            taps.push(rows.index_select(&index(kx, ow, dev)?, 2)?);
        }
    }
    Ok(Tensor::cat(&taps, 3)?.reshape((n * oh * ow, 9 * c))?)
}

//! Training-mode batch normalisation (optionally fused with ReLU) as one
//! Candle custom op with a hand-written backward pass.
//!
//! Composed from Candle's elementwise ops, BN costs about ten full passes
//! over the activations forward and twenty backward; fused it is two forward
//! and three backward. Sums run over fixed row chunks in a fixed order, so
//! results do not depend on the thread count (resumed runs stay bit-exact).

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::nn::BN_EPS;

/// Rows per partial sum: fixed, so the summation order is too.
const CHUNK_ROWS: usize = 512;

/// Batch statistics of the last forward call: per-channel mean and biased variance.
pub type BatchStats = Arc<Mutex<Option<(Vec<f32>, Vec<f32>)>>>;

fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("batchnorm: {what} must be contiguous"),
    }
}

/// Per-channel sums of `f(row)` over all rows of `x [M, C]`, chunked and
/// reduced in a fixed order.
fn channel_sums(rows: usize, c: usize, f: impl Fn(usize, &mut [f64]) + Sync) -> Vec<f64> {
    let partials: Vec<Vec<f64>> = (0..rows.div_ceil(CHUNK_ROWS))
        .into_par_iter()
        .map(|chunk| {
            let mut acc = vec![0.0f64; c];
            for r in chunk * CHUNK_ROWS..((chunk + 1) * CHUNK_ROWS).min(rows) {
                f(r, &mut acc);
            }
            acc
        })
        .collect();
    let mut total = vec![0.0; c];
    for p in partials {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    total
}

/// Mean and 1/sqrt(var + eps) per channel (two passes for accuracy).
fn moments(x: &[f32], rows: usize, c: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let sums = channel_sums(rows, c, |r, acc| {
        for (a, &v) in acc.iter_mut().zip(&x[r * c..(r + 1) * c]) {
            *a += v as f64;
        }
    });
    let mean: Vec<f32> = sums.iter().map(|s| (s / rows as f64) as f32).collect();
    let sq = channel_sums(rows, c, |r, acc| {
        for ((a, &v), &m) in acc.iter_mut().zip(&x[r * c..(r + 1) * c]).zip(&mean) {
            let d = (v - m) as f64;
            *a += d * d;
        }
    });
    let var: Vec<f32> = sq.iter().map(|s| (s / rows as f64) as f32).collect();
    let inv_std = var
        .iter()
        .map(|v| 1.0 / (v + BN_EPS as f32).sqrt())
        .collect();
    (mean, var, inv_std)
}

/// Forward: `y = [relu]((x - mean) * inv_std * gamma + beta)`.
pub struct BatchNormTrain {
    pub relu: bool,
    pub stats: BatchStats,
}

/// Backward: `(x, dy, [gamma; beta]) -> [dx; dgamma; dbeta]` as `[M + 2, C]`.
struct BatchNormGrad {
    relu: bool,
}

fn dims(l: &Layout) -> Result<(usize, usize)> {
    match *l.dims() {
        [m, c] => Ok((m, c)),
        ref d => candle_core::bail!("batchnorm expects [rows, channels], got {d:?}"),
    }
}

/// The normalised value and the affine output of one element.
#[inline]
fn affine(v: f32, mean: f32, inv: f32, g: f32, b: f32) -> (f32, f32) {
    let xhat = (v - mean) * inv;
    (xhat, xhat * g + b)
}

impl CustomOp3 for BatchNormTrain {
    fn name(&self) -> &'static str {
        "batchnorm-train"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (rows, c) = dims(xl)?;
        let (x, gamma, beta) = (
            slice(xs, xl, "x")?,
            slice(gs, gl, "gamma")?,
            slice(bs, bl, "beta")?,
        );
        let (mean, var, inv) = moments(x, rows, c);
        let mut y = vec![0f32; rows * c];
        y.par_chunks_mut(c * CHUNK_ROWS)
            .enumerate()
            .for_each(|(chunk, out)| {
                let src = &x[chunk * CHUNK_ROWS * c..][..out.len()];
                for (yr, xr) in out.chunks_mut(c).zip(src.chunks(c)) {
                    for k in 0..c {
                        let (_, v) = affine(xr[k], mean[k], inv[k], gamma[k], beta[k]);
                        yr[k] = if self.relu { v.max(0.0) } else { v };
                    }
                }
            });
        *self.stats.lock().expect("stats lock") = Some((mean, var));
        Ok((CpuStorage::F32(y), Shape::from((rows, c))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (rows, _) = x.dims2()?;
        let params = Tensor::stack(&[gamma, beta], 0)?;
        let packed = x.apply_op3_no_bwd(
            &dy.contiguous()?,
            &params,
            &BatchNormGrad { relu: self.relu },
        )?;
        Ok((
            Some(packed.narrow(0, 0, rows)?),
            Some(packed.get(rows)?),
            Some(packed.get(rows + 1)?),
        ))
    }
}

impl CustomOp3 for BatchNormGrad {
    fn name(&self) -> &'static str {
        "batchnorm-train-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ds: &CpuStorage,
        dl: &Layout,
        ps: &CpuStorage,
        pl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (rows, c) = dims(xl)?;
        let (x, dy, params) = (
            slice(xs, xl, "x")?,
            slice(ds, dl, "dy")?,
            slice(ps, pl, "params")?,
        );
        let (gamma, beta) = params.split_at(c);
        let (mean, _, inv) = moments(x, rows, c);
        let relu = self.relu;
        // Gradient after the ReLU mask, recomputed exactly as the forward did.
        let masked = |r: usize, k: usize| -> (f32, f32) {
            let (xhat, v) = affine(x[r * c + k], mean[k], inv[k], gamma[k], beta[k]);
            let g = if relu && v <= 0.0 { 0.0 } else { dy[r * c + k] };
            (xhat, g)
        };
        let sums = channel_sums(rows, 2 * c, |r, acc| {
            for k in 0..c {
                let (xhat, g) = masked(r, k);
                acc[k] += g as f64;
                acc[c + k] += (g * xhat) as f64;
            }
        });
        let dbeta: Vec<f32> = sums[..c].iter().map(|&v| v as f32).collect();
        let dgamma: Vec<f32> = sums[c..].iter().map(|&v| v as f32).collect();
        let m = rows as f32;
        let mut out = vec![0f32; (rows + 2) * c];
        out[..rows * c]
            .par_chunks_mut(c * CHUNK_ROWS)
            .enumerate()
            .for_each(|(chunk, block)| {
                for (i, row) in block.chunks_mut(c).enumerate() {
                    let r = chunk * CHUNK_ROWS + i;
                    for k in 0..c {
                        let (xhat, g) = masked(r, k);
                        row[k] = gamma[k] * inv[k] / m * (m * g - dbeta[k] - xhat * dgamma[k]);
                    }
                }
            });
        out[rows * c..(rows + 1) * c].copy_from_slice(&dgamma);
        out[(rows + 1) * c..].copy_from_slice(&dbeta);
        Ok((CpuStorage::F32(out), Shape::from((rows + 2, c))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use proptest::prelude::*;

    fn rand(shape: (usize, usize), seed: u64, lo: f32, hi: f32) -> Tensor {
        let mut s = seed.wrapping_add(12345);
        let v: Vec<f32> = (0..shape.0 * shape.1)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                lo + (hi - lo) * ((s >> 40) as f32 / (1u64 << 24) as f32)
            })
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// The same BN built from Candle's differentiable ops, as the reference.
    fn composed(x: &Tensor, g: &Tensor, b: &Tensor, relu: bool) -> Tensor {
        let mean = x.mean_keepdim(0).unwrap();
        let xc = x.broadcast_sub(&mean).unwrap();
        let var = xc.sqr().unwrap().mean_keepdim(0).unwrap();
        let inv = (var + BN_EPS).unwrap().sqrt().unwrap().recip().unwrap();
        let y = xc
            .broadcast_mul(&inv)
            .unwrap()
            .broadcast_mul(g)
            .unwrap()
            .broadcast_add(b)
            .unwrap();
        if relu {
            y.relu().unwrap()
        } else {
            y
        }
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn fused_batchnorm_matches_composed_ops(rows in 2usize..1200, c in 1usize..9, relu in any::<bool>(), seed in 0u64..1000) {
            let x = Var::from_tensor(&rand((rows, c), seed, -2.0, 3.0)).unwrap();
            let g = Var::from_tensor(&rand((1, c), seed + 1, 0.5, 1.5).squeeze(0).unwrap()).unwrap();
            let b = Var::from_tensor(&rand((1, c), seed + 2, -0.5, 0.5).squeeze(0).unwrap()).unwrap();
            let w = rand((rows, c), seed + 3, -1.0, 1.0);
            let stats = BatchStats::default();
            let ours = x.as_tensor().apply_op3(g.as_tensor(), b.as_tensor(), BatchNormTrain { relu, stats: stats.clone() }).unwrap();
            let reference = composed(x.as_tensor(), g.as_tensor(), b.as_tensor(), relu);
            prop_assert!(max_diff(&ours, &reference) < 1e-4);
            let (mean, _) = stats.lock().unwrap().clone().unwrap();
            let want = x.as_tensor().mean(0).unwrap().to_vec1::<f32>().unwrap();
            prop_assert!(mean.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5));
            let ga = (ours * &w).unwrap().sum_all().unwrap().backward().unwrap();
            let gb = (reference * &w).unwrap().sum_all().unwrap().backward().unwrap();
            for v in [&x, &g, &b] {
                let d = max_diff(ga.get(v.as_tensor()).unwrap(), gb.get(v.as_tensor()).unwrap());
                prop_assert!(d < 2e-3, "gradient differs by {}", d);
            }
        }
    }
}

//! The trainer's convolution path: im2col/col2im custom ops feeding Candle's
//! matmul, in a channels-last layout.
//!
//! Candle's built-in conv2d computes the input gradient with a direct loop and
//! is far too slow to train on CPU. Here a 3x3 conv (padding 1) becomes
//! `cols [N*Ho*Wo, 9*C] x W [9*C, O]`, where column `(p*3 + q)*C + c` holds
//! input channel `c` at kernel tap `(p, q)`. The gradient of the im2col op is
//! col2im, so both directions are one memory pass plus one GEMM.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Geometry of one 3x3, padding-1 conv over a channels-last batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub stride: usize,
}

impl ConvGeometry {
    pub fn out_height(&self) -> usize {
        repopt_spec::conv_out_size(self.height, self.stride)
    }
    pub fn out_width(&self) -> usize {
        repopt_spec::conv_out_size(self.width, self.stride)
    }
    fn rows(&self) -> usize {
        self.batch * self.out_height() * self.out_width()
    }
    fn from_input(x: &Layout, stride: usize) -> Result<Self> {
        match *x.dims() {
            [batch, height, width, channels] => Ok(Self {
                batch,
                height,
                width,
                channels,
                stride,
            }),
            ref d => candle_core::bail!("conv3x3 expects a [N, H, W, C] tensor, got {d:?}"),
        }
    }
}

/// Element types the custom ops support (f32 for training, f64 for the
/// equivalence tests and the exact INT8 reference).
trait Element: Copy + Default + Send + Sync + std::ops::AddAssign + 'static {
    fn slice(s: &CpuStorage) -> Result<&[Self]>;
    fn wrap(v: Vec<Self>) -> CpuStorage;
}

impl Element for f32 {
    fn slice(s: &CpuStorage) -> Result<&[Self]> {
        s.as_slice::<f32>()
    }
    fn wrap(v: Vec<Self>) -> CpuStorage {
        CpuStorage::F32(v)
    }
}

impl Element for f64 {
    fn slice(s: &CpuStorage) -> Result<&[Self]> {
        s.as_slice::<f64>()
    }
    fn wrap(v: Vec<Self>) -> CpuStorage {
        CpuStorage::F64(v)
    }
}

fn contiguous<'a, T: Element>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&T::slice(s)?[start..end]),
        None => candle_core::bail!("conv custom op needs a contiguous input"),
    }
}

/// Input row/column of kernel tap `k` for output position `o`, if inside the map.
#[inline]
fn tap(o: usize, k: usize, stride: usize, size: usize) -> Option<usize> {
    (o * stride + k).checked_sub(1).filter(|&i| i < size)
}

fn im2col<T: Element>(x: &[T], g: ConvGeometry) -> Vec<T> {
    let (ho, wo, c) = (g.out_height(), g.out_width(), g.channels);
    let row_len = 9 * c;
    let mut cols = vec![T::default(); g.rows() * row_len];
    // One chunk per output row of one image: independent, so parallel.
    cols.par_chunks_mut(wo * row_len)
        .enumerate()
        .for_each(|(chunk, out)| {
            let (n, oy) = (chunk / ho, chunk % ho);
            let image = &x[n * g.height * g.width * c..(n + 1) * g.height * g.width * c];
            for p in 0..3 {
                let Some(iy) = tap(oy, p, g.stride, g.height) else {
                    continue;
                };
                for ox in 0..wo {
                    for q in 0..3 {
                        let Some(ix) = tap(ox, q, g.stride, g.width) else {
                            continue;
                        };
                        let src = &image[(iy * g.width + ix) * c..][..c];
                        out[ox * row_len + (p * 3 + q) * c..][..c].copy_from_slice(src);
                    }
                }
            }
        });
    cols
}

fn col2im<T: Element>(cols: &[T], g: ConvGeometry) -> Vec<T> {
    let (ho, wo, c) = (g.out_height(), g.out_width(), g.channels);
    let row_len = 9 * c;
    let image_len = g.height * g.width * c;
    let mut x = vec![T::default(); g.batch * image_len];
    // Overlapping windows add into the same pixels, so parallelise over images
    // only; the summation order is fixed, which keeps training reproducible.
    x.par_chunks_mut(image_len)
        .enumerate()
        .for_each(|(n, image)| {
            let cols = &cols[n * ho * wo * row_len..(n + 1) * ho * wo * row_len];
            for oy in 0..ho {
                for p in 0..3 {
                    let Some(iy) = tap(oy, p, g.stride, g.height) else {
                        continue;
                    };
                    for ox in 0..wo {
                        for q in 0..3 {
                            let Some(ix) = tap(ox, q, g.stride, g.width) else {
                                continue;
                            };
                            let src = &cols[(oy * wo + ox) * row_len + (p * 3 + q) * c..][..c];
                            let dst = &mut image[(iy * g.width + ix) * c..][..c];
                            for (d, &s) in dst.iter_mut().zip(src) {
                                *d += s;
                            }
                        }
                    }
                }
            }
        });
    x
}

/// `[N, H, W, C] -> [N*Ho*Wo, 9*C]`, differentiable.
struct Im2Col {
    stride: usize,
}

/// `[N*Ho*Wo, 9*C] -> [N, H, W, C]` (sums overlapping taps); the gradient of Im2Col.
struct Col2Im {
    geometry: ConvGeometry,
}

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col3x3"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = ConvGeometry::from_input(l, self.stride)?;
        let shape = Shape::from((g.rows(), 9 * g.channels));
        let out = match s {
            CpuStorage::F32(_) => f32::wrap(im2col(contiguous::<f32>(s, l)?, g)),
            CpuStorage::F64(_) => f64::wrap(im2col(contiguous::<f64>(s, l)?, g)),
            _ => candle_core::bail!("im2col3x3 supports f32 and f64, got {:?}", s.dtype()),
        };
        Ok((out, shape))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let g = ConvGeometry::from_input(arg.layout(), self.stride)?;
        Ok(Some(
            grad.contiguous()?
                .apply_op1_no_bwd(&Col2Im { geometry: g })?,
        ))
    }
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im3x3"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.geometry;
        if l.dims() != [g.rows(), 9 * g.channels] {
            candle_core::bail!(
                "col2im3x3: expected [{}, {}], got {:?}",
                g.rows(),
                9 * g.channels,
                l.dims()
            );
        }
        let shape = Shape::from((g.batch, g.height, g.width, g.channels));
        let out = match s {
            CpuStorage::F32(_) => f32::wrap(col2im(contiguous::<f32>(s, l)?, g)),
            CpuStorage::F64(_) => f64::wrap(col2im(contiguous::<f64>(s, l)?, g)),
            _ => candle_core::bail!("col2im3x3 supports f32 and f64, got {:?}", s.dtype()),
        };
        Ok((out, shape))
    }
}

/// Unfolds `x [N, H, W, C]` into the 3x3 patch matrix `[N*Ho*Wo, 9*C]`.
pub fn im2col3x3(x: &Tensor, stride: usize) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Im2Col { stride })
}

/// The centre-tap columns of a patch matrix: the input of a 1x1 conv with the
/// same stride.
pub fn centre_columns(cols: &Tensor, channels: usize) -> Result<Tensor> {
    cols.narrow(1, 4 * channels, channels)?.contiguous()
}

/// 3x3 conv, padding 1: `x [N, H, W, C]`, `w [9*C, O]` -> `[N*Ho*Wo, O]`.
pub fn conv3x3(x: &Tensor, w: &Tensor, stride: usize) -> Result<Tensor> {
    im2col3x3(x, stride)?.matmul(w)
}

/// Converts a PyTorch-layout kernel `[O, I, 3, 3]` to the matmul layout `[9*I, O]`.
pub fn kernel_to_matmul(oihw: &Tensor) -> Result<Tensor> {
    let (o, i, kh, kw) = oihw.dims4()?;
    oihw.permute((2, 3, 1, 0))?
        .contiguous()?
        .reshape((kh * kw * i, o))
}

/// Converts a matmul-layout kernel `[K*K*I, O]` back to `[O, I, K, K]`.
pub fn kernel_from_matmul(w: &Tensor, in_channels: usize, k: usize) -> Result<Tensor> {
    let o = w.dim(1)?;
    w.reshape((k, k, in_channels, o))?
        .permute((3, 2, 0, 1))?
        .contiguous()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};
    use proptest::prelude::*;
    use repopt_spec::conv_out_size as conv_out;

    fn random(shape: &[usize], seed: u64) -> Tensor {
        let n: usize = shape.iter().product();
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let v: Vec<f64> = (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// Direct loops: forward output and the gradients of `sum(conv(x) * t)`.
    struct Naive {
        y: Vec<f64>,
        dx: Vec<f64>,
        dk: Vec<f64>,
    }

    #[allow(clippy::too_many_arguments)]
    fn naive(
        x: &[f64],
        k: &[f64],
        t: &[f64],
        n: usize,
        h: usize,
        w: usize,
        c: usize,
        o: usize,
        s: usize,
    ) -> Naive {
        let (ho, wo) = (conv_out(h, s), conv_out(w, s));
        let mut r = Naive {
            y: vec![0.0; n * ho * wo * o],
            dx: vec![0.0; x.len()],
            dk: vec![0.0; k.len()],
        };
        for b in 0..n {
            for oy in 0..ho {
                for ox in 0..wo {
                    for oc in 0..o {
                        let yi = ((b * ho + oy) * wo + ox) * o + oc;
                        for p in 0..3 {
                            for q in 0..3 {
                                let (iy, ix) =
                                    ((oy * s + p) as isize - 1, (ox * s + q) as isize - 1);
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                for ic in 0..c {
                                    let xi = ((b * h + iy as usize) * w + ix as usize) * c + ic;
                                    let ki = ((oc * c + ic) * 3 + p) * 3 + q;
                                    r.y[yi] += x[xi] * k[ki];
                                    r.dx[xi] += t[yi] * k[ki];
                                    r.dk[ki] += t[yi] * x[xi];
                                }
                            }
                        }
                    }
                }
            }
        }
        r
    }

    fn max_diff(a: &Tensor, b: &[f64]) -> f64 {
        let a = a.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// The im2col conv and its gradients equal direct loops, strides 1 and 2.
        #[test]
        fn matches_direct_loops(n in 1usize..3, h in 1usize..8, w in 1usize..8, c in 1usize..5,
                                o in 1usize..5, stride in 1usize..3, seed in 0u64..1000) {
            let x = Var::from_tensor(&random(&[n, h, w, c], seed)).unwrap();
            let k = Var::from_tensor(&random(&[o, c, 3, 3], seed + 1)).unwrap();
            let (ho, wo) = (conv_out(h, stride), conv_out(w, stride));
            let t = random(&[n * ho * wo, o], seed + 2);
            let y = conv3x3(x.as_tensor(), &kernel_to_matmul(k.as_tensor()).unwrap(), stride).unwrap();
            let grads = (y.clone() * &t).unwrap().sum_all().unwrap().backward().unwrap();
            let flat = |v: &Tensor| v.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let r = naive(&flat(x.as_tensor()), &flat(k.as_tensor()), &flat(&t), n, h, w, c, o, stride);
            prop_assert!(max_diff(&y, &r.y) < 1e-12);
            prop_assert!(max_diff(grads.get(x.as_tensor()).unwrap(), &r.dx) < 1e-12);
            prop_assert!(max_diff(grads.get(k.as_tensor()).unwrap(), &r.dk) < 1e-12);
        }
    }

    #[test]
    fn kernel_layout_round_trip() {
        let k = random(&[4, 3, 3, 3], 7).to_dtype(DType::F32).unwrap();
        let back = kernel_from_matmul(&kernel_to_matmul(&k).unwrap(), 3, 3).unwrap();
        let d = (k - back)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(d, 0.0);
    }
}

//! The Candle INT8 reference engine (`docs/int8-datapath.md`, rung "Candle
//! INT8"): the contract's integer network with every integer held exactly in
//! an f64 tensor, on the CPU or (feature `cuda`) a GPU.
//!
//! Why f64 is exact here:
//! * §2 input: the LUT is looked up (`index_select`), no float arithmetic.
//! * §3/§4 conv: every product `w * x` (|w| <= 127, |x| <= 255) and every
//!   partial sum `|bias| + sum |w x| <= 2^31 + 9 * I * 32385` is an integer far
//!   below 2^53, so any summation order of the matmul (and FMA) gives the
//!   exact sum. The exact sum is then checked against int32 (overflow is an
//!   error naming the layer and position, as in the golden engine).
//! * §6 requantisation `r = floor((acc * M0 + 2^(n-1)) / 2^n)`, `n = 31 + shift`:
//!   `acc * M0` needs 62 bits, which f64 cannot hold, so it is never formed.
//!   With `M0 = mh * 2^16 + ml` (`mh < 2^15`, `ml < 2^16`) both `a = acc * mh`
//!   (< 2^46) and `b = acc * ml` (< 2^47) are exact, and
//!   `acc * M0 + 2^(n-1) = a * 2^16 + b + 2^(n-1)`. Then, with
//!   `bh = floor(b / 2^16)` and `0 <= b - bh * 2^16 < 2^16`:
//!   - `n >= 17`: `r = floor((a + bh + 2^(n-17)) / 2^(n-16))`, because for an
//!     integer `c` and `0 <= f < 1`, `floor((c + f) / K) = floor(c / K)` for
//!     every integer `K >= 1`. The sum is an integer below 2^47 (exact), and
//!     a division by a power of two and `floor` are exact.
//!   - `n <= 16` (multipliers >= 2^15, allowed by the contract but absurd):
//!     `r = a * 2^(16-n) + floor((b + 2^(n-1)) / 2^n)`; both terms are exact
//!     integers, and where their sum is beyond 2^53 it is rounded but keeps
//!     its sign and magnitude far outside [0, 255], so the clamp is exact.
//!
//!   Powers of two are applied as multiplications by exact reciprocals.
//!   Property-tested against `repopt_int8::arith::requantize` over the whole
//!   int32 x multiplier x shift range.
//! * §7 pooling: `floor((sum + floor(HW/2)) / HW)` with a true IEEE division
//!   (`broadcast_div`, not a multiplication by 1/HW): the quotient of two
//!   integers below 2^53 is correctly rounded, and a non-integer quotient
//!   `q + r/HW` is at least `1/HW` from the next integer, far more than the
//!   rounding error, so `floor` is exact.
//! * §8 head: exact integer matmul, checked against int32.

use candle_core::{DType, Device, Tensor};
use repopt_int8::golden::ACC_BITS;
use repopt_int8::{Int8Error, Int8Model, LayerGeometry, Outputs};

use crate::error::{QuantError, Result};
use crate::im2col::im2col;

/// Per-channel constants of the exact f64 requantisation (see the module docs).
pub struct Requant {
    m_hi: Tensor,
    m_lo: Tensor,
    /// `2^(n-17)` (channels with `n >= 17`; 0 otherwise).
    add_big: Tensor,
    /// `2^-(n-16)`.
    inv_big: Tensor,
    /// Channels with `n <= 16`: `(mask, 2^(16-n), 2^(n-1), 2^-n)`.
    small: Option<(Tensor, Tensor, Tensor, Tensor)>,
}

const TWO16: f64 = 65536.0;

impl Requant {
    /// From the contract's `(M0, shift)` per output channel. The values must
    /// be valid (`multiplier_is_valid`), as in every validated model.
    pub fn new(multiplier: &[i32], shift: &[i32], dev: &Device) -> Result<Self> {
        let o = multiplier.len();
        let (mut hi, mut lo, mut add_big, mut inv_big) = (vec![], vec![], vec![], vec![]);
        let (mut mask, mut mul_s, mut add_s, mut inv_s) = (vec![], vec![], vec![], vec![]);
        for (&m, &s) in multiplier.iter().zip(shift) {
            if m < 0 || !(-30..=31).contains(&s) {
                return Err(QuantError::Config(format!(
                    "requantisation pair ({m}, {s}) is outside the contract's range"
                )));
            }
            let m = m as i64;
            hi.push((m >> 16) as f64);
            lo.push((m & 0xFFFF) as f64);
            let n = 31 + s;
            let big = n >= 17;
            add_big.push(if big { 2f64.powi(n - 17) } else { 0.0 });
            inv_big.push(if big { 2f64.powi(-(n - 16)) } else { 1.0 });
            mask.push(u8::from(!big));
            mul_s.push(if big { 0.0 } else { 2f64.powi(16 - n) });
            add_s.push(if big { 0.0 } else { 2f64.powi(n - 1) });
            inv_s.push(if big { 1.0 } else { 2f64.powi(-n) });
        }
        let t = |v: Vec<f64>| Tensor::from_vec(v, o, dev);
        let small = if mask.contains(&1) {
            Some((
                Tensor::from_vec(mask, o, dev)?,
                t(mul_s)?,
                t(add_s)?,
                t(inv_s)?,
            ))
        } else {
            None
        };
        Ok(Self {
            m_hi: t(hi)?,
            m_lo: t(lo)?,
            add_big: t(add_big)?,
            inv_big: t(inv_big)?,
            small,
        })
    }

    /// Requantised values of exact int32 accumulators `[.., O]` (f64),
    /// *before* the clamp (saturated results are only correct after it).
    pub fn apply_unclamped(&self, acc: &Tensor) -> Result<Tensor> {
        let a = acc.broadcast_mul(&self.m_hi)?;
        let b = acc.broadcast_mul(&self.m_lo)?;
        let bh = b.affine(1.0 / TWO16, 0.0)?.floor()?;
        let big = (&a + &bh)?
            .broadcast_add(&self.add_big)?
            .broadcast_mul(&self.inv_big)?
            .floor()?;
        Ok(match &self.small {
            None => big,
            Some((mask, mul, add, inv)) => {
                let small =
                    (a.broadcast_mul(mul)? + b.broadcast_add(add)?.broadcast_mul(inv)?.floor()?)?;
                mask.broadcast_as(acc.shape())?.where_cond(&small, &big)?
            }
        })
    }

    /// Requantisation + clamp to [0, 255] (= ReLU), contract §6.
    pub fn apply(&self, acc: &Tensor) -> Result<Tensor> {
        Ok(self.apply_unclamped(acc)?.clamp(0f64, 255f64)?)
    }
}

struct EngineLayer {
    geometry: LayerGeometry,
    /// `[9 * I, O]`, row `(ky * 3 + kx) * I + i` (the im2col column order).
    w: Tensor,
    bias: Tensor,
    rq: Requant,
}

/// The INT8 network in Candle.
pub struct CandleInt8 {
    device: Device,
    channels: usize,
    size: usize,
    /// `[C * 256]` f64, the input LUT.
    lut: Tensor,
    /// `[C]` u32, `c * 256`.
    lut_offsets: Tensor,
    layers: Vec<EngineLayer>,
    /// `[F, K]` f64.
    head_wt: Tensor,
    head_b: Tensor,
    classes: usize,
}

/// What a batch run produces; every integer is exact in an f64 tensor.
#[derive(Debug)]
pub struct EngineOutputs {
    /// Quantised input `[N, H, W, C]`.
    pub input: Tensor,
    /// Output of every conv layer `[N, H, W, C]` (empty unless asked for).
    pub per_layer: Vec<Tensor>,
    /// `[N, C]`.
    pub pooled: Tensor,
    /// `[N, K]` int32 logits.
    pub logits: Tensor,
}

fn to_host_f64(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.flatten_all()?.to_device(&Device::Cpu)?.to_vec1::<f64>()?)
}

impl EngineOutputs {
    /// Logits as int32, one vector per image.
    pub fn logits_i32(&self) -> Result<Vec<Vec<i32>>> {
        let k = self.logits.dim(1)?;
        let v = to_host_f64(&self.logits)?;
        Ok(v.chunks(k.max(1))
            .map(|c| c.iter().map(|&x| x as i32).collect())
            .collect())
    }

    /// Layer `l`'s uint8 output, one HWC vector per image.
    pub fn layer_u8(&self, l: usize) -> Result<Vec<Vec<u8>>> {
        let t = self.per_layer.get(l).ok_or_else(|| {
            QuantError::Config(format!(
                "layer {l} was not kept (run with keep_layers, {} layers kept)",
                self.per_layer.len()
            ))
        })?;
        let n = t.dim(0)?;
        let v = to_host_f64(t)?;
        let per = v.len() / n.max(1);
        Ok(v.chunks(per.max(1))
            .map(|c| c.iter().map(|&x| x as u8).collect())
            .collect())
    }

    /// The results of image `i` in the golden engine's structure.
    pub fn outputs(&self, i: usize) -> Result<Outputs> {
        let input = to_host_f64(&self.input.get(i)?)?
            .into_iter()
            .map(|x| x as i8)
            .collect();
        let per_layer = self
            .per_layer
            .iter()
            .map(|t| {
                Ok(to_host_f64(&t.get(i)?)?
                    .into_iter()
                    .map(|x| x as u8)
                    .collect())
            })
            .collect::<Result<Vec<Vec<u8>>>>()?;
        let pooled = to_host_f64(&self.pooled.get(i)?)?
            .into_iter()
            .map(|x| x as u8)
            .collect();
        let logits = to_host_f64(&self.logits.get(i)?)?
            .into_iter()
            .map(|x| x as i32)
            .collect();
        Ok(Outputs {
            input,
            per_layer,
            pooled,
            logits,
        })
    }
}

/// First element of `acc` (row-major `[rows, O]`) outside int32, if any.
fn first_outside_i32(acc: &Tensor) -> Result<Option<(usize, f64)>> {
    let max = acc.max_all()?.to_scalar::<f64>()?;
    let min = acc.min_all()?.to_scalar::<f64>()?;
    if max <= i32::MAX as f64 && min >= i32::MIN as f64 {
        return Ok(None);
    }
    let v = to_host_f64(acc)?;
    Ok(v.iter()
        .position(|&x| x > i32::MAX as f64 || x < i32::MIN as f64)
        .map(|k| (k, v[k])))
}

impl CandleInt8 {
    /// Uploads a (validated) model to `dev`.
    pub fn new(model: &Int8Model, dev: &Device) -> Result<Self> {
        model.validate()?;
        let inp = &model.input;
        let c = inp.channels;
        let lut = Tensor::from_vec(
            inp.lut.iter().map(|&q| q as f64).collect::<Vec<_>>(),
            c * 256,
            dev,
        )?;
        let lut_offsets =
            Tensor::from_vec((0..c as u32).map(|k| k * 256).collect::<Vec<_>>(), c, dev)?;
        let mut layers = Vec::with_capacity(model.layers.len());
        for l in &model.layers {
            let g = &l.geometry;
            let w = Tensor::from_vec(
                l.weights.iter().map(|&q| q as f64).collect::<Vec<_>>(),
                (g.out_channels, 9 * g.in_channels),
                dev,
            )?
            .t()?
            .contiguous()?;
            let bias = Tensor::from_vec(
                l.bias.iter().map(|&b| b as f64).collect::<Vec<_>>(),
                g.out_channels,
                dev,
            )?;
            layers.push(EngineLayer {
                geometry: g.clone(),
                w,
                bias,
                rq: Requant::new(&l.multiplier, &l.shift, dev)?,
            });
        }
        let h = &model.head;
        let head_wt = Tensor::from_vec(
            h.weights.iter().map(|&q| q as f64).collect::<Vec<_>>(),
            (h.classes, h.in_features),
            dev,
        )?
        .t()?
        .contiguous()?;
        let head_b = Tensor::from_vec(
            h.bias.iter().map(|&b| b as f64).collect::<Vec<_>>(),
            h.classes,
            dev,
        )?;
        Ok(Self {
            device: dev.clone(),
            channels: c,
            size: inp.size,
            lut,
            lut_offsets,
            layers,
            head_wt,
            head_b,
            classes: h.classes,
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Pixels per image (`size * size * channels`).
    pub fn image_len(&self) -> usize {
        self.size * self.size * self.channels
    }

    /// Runs `n` HWC uint8 images stored back to back in `images`.
    /// `keep_layers` keeps every layer's output (for verification and SQNR).
    /// `first_image` only numbers the images in error messages.
    pub fn run(
        &self,
        images: &[u8],
        n: usize,
        keep_layers: bool,
        first_image: usize,
    ) -> Result<EngineOutputs> {
        let (s, c) = (self.size, self.channels);
        if n == 0 {
            return Err(QuantError::Mismatch {
                what: "input images".into(),
                message: "no images to run".into(),
            });
        }
        if images.len() != n * self.image_len() {
            return Err(QuantError::Mismatch {
                what: "input images".into(),
                message: format!(
                    "{} bytes for {n} image(s), expected {} ({s}x{s}x{c} each)",
                    images.len(),
                    n * self.image_len()
                ),
            });
        }
        // §2: q = lut[c][pixel]
        let idx = Tensor::from_slice(images, n * s * s * c, &self.device)?
            .to_dtype(DType::U32)?
            .reshape((n * s * s, c))?
            .broadcast_add(&self.lut_offsets)?
            .flatten_all()?;
        let input = self.lut.index_select(&idx, 0)?.reshape((n, s, s, c))?;
        let mut x = input.clone();
        let mut per_layer = Vec::new();
        for l in &self.layers {
            let g = &l.geometry;
            // §3, §4: exact sums, checked against int32
            let acc = im2col(&x, g.stride)?.matmul(&l.w)?.broadcast_add(&l.bias)?;
            if let Some((k, v)) = first_outside_i32(&acc)? {
                let (o, row) = (k % g.out_channels, k / g.out_channels);
                let per_image = g.out_size * g.out_size;
                let (img, pos) = (row / per_image, row % per_image);
                return Err(QuantError::Engine {
                    image: first_image + img,
                    source: Int8Error::AccumulatorOverflow {
                        layer: g.index,
                        name: g.name.clone(),
                        y: pos / g.out_size,
                        x: pos % g.out_size,
                        channel: o,
                        value: v as i64,
                        bits: ACC_BITS,
                    },
                });
            }
            // §6
            x =
                l.rq.apply(&acc)?
                    .reshape((n, g.out_size, g.out_size, g.out_channels))?;
            if keep_layers {
                per_layer.push(x.clone());
            }
        }
        // §7
        let (_, h, w, f) = x.dims4()?;
        let hw = (h * w) as f64;
        let sums = x.sum((1, 2))?;
        let divisor = Tensor::new(&[hw], &self.device)?;
        let pooled = sums
            .affine(1.0, (h * w / 2) as f64)?
            .broadcast_div(&divisor)?
            .floor()?
            .reshape((n, f))?;
        // §8
        let logits = pooled.matmul(&self.head_wt)?.broadcast_add(&self.head_b)?;
        if let Some((k, v)) = first_outside_i32(&logits)? {
            return Err(QuantError::Engine {
                image: first_image + k / self.classes.max(1),
                source: Int8Error::HeadOverflow {
                    class: k % self.classes.max(1),
                    value: v as i64,
                    bits: ACC_BITS,
                },
            });
        }
        Ok(EngineOutputs {
            input,
            per_layer,
            pooled,
            logits,
        })
    }

    /// One image, every intermediate result, in the golden engine's structure.
    pub fn run_image(&self, image: &[u8], index: usize) -> Result<Outputs> {
        self.run(image, 1, true, index)?.outputs(0)
    }
}

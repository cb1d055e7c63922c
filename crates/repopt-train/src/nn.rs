//! Layers the models are built from: batch norm over channels-last rows,
//! the linear head, and PyTorch-compatible initialisation.

use candle_core::{DType, Device, Result, Tensor, Var};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::batchnorm_op::{BatchNormTrain, BatchStats};

/// BatchNorm's epsilon, as in PyTorch and the RepVGG fusion formula.
pub const BN_EPS: f64 = 1e-5;
/// Weight of the current batch in the running statistics (PyTorch's default).
pub const BN_MOMENTUM: f64 = 0.1;

/// Uniform(±bound) tensor from the run's RNG (PyTorch's default conv and
/// linear init uses bound = 1/sqrt(fan_in)).
pub fn uniform(
    rng: &mut ChaCha8Rng,
    shape: &[usize],
    bound: f64,
    dtype: DType,
    dev: &Device,
) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
    Tensor::from_vec(v, shape, dev)?.to_dtype(dtype)
}

/// Batch normalisation over the rows of `[M, C]` (M = N*H*W, channels last).
pub struct BatchNorm {
    pub gamma: Var,
    pub beta: Var,
    /// Running statistics: buffers, not trained (held in `Var`s so that
    /// checkpoints can set every model tensor the same way).
    pub running_mean: Var,
    pub running_var: Var,
}

impl BatchNorm {
    pub fn new(channels: usize, dtype: DType, dev: &Device) -> Result<Self> {
        Ok(Self {
            gamma: Var::ones(channels, dtype, dev)?,
            beta: Var::zeros(channels, dtype, dev)?,
            running_mean: Var::zeros(channels, dtype, dev)?,
            running_var: Var::ones(channels, dtype, dev)?,
        })
    }

    /// Training mode uses batch statistics and updates the running ones
    /// (unbiased variance, as PyTorch); eval mode uses the running ones.
    /// `relu` fuses the activation that follows (one pass instead of two).
    pub fn forward(&self, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        if !train {
            let (scale, shift) = self.affine()?;
            let y = x.broadcast_mul(&scale)?.broadcast_add(&shift)?;
            return if relu { y.relu() } else { Ok(y) };
        }
        let rows = x.dim(0)?;
        let stats = BatchStats::default();
        let op = BatchNormTrain {
            relu,
            stats: stats.clone(),
        };
        let y = x
            .contiguous()?
            .apply_op3(self.gamma.as_tensor(), self.beta.as_tensor(), op)?;
        let (mean, var) = stats
            .lock()
            .expect("stats lock")
            .take()
            .expect("forward sets the batch statistics");
        let dev = x.device();
        let c = mean.len();
        let mean = Tensor::from_vec(mean, c, dev)?.to_dtype(x.dtype())?;
        let unbiased = (Tensor::from_vec(var, c, dev)?.to_dtype(x.dtype())?
            * (rows as f64 / (rows.max(2) - 1) as f64))?;
        let (rm, rv) = (self.running_mean.as_tensor(), self.running_var.as_tensor());
        self.running_mean
            .set(&((rm * (1.0 - BN_MOMENTUM))? + (mean * BN_MOMENTUM)?)?)?;
        self.running_var
            .set(&((rv * (1.0 - BN_MOMENTUM))? + (unbiased * BN_MOMENTUM)?)?)?;
        Ok(y)
    }

    /// Eval-mode BN as `x * scale + shift` (the folding used for deployment).
    pub fn affine(&self) -> Result<(Tensor, Tensor)> {
        let scale = self
            .gamma
            .as_tensor()
            .div(&(self.running_var.as_tensor() + BN_EPS)?.sqrt()?)?;
        let shift = (self.beta.as_tensor() - (self.running_mean.as_tensor() * &scale)?)?;
        Ok((scale, shift))
    }
}

/// Fully connected head: `y = x W^T + b` with PyTorch's `[out, in]` weight.
pub struct Linear {
    pub weight: Var,
    pub bias: Var,
}

impl Linear {
    pub fn new(
        rng: &mut ChaCha8Rng,
        inputs: usize,
        outputs: usize,
        dtype: DType,
        dev: &Device,
    ) -> Result<Self> {
        let bound = 1.0 / (inputs as f64).sqrt();
        Ok(Self {
            weight: Var::from_tensor(&uniform(rng, &[outputs, inputs], bound, dtype, dev)?)?,
            bias: Var::from_tensor(&uniform(rng, &[outputs], bound, dtype, dev)?)?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight.as_tensor().t()?)?
            .broadcast_add(self.bias.as_tensor())
    }
}

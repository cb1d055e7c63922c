//! The float deployed model as plain data, and its Candle forward pass with
//! every layer's activations (for calibration, SQNR and float accuracy).
//!
//! Deployment is `repopt_train::Network::deploy()`: every block becomes one
//! 3x3 conv with bias followed by ReLU (eval-mode BN folded for RepOpt-VGG,
//! the three branches fused for RepVGG).

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use repopt_data::{Dataset, Normalization};
use repopt_int8::LayerGeometry;
use repopt_spec::ModelSpec;
use repopt_train::{Arch, Checkpoint, Network};

use crate::error::{QuantError, Result};
use crate::im2col::im2col;

/// One deployed conv layer: 3x3, padding 1, bias, ReLU.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployedLayer {
    pub geometry: LayerGeometry,
    /// 1 or 2 (= `geometry.stride`).
    pub stride: usize,
    /// `[O][I][3][3]` (PyTorch layout), f32.
    pub weight: Vec<f32>,
    /// `[O]`.
    pub bias: Vec<f32>,
}

/// A float network in deployed form: conv layers, global average pool,
/// linear head, plus the input normalisation it was trained with.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployedModel {
    pub spec: ModelSpec,
    /// The architecture the checkpoint was trained as (RepOpt-VGG, RepVGG, ...).
    pub source_arch: Arch,
    pub layers: Vec<DeployedLayer>,
    /// `[K][F]` (classes x features).
    pub head_w: Vec<f32>,
    /// `[K]`.
    pub head_b: Vec<f32>,
    pub normalization: Normalization,
}

fn vec_f32(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?
        .to_dtype(DType::F32)?
        .to_device(&Device::Cpu)?
        .to_vec1()?)
}

impl DeployedModel {
    /// Loads a checkpoint folder (written by `repopt train`) and deploys it.
    pub fn load(dir: &Path) -> Result<Self> {
        let ck = Checkpoint::load(dir, &Device::Cpu)?;
        Self::from_checkpoint(&ck)
    }

    pub fn from_checkpoint(ck: &Checkpoint) -> Result<Self> {
        let net = ck.network(&Device::Cpu)?;
        Self::from_network(&net, ck.meta.normalization.clone())
    }

    /// Deploys any network (`Network::deploy`) and copies its tensors out.
    pub fn from_network(net: &Network, normalization: Normalization) -> Result<Self> {
        normalization
            .validate(net.spec.in_channels)
            .map_err(|e| QuantError::Mismatch {
                what: "normalisation".into(),
                message: e.to_string(),
            })?;
        let deployed = net.deploy()?;
        let state = deployed.state()?;
        let get = |name: &str| -> Result<Vec<f32>> {
            let t = state.get(name).ok_or_else(|| QuantError::Mismatch {
                what: "deployed network".into(),
                message: format!("tensor `{name}` is missing"),
            })?;
            vec_f32(t)
        };
        let mut layers = Vec::new();
        for l in deployed.layers() {
            let name = l.name();
            let geometry = LayerGeometry::from_conv(l);
            let weight = get(&format!("{name}.conv.weight"))?;
            let bias = get(&format!("{name}.conv.bias"))?;
            if weight.len() != l.out_channels * l.in_channels * 9 || bias.len() != l.out_channels {
                return Err(QuantError::Mismatch {
                    what: format!("layer {name}"),
                    message: format!(
                        "deployed weight/bias have {}/{} values, expected {}/{}",
                        weight.len(),
                        bias.len(),
                        l.out_channels * l.in_channels * 9,
                        l.out_channels
                    ),
                });
            }
            layers.push(DeployedLayer {
                stride: l.stride,
                geometry,
                weight,
                bias,
            });
        }
        Ok(Self {
            spec: net.spec.clone(),
            source_arch: net.arch,
            layers,
            head_w: get("linear.weight")?,
            head_b: get("linear.bias")?,
            normalization,
        })
    }

    pub fn classes(&self) -> usize {
        self.head_b.len()
    }

    /// Checks that a data set's images fit the network (size, channels,
    /// classes), with an error naming the mismatch.
    pub fn check_data(&self, data: &Dataset) -> Result<()> {
        check_images(
            &data.name,
            data.height,
            data.width,
            data.channels,
            self.spec.image_size,
            self.spec.in_channels,
        )?;
        if data.classes > self.classes() {
            return Err(QuantError::Mismatch {
                what: format!("data `{}`", data.name),
                message: format!(
                    "has {} classes but the model has {} outputs",
                    data.classes,
                    self.classes()
                ),
            });
        }
        Ok(())
    }

    /// The network as Candle tensors on `dev`, ready to run.
    pub fn float_net(&self, dev: &Device) -> Result<FloatNet> {
        let mut layers = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            let g = &l.geometry;
            let oihw = Tensor::from_vec(
                l.weight.clone(),
                (g.out_channels, g.in_channels, 3, 3),
                &Device::Cpu,
            )?;
            let w = repopt_train::conv::kernel_to_matmul(&oihw)?.to_device(dev)?;
            let b = Tensor::from_vec(l.bias.clone(), g.out_channels, dev)?;
            layers.push((g.clone(), w, b));
        }
        let k = self.classes();
        let f = self.head_w.len() / k.max(1);
        let head_wt = Tensor::from_vec(self.head_w.clone(), (k, f), dev)?
            .t()?
            .contiguous()?;
        let head_b = Tensor::from_vec(self.head_b.clone(), k, dev)?;
        Ok(FloatNet {
            layers,
            head_wt,
            head_b,
            normalization: self.normalization.clone(),
            size: self.spec.image_size,
            channels: self.spec.in_channels,
            device: dev.clone(),
        })
    }
}

/// Error unless an image set of `h x w x c` fits a network taking
/// `size x size x channels`.
pub fn check_images(
    what: &str,
    h: usize,
    w: usize,
    c: usize,
    size: usize,
    channels: usize,
) -> Result<()> {
    if h != size || w != size || c != channels {
        let mut why = Vec::new();
        if h != size || w != size {
            why.push(format!(
                "image size {h}x{w} differs from the model's {size}x{size}"
            ));
        }
        if c != channels {
            why.push(format!("{c} channel(s) differ from the model's {channels}"));
        }
        return Err(QuantError::Mismatch {
            what: format!("data `{what}`"),
            message: format!(
                "has {h}x{w}x{c} images but the model expects {size}x{size}x{channels}: {}",
                why.join("; ")
            ),
        });
    }
    Ok(())
}

/// The deployed float network in Candle (f32, channels last).
pub struct FloatNet {
    layers: Vec<(LayerGeometry, Tensor, Tensor)>,
    head_wt: Tensor,
    head_b: Tensor,
    pub normalization: Normalization,
    pub size: usize,
    pub channels: usize,
    device: Device,
}

/// Every activation of one float forward pass.
pub struct FloatOutputs {
    /// Post-ReLU output of every conv layer, `[N, H, W, C]`.
    pub per_layer: Vec<Tensor>,
    /// `[N, K]`.
    pub logits: Tensor,
}

impl FloatNet {
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Forward pass of normalised images `[N, H, W, C]`.
    pub fn forward(&self, images: &Tensor) -> Result<FloatOutputs> {
        let mut x = images.clone();
        let mut per_layer = Vec::with_capacity(self.layers.len());
        for (g, w, b) in &self.layers {
            let n = x.dim(0)?;
            x = im2col(&x, g.stride)?
                .matmul(w)?
                .broadcast_add(b)?
                .relu()?
                .reshape((n, g.out_size, g.out_size, g.out_channels))?;
            per_layer.push(x.clone());
        }
        let (n, h, w, c) = x.dims4()?;
        let pooled = x.reshape((n, h * w, c))?.mean(1)?;
        let logits = pooled.matmul(&self.head_wt)?.broadcast_add(&self.head_b)?;
        Ok(FloatOutputs { per_layer, logits })
    }

    /// Normalised images `indices` of `data` as a `[N, H, W, C]` tensor.
    pub fn batch(&self, data: &Dataset, indices: &[usize]) -> Result<Tensor> {
        let mut v = Vec::with_capacity(indices.len() * data.image_len());
        for &i in indices {
            v.extend(self.normalization.normalize_image(data.image(i)));
        }
        Ok(Tensor::from_vec(
            v,
            (indices.len(), data.height, data.width, data.channels),
            &self.device,
        )?)
    }
}

/// Index of the largest value, the first one on ties (as `Outputs::argmax`).
pub fn argmax<T: PartialOrd + Copy>(v: &[T]) -> usize {
    let mut best = 0;
    for (k, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = k;
        }
    }
    best
}

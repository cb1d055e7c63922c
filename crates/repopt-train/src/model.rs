//! The three networks of the paper, built from a `ModelSpec`:
//! RepOpt-VGG (plain conv-BN-ReLU), the Hyper-Search model
//! (`s*conv3x3 + t*conv1x1 [+ d*x]`, one BN) and RepVGG (three branches,
//! three BNs), plus the deployed form (one 3x3 conv with bias per layer)
//! that RepVGG fuses into and RepOpt-VGG folds into.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use repopt_spec::{ConvLayer, ModelSpec};
use serde::{Deserialize, Serialize};

use crate::conv::{centre_columns, im2col3x3, kernel_from_matmul, kernel_to_matmul};
use crate::error::{Error, Result};
use crate::nn::{uniform, BatchNorm, Linear};
use crate::scales::{initial_kernel_oihw, multiplier_oihw, Scales};

/// Which network a `Network` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// Plain conv-BN-ReLU blocks; trained with RepOpt-SGD (or plain SGD).
    RepOptVgg,
    /// Hyper-Search model with trainable scales s, t, d.
    HyperSearch,
    /// RepVGG's training-time three-branch blocks.
    RepVgg,
    /// One 3x3 conv with bias + ReLU per layer (BN folded / branches fused).
    Deployed,
}

impl Arch {
    pub fn label(self) -> &'static str {
        match self {
            Arch::RepOptVgg => "repopt-vgg",
            Arch::HyperSearch => "hyper-search",
            Arch::RepVgg => "repvgg",
            Arch::Deployed => "deployed",
        }
    }
}

/// A trainable tensor with what the optimizer needs to know about it.
pub struct Param {
    pub name: String,
    pub var: Var,
    /// Weight decay applies (conv and FC weights, HS identity scales).
    pub decay: bool,
    /// RepOpt-SGD gradient multiplier, same shape as `var`.
    pub multiplier: Option<Tensor>,
}

enum Block {
    Plain {
        kernel: Var,
        bn: BatchNorm,
        multiplier: Option<Tensor>,
    },
    HyperSearch {
        k3: Var,
        k1: Var,
        s: Var,
        t: Var,
        d: Option<Var>,
        bn: BatchNorm,
    },
    RepVgg {
        dense: Var,
        dense_bn: BatchNorm,
        k1: Var,
        k1_bn: BatchNorm,
        identity_bn: Option<BatchNorm>,
    },
    Deployed {
        kernel: Var,
        bias: Var,
    },
}

/// How a tensor is held inside the model versus in checkpoints.
#[derive(Clone, Copy)]
enum TensorLayout {
    /// Matmul layout `[k*k*I, O]` inside, PyTorch's `[O, I, k, k]` outside.
    Kernel { in_channels: usize, k: usize },
    /// The same either way (vectors, the head).
    Plain,
}

impl TensorLayout {
    fn internal_to_checkpoint(self, t: &Tensor) -> Result<Tensor> {
        Ok(match self {
            TensorLayout::Kernel { in_channels, k } => kernel_from_matmul(t, in_channels, k)?,
            TensorLayout::Plain => t.clone(),
        })
    }

    fn checkpoint_to_internal(self, t: &Tensor) -> Result<Tensor> {
        Ok(match self {
            TensorLayout::Kernel { .. } => kernel_to_matmul(t)?,
            TensorLayout::Plain => t.clone(),
        })
    }
}

enum Role {
    Trained {
        decay: bool,
        multiplier: Option<Tensor>,
    },
    /// Held and checkpointed, not trained (BN statistics, deployed weights).
    Buffer,
}

struct Named {
    name: String,
    var: Var,
    layout: TensorLayout,
    role: Role,
}

struct NamedList(Vec<Named>);

impl NamedList {
    fn add(&mut self, name: String, var: &Var, layout: TensorLayout, role: Role) {
        self.0.push(Named {
            name,
            var: var.clone(),
            layout,
            role,
        });
    }

    /// BN's affine parameters are trained without decay; its statistics are buffers.
    fn batch_norm(&mut self, prefix: String, bn: &BatchNorm) {
        let no_decay = || Role::Trained {
            decay: false,
            multiplier: None,
        };
        self.add(
            format!("{prefix}.weight"),
            &bn.gamma,
            TensorLayout::Plain,
            no_decay(),
        );
        self.add(
            format!("{prefix}.bias"),
            &bn.beta,
            TensorLayout::Plain,
            no_decay(),
        );
        self.add(
            format!("{prefix}.running_mean"),
            &bn.running_mean,
            TensorLayout::Plain,
            Role::Buffer,
        );
        self.add(
            format!("{prefix}.running_var"),
            &bn.running_var,
            TensorLayout::Plain,
            Role::Buffer,
        );
    }
}

/// A network: conv blocks, global average pooling, linear head.
pub struct Network {
    pub arch: Arch,
    pub spec: ModelSpec,
    layers: Vec<ConvLayer>,
    blocks: Vec<Block>,
    pub head: Linear,
    device: Device,
}

fn var_from(values: Vec<f64>, shape: &[usize], dev: &Device) -> Result<Var> {
    Ok(Var::from_tensor(
        &Tensor::from_vec(values, shape, dev)?.to_dtype(DType::F32)?,
    )?)
}

impl Network {
    /// A freshly initialised network. `scales` (RepOpt-VGG only) gives the
    /// gradient multipliers and the rule of initialisation; without them the
    /// model is the plain-SGD baseline with PyTorch's default init.
    pub fn new(
        arch: Arch,
        spec: &ModelSpec,
        scales: Option<&Scales>,
        seed: u64,
        dev: &Device,
    ) -> Result<Self> {
        spec.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let layers = spec.conv_layers();
        let initial_scales = Scales::initial(spec);
        let mut blocks = Vec::with_capacity(layers.len());
        for l in &layers {
            let (i, o) = (l.in_channels, l.out_channels);
            let bound3 = 1.0 / ((9 * i) as f64).sqrt();
            let bound1 = 1.0 / (i as f64).sqrt();
            let k3 = uniform(&mut rng, &[o, i, 3, 3], bound3, DType::F64, dev)?;
            let bn = || BatchNorm::new(o, DType::F32, dev);
            let block = match arch {
                Arch::RepOptVgg => match scales {
                    Some(sc) => {
                        let s = &sc.layers[l.index];
                        let k1 = uniform(&mut rng, &[o, i], bound1, DType::F64, dev)?;
                        let w = initial_kernel_oihw(l, s, &flat(&k3)?, &flat(&k1)?);
                        let kernel = to_matmul_var(&Tensor::from_vec(w, (o, i, 3, 3), dev)?)?;
                        let m = Tensor::from_vec(multiplier_oihw(l, s), (o, i, 3, 3), dev)?;
                        Block::Plain {
                            kernel,
                            bn: bn()?,
                            multiplier: Some(kernel_to_matmul(&m)?.to_dtype(DType::F32)?),
                        }
                    }
                    None => Block::Plain {
                        kernel: to_matmul_var(&k3)?,
                        bn: bn()?,
                        multiplier: None,
                    },
                },
                Arch::HyperSearch => {
                    let s0 = &initial_scales.layers[l.index];
                    let k1 = uniform(&mut rng, &[i, o], bound1, DType::F32, dev)?;
                    let vec =
                        |v: &Vec<f32>| var_from(v.iter().map(|&x| x as f64).collect(), &[o], dev);
                    Block::HyperSearch {
                        k3: to_matmul_var(&k3)?,
                        k1: Var::from_tensor(&k1)?,
                        s: vec(&s0.conv)?,
                        t: vec(&s0.one_by_one)?,
                        d: s0.identity.as_ref().map(vec).transpose()?,
                        bn: bn()?,
                    }
                }
                Arch::RepVgg => Block::RepVgg {
                    dense: to_matmul_var(&k3)?,
                    dense_bn: bn()?,
                    k1: Var::from_tensor(&uniform(&mut rng, &[i, o], bound1, DType::F32, dev)?)?,
                    k1_bn: bn()?,
                    identity_bn: l.has_identity.then(bn).transpose()?,
                },
                Arch::Deployed => Block::Deployed {
                    kernel: to_matmul_var(&k3)?,
                    bias: Var::zeros(o, DType::F32, dev)?,
                },
            };
            blocks.push(block);
        }
        let head = Linear::new(
            &mut rng,
            spec.feature_width(),
            spec.classes,
            DType::F32,
            dev,
        )?;
        Ok(Self {
            arch,
            spec: spec.clone(),
            layers,
            blocks,
            head,
            device: dev.clone(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn layers(&self) -> &[ConvLayer] {
        &self.layers
    }

    /// Logits `[N, classes]` for images `[N, H, W, C]` (channels last).
    pub fn forward(&mut self, images: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = images.clone();
        for (l, block) in self.layers.iter().zip(self.blocks.iter_mut()) {
            x = block_forward(block, l, &x, train)?;
        }
        let (n, h, w, c) = x.dims4()?;
        let pooled = x.reshape((n, h * w, c))?.mean(1)?;
        Ok(self.head.forward(&pooled)?)
    }

    /// Every tensor of the model once: name, storage, checkpoint layout, and
    /// whether (and how) the optimizer trains it. `params`, `state` and
    /// `load_state` are all views of this list.
    fn named(&self) -> Vec<Named> {
        let mut out = NamedList(Vec::new());
        let train = |decay: bool| Role::Trained {
            decay,
            multiplier: None,
        };
        let plain = TensorLayout::Plain;
        for (l, block) in self.layers.iter().zip(&self.blocks) {
            let n = l.name();
            let k3 = TensorLayout::Kernel {
                in_channels: l.in_channels,
                k: 3,
            };
            let k1 = TensorLayout::Kernel {
                in_channels: l.in_channels,
                k: 1,
            };
            match block {
                Block::Plain {
                    kernel,
                    bn,
                    multiplier,
                } => {
                    let role = Role::Trained {
                        decay: true,
                        multiplier: multiplier.clone(),
                    };
                    out.add(format!("{n}.conv.weight"), kernel, k3, role);
                    out.batch_norm(format!("{n}.bn"), bn);
                }
                Block::HyperSearch {
                    k3: w3,
                    k1: w1,
                    s,
                    t,
                    d,
                    bn,
                } => {
                    out.add(format!("{n}.conv.weight"), w3, k3, train(true));
                    out.add(format!("{n}.conv_1x1.weight"), w1, k1, train(true));
                    out.add(format!("{n}.scale_conv.weight"), s, plain, train(false));
                    out.add(format!("{n}.scale_1x1.weight"), t, plain, train(false));
                    if let Some(d) = d {
                        out.add(format!("{n}.scale_identity.weight"), d, plain, train(true));
                    }
                    out.batch_norm(format!("{n}.bn"), bn);
                }
                Block::RepVgg {
                    dense,
                    dense_bn,
                    k1: w1,
                    k1_bn,
                    identity_bn,
                } => {
                    out.add(format!("{n}.rbr_dense.conv.weight"), dense, k3, train(true));
                    out.batch_norm(format!("{n}.rbr_dense.bn"), dense_bn);
                    out.add(format!("{n}.rbr_1x1.conv.weight"), w1, k1, train(true));
                    out.batch_norm(format!("{n}.rbr_1x1.bn"), k1_bn);
                    if let Some(bn) = identity_bn {
                        out.batch_norm(format!("{n}.rbr_identity"), bn);
                    }
                }
                Block::Deployed { kernel, bias } => {
                    out.add(format!("{n}.conv.weight"), kernel, k3, Role::Buffer);
                    out.add(format!("{n}.conv.bias"), bias, plain, Role::Buffer);
                }
            }
        }
        out.add(
            "linear.weight".into(),
            &self.head.weight,
            plain,
            train(true),
        );
        out.add("linear.bias".into(), &self.head.bias, plain, train(false));
        out.0
    }

    /// Trainable tensors with their optimizer settings (decay on conv and FC
    /// weights and on HS identity scales; none on BN, FC bias, s and t).
    pub fn params(&self) -> Vec<Param> {
        self.named()
            .into_iter()
            .filter_map(|n| match n.role {
                Role::Trained { decay, multiplier } => Some(Param {
                    name: n.name,
                    var: n.var,
                    decay,
                    multiplier,
                }),
                Role::Buffer => None,
            })
            .collect()
    }

    /// Every tensor of the model under PyTorch-style names and layouts
    /// (kernels `[O, I, kH, kW]`), BN running statistics included.
    pub fn state(&self) -> Result<HashMap<String, Tensor>> {
        self.named()
            .into_iter()
            .map(|n| Ok((n.name, n.layout.internal_to_checkpoint(n.var.as_tensor())?)))
            .collect()
    }

    /// Loads tensors saved by `state`, checking every name and shape.
    /// `source` names the file in error messages.
    pub fn load_state(
        &mut self,
        state: &HashMap<String, Tensor>,
        source: &std::path::Path,
    ) -> Result<()> {
        let expected = self.state()?;
        let mut missing: Vec<&String> = expected
            .keys()
            .filter(|k| !state.contains_key(*k))
            .collect();
        missing.sort();
        if let Some(first) = missing.first() {
            return Err(Error::checkpoint(
                source,
                format!(
                    "tensor `{first}` is missing ({} missing in all); the file is not a {} `{}` checkpoint",
                    missing.len(),
                    self.arch.label(),
                    self.spec.name
                ),
            ));
        }
        for (name, want) in &expected {
            let got = &state[name];
            if got.dims() != want.dims() {
                return Err(Error::checkpoint(
                    source,
                    format!(
                        "tensor `{name}` has shape {:?}, model `{}` needs {:?}",
                        got.dims(),
                        self.spec.name,
                        want.dims()
                    ),
                ));
            }
        }
        for n in self.named() {
            // `copy`: a Var cannot be set to a tensor that shares its storage.
            let t = state[&n.name]
                .to_dtype(DType::F32)?
                .to_device(&self.device)?
                .copy()?;
            n.var.set(&n.layout.checkpoint_to_internal(&t)?)?;
        }
        Ok(())
    }

    /// The deployed form: every block as one 3x3 conv with bias (eval-mode BN
    /// folded; RepVGG's three branches fused; HS scales folded too).
    pub fn deploy(&self) -> Result<Network> {
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for (l, block) in self.layers.iter().zip(&self.blocks) {
            let (kernel, bias) = fuse_block(block, l, &self.device)?;
            blocks.push(Block::Deployed {
                kernel: Var::from_tensor(&kernel)?,
                bias: Var::from_tensor(&bias)?,
            });
        }
        let head = Linear {
            weight: Var::from_tensor(&self.head.weight.as_tensor().copy()?)?,
            bias: Var::from_tensor(&self.head.bias.as_tensor().copy()?)?,
        };
        Ok(Network {
            arch: Arch::Deployed,
            spec: self.spec.clone(),
            layers: self.layers.clone(),
            blocks,
            head,
            device: self.device.clone(),
        })
    }

    /// The Hyper-Search scales of an HS model (the last epoch's, as the paper keeps).
    pub fn scales(&self) -> Result<Option<Scales>> {
        let mut layers = Vec::new();
        for (l, block) in self.layers.iter().zip(&self.blocks) {
            let Block::HyperSearch { s, t, d, .. } = block else {
                return Ok(None);
            };
            let v = |x: &Var| x.as_tensor().to_vec1::<f32>();
            layers.push(crate::scales::LayerScales {
                name: l.name(),
                conv: v(s)?,
                one_by_one: v(t)?,
                identity: d.as_ref().map(v).transpose()?,
            });
        }
        Ok(Some(Scales { layers }))
    }

    /// The RepOpt-SGD multiplier of each plain block, if the model has scales.
    pub fn multipliers(&self) -> Vec<Option<Tensor>> {
        self.blocks
            .iter()
            .map(|b| match b {
                Block::Plain { multiplier, .. } => multiplier.clone(),
                _ => None,
            })
            .collect()
    }
}

fn flat(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.flatten_all()?.to_dtype(DType::F64)?.to_vec1()?)
}

fn to_matmul_var(oihw: &Tensor) -> Result<Var> {
    Ok(Var::from_tensor(
        &kernel_to_matmul(oihw)?.to_dtype(DType::F32)?,
    )?)
}

fn block_forward(block: &mut Block, l: &ConvLayer, x: &Tensor, train: bool) -> Result<Tensor> {
    let (n, _, _, c) = x.dims4()?;
    let cols = im2col3x3(x, l.stride)?;
    // Blocks with one BN before the ReLU fuse the two.
    let out = match block {
        Block::Plain { kernel, bn, .. } => {
            bn.forward(&cols.matmul(kernel.as_tensor())?, train, true)?
        }
        Block::HyperSearch {
            k3,
            k1,
            s,
            t,
            d,
            bn,
        } => {
            let mut sum = cols
                .matmul(k3.as_tensor())?
                .broadcast_mul(s.as_tensor())?
                .add(
                    &centre_columns(&cols, c)?
                        .matmul(k1.as_tensor())?
                        .broadcast_mul(t.as_tensor())?,
                )?;
            if let Some(d) = d {
                sum = sum.add(&x.reshape(((), c))?.broadcast_mul(d.as_tensor())?)?;
            }
            bn.forward(&sum, train, true)?
        }
        Block::RepVgg {
            dense,
            dense_bn,
            k1,
            k1_bn,
            identity_bn,
        } => {
            let mut sum = dense_bn
                .forward(&cols.matmul(dense.as_tensor())?, train, false)?
                .add(&k1_bn.forward(
                    &centre_columns(&cols, c)?.matmul(k1.as_tensor())?,
                    train,
                    false,
                )?)?;
            if let Some(bn) = identity_bn {
                sum = sum.add(&bn.forward(&x.reshape(((), c))?, train, false)?)?;
            }
            sum.relu()?
        }
        Block::Deployed { kernel, bias } => cols
            .matmul(kernel.as_tensor())?
            .broadcast_add(bias.as_tensor())?
            .relu()?,
    };
    Ok(out.reshape((n, l.out_size, l.out_size, l.out_channels))?)
}

/// One block as a single `[9*I, O]` kernel and `[O]` bias, eval-mode BN folded.
fn fuse_block(block: &Block, l: &ConvLayer, dev: &Device) -> Result<(Tensor, Tensor)> {
    let (i, o) = (l.in_channels, l.out_channels);
    // Embeds a per-input [I, O] matrix at the centre tap of a [9*I, O] kernel.
    let centre = |m: &Tensor| -> Result<Tensor> {
        let zeros = Tensor::zeros((4 * i, o), DType::F32, dev)?;
        Ok(Tensor::cat(&[&zeros, m, &zeros], 0)?)
    };
    let identity = || -> Result<Tensor> { centre(&Tensor::eye(i, DType::F32, dev)?) };
    let fold = |k: &Tensor, bn: &BatchNorm| -> Result<(Tensor, Tensor)> {
        let (scale, shift) = bn.affine()?;
        Ok((k.broadcast_mul(&scale)?, shift))
    };
    Ok(match block {
        Block::Plain { kernel, bn, .. } => fold(kernel.as_tensor(), bn)?,
        Block::HyperSearch {
            k3,
            k1,
            s,
            t,
            d,
            bn,
        } => {
            let mut k = (k3.as_tensor().broadcast_mul(s.as_tensor())?
                + centre(&k1.as_tensor().broadcast_mul(t.as_tensor())?)?)?;
            if let Some(d) = d {
                k = (k + identity()?.broadcast_mul(d.as_tensor())?)?;
            }
            fold(&k, bn)?
        }
        Block::RepVgg {
            dense,
            dense_bn,
            k1,
            k1_bn,
            identity_bn,
        } => {
            let (mut k, mut b) = fold(dense.as_tensor(), dense_bn)?;
            let (k1f, b1) = fold(&centre(k1.as_tensor())?, k1_bn)?;
            k = (k + k1f)?;
            b = (b + b1)?;
            if let Some(bn) = identity_bn {
                let (kid, bid) = fold(&identity()?, bn)?;
                k = (k + kid)?;
                b = (b + bid)?;
            }
            (k, b)
        }
        Block::Deployed { kernel, bias } => (kernel.as_tensor().clone(), bias.as_tensor().clone()),
    })
}

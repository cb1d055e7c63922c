//! Hyper-Search scales: reading (our safetensors or the authors' PyTorch
//! archives), validation against a network, and the quantities derived from
//! them: RepOpt-SGD's gradient multipliers and the initialisation rule.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use repopt_spec::{ConvLayer, ModelSpec};

use crate::error::{write_atomic, Error, Result};

/// The trained per-output-channel scales of one conv layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerScales {
    /// Layer name as in the archives, e.g. `stage2.5`.
    pub name: String,
    /// `s`, scale of the 3x3 branch.
    pub conv: Vec<f32>,
    /// `t`, scale of the 1x1 branch.
    pub one_by_one: Vec<f32>,
    /// `d`, scale of the identity branch, where the layer has one.
    pub identity: Option<Vec<f32>>,
}

/// Scales of every conv layer of a network, in layer order.
#[derive(Debug, Clone, PartialEq)]
pub struct Scales {
    pub layers: Vec<LayerScales>,
}

const CONV: &str = "scale_conv.weight";
const ONE: &str = "scale_1x1.weight";
const IDENTITY: &str = "scale_identity.weight";

impl Scales {
    /// Reads a scales file: a PyTorch archive (`.pth`, `.pt`) through Candle's
    /// pickle reader, anything else as safetensors. Tensor names follow the
    /// official archives: `<layer>.scale_conv.weight` etc.
    pub fn load(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(Error::scales(path, "file not found"));
        }
        let is_torch = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("pth" | "pt")
        );
        let tensors: Vec<(String, Tensor)> = if is_torch {
            candle_core::pickle::read_all(path)
                .map_err(|e| Error::scales(path, format!("not a readable PyTorch archive: {e}")))?
        } else {
            candle_core::safetensors::load(path, &Device::Cpu)
                .map_err(|e| Error::scales(path, format!("not a readable safetensors file: {e}")))?
                .into_iter()
                .collect()
        };
        Self::from_tensors(tensors).map_err(|m| Error::scales(path, m))
    }

    fn from_tensors(tensors: Vec<(String, Tensor)>) -> std::result::Result<Self, String> {
        let mut by_layer: HashMap<String, [Option<Vec<f32>>; 3]> = HashMap::new();
        for (name, t) in tensors {
            let (layer, slot) = if let Some(l) = name.strip_suffix(CONV) {
                (l, 0)
            } else if let Some(l) = name.strip_suffix(ONE) {
                (l, 1)
            } else if let Some(l) = name.strip_suffix(IDENTITY) {
                (l, 2)
            } else {
                return Err(format!(
                    "unexpected tensor `{name}` (expected <layer>.{CONV}, .{ONE} or .{IDENTITY})"
                ));
            };
            let values = t
                .flatten_all()
                .and_then(|t| t.to_dtype(DType::F32))
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| format!("tensor `{name}`: {e}"))?;
            by_layer
                .entry(layer.trim_end_matches('.').to_string())
                .or_default()[slot] = Some(values);
        }
        let mut layers = Vec::with_capacity(by_layer.len());
        for (name, [conv, one, id]) in by_layer {
            let conv = conv.ok_or(format!("layer `{name}` has no {CONV}"))?;
            let one_by_one = one.ok_or(format!("layer `{name}` has no {ONE}"))?;
            layers.push(LayerScales {
                name,
                conv,
                one_by_one,
                identity: id,
            });
        }
        layers.sort_by_key(|l| layer_order(&l.name));
        Ok(Scales { layers })
    }

    /// Writes a safetensors file with the official tensor names (atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut map = HashMap::new();
        for l in &self.layers {
            let vec = |v: &Vec<f32>| Tensor::from_slice(v, v.len(), &Device::Cpu);
            map.insert(format!("{}.{CONV}", l.name), vec(&l.conv)?);
            map.insert(format!("{}.{ONE}", l.name), vec(&l.one_by_one)?);
            if let Some(d) = &l.identity {
                map.insert(format!("{}.{IDENTITY}", l.name), vec(d)?);
            }
        }
        let tmp = path.with_extension("safetensors.partial");
        candle_core::safetensors::save(&map, &tmp)?;
        let bytes = std::fs::read(&tmp).map_err(|e| Error::io(&tmp, e))?;
        std::fs::remove_file(&tmp).map_err(|e| Error::io(&tmp, e))?;
        write_atomic(path, &bytes)
    }

    /// Checks that these scales belong to `spec`: same layer count, names,
    /// channel widths and identity branches. `path` is only for the message.
    pub fn validate(&self, spec: &ModelSpec, path: &Path) -> Result<()> {
        let layers = spec.conv_layers();
        if layers.len() != self.layers.len() {
            return Err(Error::scales(
                path,
                format!(
                    "has {} conv layers but model `{}` has {}; these scales are for another architecture",
                    self.layers.len(),
                    spec.name,
                    layers.len()
                ),
            ));
        }
        for (l, s) in layers.iter().zip(&self.layers) {
            let mismatch = |what: String| {
                Error::scales(path, format!("layer {} (`{}`): {what}", l.index, s.name))
            };
            if s.name != l.name() {
                return Err(mismatch(format!("expected layer name `{}`", l.name())));
            }
            for (what, v) in [("scale_conv", &s.conv), ("scale_1x1", &s.one_by_one)] {
                if v.len() != l.out_channels {
                    return Err(mismatch(format!(
                        "{what} has {} channels, model `{}` has {}",
                        v.len(),
                        spec.name,
                        l.out_channels
                    )));
                }
            }
            match (&s.identity, l.has_identity) {
                (Some(d), true) if d.len() != l.out_channels => {
                    return Err(mismatch(format!(
                        "scale_identity has {} channels, expected {}",
                        d.len(),
                        l.out_channels
                    )))
                }
                (Some(_), false) => {
                    return Err(mismatch(
                        "has an identity scale but the layer has no identity branch".into(),
                    ))
                }
                (None, true) => {
                    return Err(mismatch(
                        "lacks the identity scale its identity branch needs".into(),
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The initial scales of a Hyper-Search model: s = t = 1 for the first
    /// block of a stage and sqrt(2/i) for block i > 0; d = 1.
    pub fn initial(spec: &ModelSpec) -> Self {
        let layers = spec
            .conv_layers()
            .iter()
            .map(|l| {
                let v = if l.block == 0 {
                    1.0
                } else {
                    (2.0 / l.block as f32).sqrt()
                };
                LayerScales {
                    name: l.name(),
                    conv: vec![v; l.out_channels],
                    one_by_one: vec![v; l.out_channels],
                    identity: l.has_identity.then(|| vec![1.0; l.out_channels]),
                }
            })
            .collect();
        Scales { layers }
    }
}

/// Sort key for layer names `stage0`, `stage1.0`, ..., `stage4.0`.
fn layer_order(name: &str) -> (usize, usize) {
    let rest = name.strip_prefix("stage").unwrap_or(name);
    let mut parts = rest.split('.');
    let stage = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(usize::MAX);
    let block = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (stage, block)
}

/// RepOpt-SGD's gradient multiplier of one layer in PyTorch layout `[O, I, 3, 3]`:
/// `M[o,i,p,q] = s_o^2 + t_o^2 [centre] + [identity and o = i and centre]`.
pub fn multiplier_oihw(layer: &ConvLayer, s: &LayerScales) -> Vec<f64> {
    let (o_n, i_n) = (layer.out_channels, layer.in_channels);
    let mut m = vec![0.0; o_n * i_n * 9];
    for o in 0..o_n {
        let (s2, t2) = ((s.conv[o] as f64).powi(2), (s.one_by_one[o] as f64).powi(2));
        for i in 0..i_n {
            for tap in 0..9 {
                let centre = tap == 4;
                let identity = centre && layer.has_identity && o == i;
                m[(o * i_n + i) * 9 + tap] =
                    s2 + if centre { t2 } else { 0.0 } + if identity { 1.0 } else { 0.0 };
            }
        }
    }
    m
}

/// The rule of initialisation in PyTorch layout:
/// `W0[o,i] = s_o K3[o,i] + t_o pad(K1[o,i]) + d_o [o = i] e_centre`.
/// `k3` is `[O, I, 3, 3]`, `k1` is `[O, I]`; `d` is the trained identity scale
/// (the authors' code) where present.
pub fn initial_kernel_oihw(layer: &ConvLayer, s: &LayerScales, k3: &[f64], k1: &[f64]) -> Vec<f64> {
    let (o_n, i_n) = (layer.out_channels, layer.in_channels);
    let mut w = vec![0.0; o_n * i_n * 9];
    for o in 0..o_n {
        for i in 0..i_n {
            for tap in 0..9 {
                let idx = (o * i_n + i) * 9 + tap;
                w[idx] = s.conv[o] as f64 * k3[idx];
                if tap == 4 {
                    w[idx] += s.one_by_one[o] as f64 * k1[o * i_n + i];
                    if let (Some(d), true) = (&s.identity, o == i) {
                        w[idx] += d[o] as f64;
                    }
                }
            }
        }
    }
    w
}

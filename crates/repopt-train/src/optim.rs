//! RepOpt-SGD: SGD with Nesterov momentum whose gradient is multiplied,
//! element by element, by a constant mask before weight decay is added.
//!
//! One step, per parameter w with gradient g (spec section 3):
//! `g~ = g*M + wd*w;  b = g~ (first step) or mu*b + g~;  w -= lr*(g~ + mu*b)`.
//! Parameters without a mask take the same step with M = 1, which is also
//! plain SGD (the paper's ablation baseline) and the Hyper-Search optimizer.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::Param;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    pub momentum: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
}

impl Default for SgdConfig {
    /// The paper's settings: momentum 0.9, Nesterov, decay 4e-5.
    fn default() -> Self {
        Self {
            momentum: 0.9,
            weight_decay: 4e-5,
            nesterov: true,
        }
    }
}

struct Slot {
    name: String,
    var: Var,
    decay: bool,
    multiplier: Option<Tensor>,
    momentum: Option<Tensor>,
}

pub struct RepOptSgd {
    config: SgdConfig,
    slots: Vec<Slot>,
    /// Steps taken so far (restored on resume).
    pub steps: usize,
}

impl RepOptSgd {
    pub fn new(params: Vec<Param>, config: SgdConfig) -> Result<Self> {
        let slots = params
            .into_iter()
            .map(|p| {
                let multiplier = p
                    .multiplier
                    .map(|m| m.to_dtype(p.var.dtype()))
                    .transpose()?;
                Ok(Slot {
                    name: p.name,
                    var: p.var,
                    decay: p.decay,
                    multiplier,
                    momentum: None,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            config,
            slots,
            steps: 0,
        })
    }

    /// Applies one update with learning rate `lr`; parameters without a
    /// gradient (unused in the graph) are left alone.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        let SgdConfig {
            momentum: mu,
            weight_decay,
            nesterov,
        } = self.config;
        for slot in &mut self.slots {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            // Detached: gradients carry the backward graph (and through it the
            // step's activations); a momentum buffer built on them would keep
            // every step's graph alive.
            let g = g.detach();
            let w = slot.var.as_tensor().detach();
            let mut g = match &slot.multiplier {
                Some(m) => (g * m)?,
                None => g,
            };
            if slot.decay && weight_decay != 0.0 {
                g = (g + (&w * weight_decay)?)?;
            }
            let update = if mu == 0.0 {
                g
            } else {
                let b = match &slot.momentum {
                    Some(b) => ((b * mu)? + &g)?,
                    None => g.clone(),
                };
                let update = if nesterov {
                    (g + (&b * mu)?)?
                } else {
                    b.clone()
                };
                slot.momentum = Some(b);
                update
            };
            slot.var.set(&(w - (update * lr)?)?)?;
        }
        self.steps += 1;
        Ok(())
    }

    /// Momentum buffers and multipliers under `optimizer.*` names, for checkpoints.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut map = HashMap::new();
        for s in &self.slots {
            if let Some(b) = &s.momentum {
                map.insert(format!("optimizer.momentum.{}", s.name), b.clone());
            }
            if let Some(m) = &s.multiplier {
                map.insert(format!("optimizer.multiplier.{}", s.name), m.clone());
            }
        }
        map
    }

    /// Restores momentum buffers and multipliers saved by `state`.
    pub fn load_state(&mut self, map: &HashMap<String, Tensor>) -> Result<()> {
        for s in &mut self.slots {
            let dtype = s.var.dtype();
            let dev = s.var.device().clone();
            let take = |key: String| -> Result<Option<Tensor>> {
                Ok(map
                    .get(&key)
                    .map(|t| t.to_dtype(dtype).and_then(|t| t.to_device(&dev)))
                    .transpose()?)
            };
            s.momentum = take(format!("optimizer.momentum.{}", s.name))?;
            if let Some(m) = take(format!("optimizer.multiplier.{}", s.name))? {
                s.multiplier = Some(m);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Momentum buffers must not hold the backward graph: one that did kept
    /// every step's activations alive (training memory grew without bound).
    #[test]
    fn momentum_buffers_hold_no_graph() {
        let w =
            Var::from_tensor(&Tensor::new(&[[1.0f32, -2.0], [0.5, 3.0]], &Device::Cpu).unwrap())
                .unwrap();
        let x = Tensor::new(&[[0.3f32, 0.7]], &Device::Cpu).unwrap();
        let param = Param {
            name: "w".into(),
            var: w.clone(),
            decay: true,
            multiplier: None,
        };
        let mut opt = RepOptSgd::new(vec![param], SgdConfig::default()).unwrap();
        for _ in 0..3 {
            let loss = x
                .matmul(w.as_tensor())
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap();
            opt.step(&loss.backward().unwrap(), 0.1).unwrap();
        }
        let state = opt.state();
        let b = &state["optimizer.momentum.w"];
        assert!(!b.track_op(), "momentum buffer is attached to a graph");
    }
}

//! Static worst-case accumulator bounds (contract, "Accumulator and
//! overflow").
//!
//! For output channel `o` of a layer, every partial sum, in any order, lies in
//! `[-B_o, B_o]` with `B_o = |bias[o]| + max|x| * sum |w[o]|` (max|x| = 255 for
//! uint8 inputs, 128 for the int8 network input). A layer whose largest `B_o`
//! fits an accumulator can never overflow it, whatever the data and the order
//! of accumulation.

use crate::arith::bits_for_bound;
use crate::error::Int8Error;
use crate::model::{ActDtype, Int8Model};

/// Worst-case bound of one layer (or of the head).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccBound {
    /// Conv layer index; `None` for the head.
    pub layer: Option<usize>,
    /// Layer name (`stage1.0`, ..., `head`).
    pub name: String,
    /// Largest `B_o` over the output channels.
    pub bound: u64,
    /// Output channel attaining it.
    pub channel: usize,
    /// Accumulator bits needed to hold `[-bound, bound]`.
    pub bits_needed: u32,
}

fn worst(rows: impl Iterator<Item = (u64, u64)>, max_x: u64) -> (u64, usize) {
    let mut best = (0u64, 0usize);
    for (o, (abs_w, abs_b)) in rows.enumerate() {
        let b = abs_b.saturating_add(abs_w.saturating_mul(max_x));
        if b > best.0 || o == 0 {
            best = (b, o);
        }
    }
    best
}

impl Int8Model {
    /// Worst-case bound of every conv layer, then of the head (uint8 pooled input).
    pub fn accumulator_bounds(&self) -> Vec<AccBound> {
        let mut out = Vec::with_capacity(self.layers.len() + 1);
        for (i, l) in self.layers.iter().enumerate() {
            let per = 9 * l.geometry.in_channels;
            let rows = l.weights.chunks(per.max(1)).zip(&l.bias).map(|(w, &b)| {
                (
                    w.iter().map(|&v| v.unsigned_abs() as u64).sum(),
                    b.unsigned_abs() as u64,
                )
            });
            let (bound, channel) = worst(rows, l.geometry.input_dtype().max_abs());
            out.push(AccBound {
                layer: Some(i),
                name: l.geometry.name.clone(),
                bound,
                channel,
                bits_needed: bits_for_bound(bound),
            });
        }
        let h = &self.head;
        let rows = h
            .weights
            .chunks(h.in_features.max(1))
            .zip(&h.bias)
            .map(|(w, &b)| {
                (
                    w.iter().map(|&v| v.unsigned_abs() as u64).sum(),
                    b.unsigned_abs() as u64,
                )
            });
        let (bound, channel) = worst(rows, ActDtype::U8.max_abs());
        out.push(AccBound {
            layer: None,
            name: "head".into(),
            bound,
            channel,
            bits_needed: bits_for_bound(bound),
        });
        out
    }

    /// The layers whose worst case does NOT fit an `acc_bits` accumulator.
    pub fn layers_that_may_overflow(&self, acc_bits: u32) -> Vec<AccBound> {
        self.accumulator_bounds()
            .into_iter()
            .filter(|b| b.bits_needed > acc_bits)
            .collect()
    }

    /// `Ok` when no layer can overflow an `acc_bits` accumulator for any
    /// input; otherwise an error naming every layer that could.
    pub fn check_accumulator_bounds(&self, acc_bits: u32) -> Result<(), Int8Error> {
        let bad = self.layers_that_may_overflow(acc_bits);
        if bad.is_empty() {
            return Ok(());
        }
        let layers = bad
            .iter()
            .map(|b| match b.layer {
                Some(i) => format!(
                    "layer {i} ({}) needs {} bits (channel {}, bound {})",
                    b.name, b.bits_needed, b.channel, b.bound
                ),
                None => format!(
                    "head needs {} bits (class {}, bound {})",
                    b.bits_needed, b.channel, b.bound
                ),
            })
            .collect::<Vec<_>>()
            .join("; ");
        Err(Int8Error::AccumulatorMayOverflow {
            bits: acc_bits,
            layers,
        })
    }
}

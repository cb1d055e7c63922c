//! Cross-entropy with label smoothing, and accuracy.

use candle_core::{DType, Tensor, D};

use crate::error::Result;

/// Mean cross-entropy of `logits [N, K]` against integer labels, with the
/// target `(1 - eps) * one_hot + eps / K` (label smoothing).
pub fn cross_entropy(logits: &Tensor, labels: &[u32], smoothing: f64) -> Result<Tensor> {
    let (n, k) = logits.dims2()?;
    let mut target = vec![(smoothing / k as f64) as f32; n * k];
    for (row, &y) in labels.iter().enumerate() {
        target[row * k + y as usize] += (1.0 - smoothing) as f32;
    }
    let target = Tensor::from_vec(target, (n, k), logits.device())?.to_dtype(logits.dtype())?;
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let shifted = logits.broadcast_sub(&max)?;
    let log_probs = shifted.broadcast_sub(&shifted.exp()?.sum_keepdim(D::Minus1)?.log()?)?;
    Ok((log_probs * target)?.sum(D::Minus1)?.mean_all()?.neg()?)
}

/// Number of rows whose arg-max equals the label.
pub fn correct(logits: &Tensor, labels: &[u32]) -> Result<usize> {
    let pred = logits
        .argmax(D::Minus1)?
        .to_dtype(DType::U32)?
        .to_vec1::<u32>()?;
    Ok(pred.iter().zip(labels).filter(|(p, y)| p == y).count())
}

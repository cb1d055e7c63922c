//! Per-channel normalisation of u8 pixels to f32.
//!
//! The definition is `x = (v / 255 - mean[c]) / std[c]` for a pixel byte `v`
//! in channel `c`. It is written down once here and serialised with
//! checkpoints, because the INT8 contract later folds exactly this affine map
//! into the first layer; training, calibration and inference must all agree.

use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::DataError;

/// Per-channel mean and standard deviation of `pixel / 255`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Mean of `pixel / 255`, one per channel.
    pub mean: Vec<f32>,
    /// Standard deviation of `pixel / 255`, one per channel (positive).
    pub std: Vec<f32>,
}

/// Smallest std accepted by [`Normalization::from_dataset`]; constant
/// channels get std 1 instead of a division by ~0.
const MIN_STD: f64 = 1e-6;

impl Normalization {
    /// The statistics of Fashion-MNIST's 60 000 training images
    /// (mean 0.2860, std 0.3530), so runs on subsets use the same constants.
    pub fn fashion_mnist() -> Self {
        Normalization {
            mean: vec![0.2860],
            std: vec![0.3530],
        }
    }

    /// The statistics of CIFAR-10's 50 000 training images (population std
    /// over all pixels, not the often-quoted mean of per-image stds).
    pub fn cifar10() -> Self {
        Normalization {
            mean: vec![0.4914, 0.4822, 0.4465],
            std: vec![0.2470, 0.2435, 0.2616],
        }
    }

    /// The statistics of CIFAR-100's 50 000 training images.
    pub fn cifar100() -> Self {
        Normalization {
            mean: vec![0.5071, 0.4865, 0.4409],
            std: vec![0.2673, 0.2564, 0.2762],
        }
    }

    /// Mean 0, std 1: only divides by 255.
    pub fn identity(channels: usize) -> Self {
        Normalization {
            mean: vec![0.0; channels],
            std: vec![1.0; channels],
        }
    }

    /// Mean and population std per channel of `pixel / 255` over every pixel
    /// of `dataset` — pass the *training* set, never the test set.
    ///
    /// Accumulates in integers, so the result does not depend on order or
    /// dataset size. An empty dataset gives [`Normalization::identity`].
    pub fn from_dataset(dataset: &Dataset) -> Self {
        let c = dataset.channels.max(1);
        let mut sum = vec![0u64; c];
        let mut sq = vec![0u64; c];
        for px in dataset.images.chunks_exact(c) {
            for (ch, &v) in px.iter().enumerate() {
                sum[ch] += u64::from(v);
                sq[ch] += u64::from(v) * u64::from(v);
            }
        }
        let n = (dataset.images.len() / c) as f64;
        if n == 0.0 {
            return Self::identity(dataset.channels);
        }
        let mut mean = Vec::with_capacity(c);
        let mut std = Vec::with_capacity(c);
        for ch in 0..c {
            let m = sum[ch] as f64 / n;
            let var = (sq[ch] as f64 / n - m * m).max(0.0);
            let s = var.sqrt() / 255.0;
            mean.push((m / 255.0) as f32);
            std.push(if s < MIN_STD { 1.0 } else { s as f32 });
        }
        Normalization { mean, std }
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// Checks the vectors agree in length with each other and with
    /// `channels`, and that every std is finite and positive.
    pub fn validate(&self, channels: usize) -> Result<(), DataError> {
        if self.mean.len() != channels || self.std.len() != channels {
            return Err(DataError::Invalid(format!(
                "normalisation has {} means and {} stds, but the images have {} channels",
                self.mean.len(),
                self.std.len(),
                channels
            )));
        }
        if let Some(s) = self.std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(DataError::Invalid(format!(
                "normalisation std {s} is not a positive finite number"
            )));
        }
        if let Some(m) = self.mean.iter().find(|m| !m.is_finite()) {
            return Err(DataError::Invalid(format!(
                "normalisation mean {m} is not finite"
            )));
        }
        Ok(())
    }

    /// Normalises one byte of channel `channel`: `(v / 255 - mean) / std`.
    pub fn normalize_value(&self, v: u8, channel: usize) -> f32 {
        (f32::from(v) / 255.0 - self.mean[channel]) / self.std[channel]
    }

    /// A 256-entry table per channel holding [`Normalization::normalize_value`]
    /// of every byte — bit-identical to it, and what the batcher uses.
    pub fn lookup_table(&self) -> Vec<[f32; 256]> {
        (0..self.channels())
            .map(|c| std::array::from_fn(|v| self.normalize_value(v as u8, c)))
            .collect()
    }

    /// Normalises one channels-last image into `out` (same length). For
    /// inference and INT8 calibration on single images. Panics if lengths
    /// differ or are not a multiple of the channel count.
    pub fn normalize_into(&self, image: &[u8], out: &mut [f32]) {
        let c = self.channels();
        assert_eq!(image.len(), out.len(), "image and output lengths differ");
        assert!(
            c > 0 && image.len() % c == 0,
            "image length {} is not a multiple of {c} channels",
            image.len()
        );
        for (px, o) in image.chunks_exact(c).zip(out.chunks_exact_mut(c)) {
            for ch in 0..c {
                o[ch] = self.normalize_value(px[ch], ch);
            }
        }
    }

    /// Normalises one channels-last image into a new vector.
    pub fn normalize_image(&self, image: &[u8]) -> Vec<f32> {
        let mut out = vec![0.0; image.len()];
        self.normalize_into(image, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_dataset_matches_hand_computation() {
        // Two 1x1 RGB images: channel 0 = {0, 255}, 1 = {51, 51}, 2 = {255, 255}.
        let d = Dataset::new("t", vec![0, 51, 255, 255, 51, 255], vec![0, 1], 1, 1, 3, 2).unwrap();
        let n = Normalization::from_dataset(&d);
        assert!((n.mean[0] - 0.5).abs() < 1e-6);
        assert!((n.std[0] - 0.5).abs() < 1e-6);
        assert!((n.mean[1] - 0.2).abs() < 1e-6);
        assert_eq!(n.std[1], 1.0, "constant channel gets std 1");
        assert!((n.mean[2] - 1.0).abs() < 1e-6);
        n.validate(3).unwrap();
        assert!(n.validate(1).is_err());
    }

    #[test]
    fn table_matches_formula_and_serde_round_trips() {
        let n = Normalization::cifar10();
        let t = n.lookup_table();
        for (c, table) in t.iter().enumerate() {
            for v in 0..=255u8 {
                assert_eq!(
                    table[v as usize].to_bits(),
                    n.normalize_value(v, c).to_bits()
                );
            }
        }
        let img = [0u8, 128, 255, 7, 8, 9];
        let out = n.normalize_image(&img);
        assert_eq!(out[4], n.normalize_value(8, 1));
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(serde_json::from_str::<Normalization>(&json).unwrap(), n);
    }
}

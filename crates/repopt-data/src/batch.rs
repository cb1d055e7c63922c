//! Epoch iterators producing normalised f32 batches.
//!
//! The order of an epoch and the augmentation of every batch depend only on
//! `(seed, epoch, batch index)`: the permutation comes from a ChaCha8 stream
//! keyed by `(seed, epoch)`, and each batch's crops and flips from a stream
//! keyed by `(seed, epoch, batch index)`. A run resumed at epoch `k` (or at
//! batch `b` of it, via [`Batches::batch`] or `nth`) therefore sees exactly
//! the batches an uninterrupted run would, and parallel filling cannot
//! change the result.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::augment::{augment_map, Augment, AugmentParams};
use crate::dataset::Dataset;
use crate::error::DataError;
use crate::normalize::Normalization;
use crate::rng::{chacha, shuffle};

/// Stream tag for epoch permutations.
const PERMUTATION_STREAM: u64 = 0x7065_726d; // "perm"
/// Stream tag for per-batch augmentation.
const AUGMENT_STREAM: u64 = 0x6175_676d; // "augm"
/// Batches with at least this many output floats are filled with rayon.
const PARALLEL_MIN_FLOATS: usize = 1 << 16;

/// How to walk a dataset for one epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchConfig {
    /// Run seed; with `epoch` it fixes the order and augmentation.
    pub seed: u64,
    /// Epoch number (0-based); each epoch gets a fresh order.
    pub epoch: usize,
    /// Visit images in a random permutation (training) or in file order.
    pub shuffle: bool,
    /// Augmentation applied to every image.
    pub augment: Augment,
    /// Skip a final batch smaller than the batch size (keeps BatchNorm
    /// statistics and step sizes uniform during training).
    pub drop_last: bool,
}

impl BatchConfig {
    /// Training epoch: shuffled, augmented, incomplete last batch dropped.
    pub fn train(seed: u64, epoch: usize, augment: Augment) -> Self {
        BatchConfig {
            seed,
            epoch,
            shuffle: true,
            augment,
            drop_last: true,
        }
    }

    /// Evaluation: file order, no augmentation, every image exactly once.
    pub fn eval() -> Self {
        BatchConfig {
            seed: 0,
            epoch: 0,
            shuffle: false,
            augment: Augment::none(),
            drop_last: false,
        }
    }
}

/// A batch of normalised images, ready to become an NHWC tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// `size * height * width * channels` normalised values, channels-last.
    pub images: Vec<f32>,
    /// One label per image, widened to `u32` for the trainer's tensors.
    pub labels: Vec<u32>,
    /// Number of images in this batch (the last one may be smaller).
    pub size: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Channels per pixel.
    pub channels: usize,
    /// Which dataset images these are, in batch order (for debugging and
    /// for matching predictions back to samples).
    pub indices: Vec<usize>,
}

impl Batch {
    /// `[size, height, width, channels]`.
    pub fn shape(&self) -> [usize; 4] {
        [self.size, self.height, self.width, self.channels]
    }
}

/// Sample order of one epoch: `0..len` permuted by `(seed, epoch)` if
/// `shuffle`, else in order.
pub fn epoch_order(len: usize, seed: u64, epoch: usize, shuffle_order: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    if shuffle_order {
        let mut rng = chacha(seed, &[PERMUTATION_STREAM, epoch as u64]);
        shuffle(&mut order, &mut rng);
    }
    order
}

/// Number of batches an epoch of `len` images yields.
pub fn num_batches(len: usize, batch_size: usize, drop_last: bool) -> usize {
    if batch_size == 0 {
        0
    } else if drop_last {
        len / batch_size
    } else {
        len.div_ceil(batch_size)
    }
}

/// Iterator over the batches of one epoch; see [`Dataset::batches`].
#[derive(Clone, Debug)]
pub struct Batches<'a> {
    dataset: &'a Dataset,
    order: Vec<usize>,
    batch_size: usize,
    config: BatchConfig,
    table: Vec<[f32; 256]>,
    next: usize,
    count: usize,
}

impl<'a> Batches<'a> {
    fn new(
        dataset: &'a Dataset,
        batch_size: usize,
        config: &BatchConfig,
        norm: &Normalization,
    ) -> Result<Self, DataError> {
        if batch_size == 0 {
            return Err(DataError::Invalid("batch size must be at least 1".into()));
        }
        norm.validate(dataset.channels)?;
        let side = dataset.height.max(dataset.width);
        if config.augment.crop_pad > side {
            return Err(DataError::Invalid(format!(
                "crop padding {} exceeds the image size {}x{}; crops would be mostly blank",
                config.augment.crop_pad, dataset.height, dataset.width
            )));
        }
        Ok(Batches {
            dataset,
            order: epoch_order(dataset.len(), config.seed, config.epoch, config.shuffle),
            batch_size,
            config: config.clone(),
            table: norm.lookup_table(),
            next: 0,
            count: num_batches(dataset.len(), batch_size, config.drop_last),
        })
    }

    /// Total batches in this epoch (including already yielded ones).
    pub fn num_batches(&self) -> usize {
        self.count
    }

    /// The epoch's sample order (dataset indices).
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Batch `index` of this epoch, independent of iteration state; `None`
    /// past the end. Lets a resumed run start mid-epoch.
    pub fn batch(&self, index: usize) -> Option<Batch> {
        if index >= self.count {
            return None;
        }
        let start = index * self.batch_size;
        let end = (start + self.batch_size).min(self.order.len());
        let indices = self.order[start..end].to_vec();
        let d = self.dataset;
        let aug = self.config.augment;
        let params: Vec<AugmentParams> = if aug.is_none() {
            vec![aug.identity_params(); indices.len()]
        } else {
            let mut rng = chacha(
                self.config.seed,
                &[AUGMENT_STREAM, self.config.epoch as u64, index as u64],
            );
            indices.iter().map(|_| aug.sample(&mut rng)).collect()
        };
        let px = d.image_len();
        let shape = d.image_shape();
        let mut images = vec![0f32; indices.len() * px];
        let table = &self.table;
        let fill = |(out, (&i, &p)): (&mut [f32], (&usize, &AugmentParams))| {
            augment_map(
                aug.crop_pad,
                p,
                d.image(i),
                shape,
                |v, c| table[c][usize::from(v)],
                out,
            );
        };
        if images.len() >= PARALLEL_MIN_FLOATS {
            images
                .par_chunks_mut(px)
                .zip(indices.par_iter().zip(params.par_iter()))
                .for_each(fill);
        } else {
            images
                .chunks_mut(px)
                .zip(indices.iter().zip(params.iter()))
                .for_each(fill);
        }
        Some(Batch {
            images,
            labels: indices.iter().map(|&i| u32::from(d.labels[i])).collect(),
            size: indices.len(),
            height: d.height,
            width: d.width,
            channels: d.channels,
            indices,
        })
    }
}

impl Iterator for Batches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let b = self.batch(self.next)?;
        self.next += 1;
        Some(b)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.count.saturating_sub(self.next);
        (left, Some(left))
    }

    /// Skips without building the skipped batches.
    fn nth(&mut self, n: usize) -> Option<Batch> {
        self.next = self.next.saturating_add(n).min(self.count);
        self.next()
    }
}

impl ExactSizeIterator for Batches<'_> {}

impl Dataset {
    /// The batches of one epoch, normalised with `norm`.
    ///
    /// Order and augmentation depend only on `config.seed`, `config.epoch`
    /// and the batch index. Errors if `batch_size` is 0, `norm` does not
    /// have one valid mean/std per channel, or the crop padding exceeds the
    /// image side.
    pub fn batches(
        &self,
        batch_size: usize,
        config: &BatchConfig,
        norm: &Normalization,
    ) -> Result<Batches<'_>, DataError> {
        Batches::new(self, batch_size, config, norm)
    }

    /// Evaluation batches: file order, no augmentation, every image once
    /// (`BatchConfig::eval()`).
    pub fn eval_batches(
        &self,
        batch_size: usize,
        norm: &Normalization,
    ) -> Result<Batches<'_>, DataError> {
        Batches::new(self, batch_size, &BatchConfig::eval(), norm)
    }

    /// Image `i` normalised with `norm`, no augmentation (for inference and
    /// INT8 calibration). Panics if `i >= len()` or channels mismatch.
    pub fn normalized_image(&self, i: usize, norm: &Normalization) -> Vec<f32> {
        norm.normalize_image(self.image(i))
    }
}

//! In-memory datasets of small u8 images.
//!
//! Images stay as raw `u8` (what the files hold, 4x smaller than f32) and are
//! only converted to normalised `f32` batch by batch, so a full CIFAR training
//! set costs 150 MB, not 600 MB.

use crate::error::DataError;

/// A labelled set of equally sized images.
///
/// `images` holds `len() * height * width * channels` bytes, one image after
/// the other, each channels-last (HWC): pixel `(y, x)` channel `c` of image
/// `i` is at `i*H*W*C + (y*W + x)*C + c`. Channels-last is what the trainer's
/// NHWC tensors and the INT8 chip datapath expect, so no transpose is needed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    /// Human-readable name, e.g. `"fashion-mnist/train"`.
    pub name: String,
    /// Pixel bytes, N*H*W*C, channels-last per image.
    pub images: Vec<u8>,
    /// One label per image, each `< classes`.
    pub labels: Vec<u8>,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// Channels per pixel (1 for Fashion-MNIST, 3 for CIFAR).
    pub channels: usize,
    /// Number of classes; labels are `0..classes`.
    pub classes: usize,
}

/// A training set and the test set that goes with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// Data to train on (and to compute normalisation statistics from).
    pub train: Dataset,
    /// Held-out data for evaluation.
    pub test: Dataset,
}

impl Dataset {
    /// Builds a dataset and checks it is consistent (see [`Dataset::validate`]).
    pub fn new(
        name: impl Into<String>,
        images: Vec<u8>,
        labels: Vec<u8>,
        height: usize,
        width: usize,
        channels: usize,
        classes: usize,
    ) -> Result<Self, DataError> {
        let d = Dataset {
            name: name.into(),
            images,
            labels,
            height,
            width,
            channels,
            classes,
        };
        d.validate()?;
        Ok(d)
    }

    /// Checks that sizes agree and every label is below `classes`.
    ///
    /// Loaders call this, so code holding a `Dataset` from this crate can
    /// index without further checks; call it yourself after editing fields.
    pub fn validate(&self) -> Result<(), DataError> {
        let px = self.image_len();
        if px == 0 {
            return Err(DataError::Invalid(format!(
                "dataset {}: image size {}x{}x{} has no pixels",
                self.name, self.height, self.width, self.channels
            )));
        }
        if self.classes == 0 || self.classes > 256 {
            return Err(DataError::Invalid(format!(
                "dataset {}: {} classes, expected 1..=256 (labels are bytes)",
                self.name, self.classes
            )));
        }
        if Some(self.images.len()) != self.labels.len().checked_mul(px) {
            return Err(DataError::Invalid(format!(
                "dataset {}: {} image bytes for {} labels of {}x{}x{} images (expected {})",
                self.name,
                self.images.len(),
                self.labels.len(),
                self.height,
                self.width,
                self.channels,
                self.labels.len().saturating_mul(px)
            )));
        }
        if let Some((i, &l)) = self
            .labels
            .iter()
            .enumerate()
            .find(|(_, &l)| usize::from(l) >= self.classes)
        {
            return Err(DataError::Invalid(format!(
                "dataset {}: label {} at sample {} is out of range (expected 0..{})",
                self.name, l, i, self.classes
            )));
        }
        Ok(())
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image, `height * width * channels`.
    pub fn image_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// `[height, width, channels]` of every image.
    pub fn image_shape(&self) -> [usize; 3] {
        [self.height, self.width, self.channels]
    }

    /// The HWC bytes of image `i`. Panics if `i >= len()`, like slice indexing.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// The label of image `i`. Panics if `i >= len()`.
    pub fn label(&self, i: usize) -> u8 {
        self.labels[i]
    }

    /// How many images each class has (index = label).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(usize::from(l)) {
                *c += 1;
            }
        }
        counts
    }

    /// A new dataset with the given images, in the given order (repeats allowed).
    /// Panics if an index is out of range.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let n = self.image_len();
        let mut images = Vec::with_capacity(indices.len() * n);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            images.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
        }
        Dataset {
            name: self.name.clone(),
            images,
            labels,
            height: self.height,
            width: self.width,
            channels: self.channels,
            classes: self.classes,
        }
    }

    /// The first `n` images (all of them if `n >= len()`), in file order.
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        let indices: Vec<usize> = (0..n).collect();
        self.select(&indices)
    }

    /// A class-balanced, deterministic subset of `n` images for quick runs
    /// (the images of [`Dataset::balanced_indices`]). With `n >= len()` this
    /// is a clone. The embedded Fashion-MNIST subset was cut from the full
    /// files with exactly this function.
    pub fn subset(&self, n: usize) -> Dataset {
        if n >= self.len() {
            return self.clone();
        }
        self.select(&self.balanced_indices(n))
    }

    /// Indices of a class-balanced, deterministic choice of `n` images.
    ///
    /// Classes are visited round-robin, taking each class's next image in
    /// file order, so every class gets `n / classes` images (the first
    /// `n % classes` classes one more); a class that runs out is skipped and
    /// the others fill in. The indices are returned in increasing order.
    pub fn balanced_indices(&self, n: usize) -> Vec<usize> {
        let n = n.min(self.len());
        let mut per_class: Vec<Vec<usize>> = vec![Vec::new(); self.classes];
        for (i, &l) in self.labels.iter().enumerate() {
            per_class[usize::from(l)].push(i);
        }
        let mut chosen = Vec::with_capacity(n);
        let mut round = 0;
        while chosen.len() < n {
            for class in &per_class {
                if chosen.len() == n {
                    break;
                }
                if let Some(&i) = class.get(round) {
                    chosen.push(i);
                }
            }
            round += 1;
        }
        chosen.sort_unstable();
        chosen
    }
}

impl Split {
    /// Class-balanced subsets of both halves (see [`Dataset::subset`]).
    pub fn subset(&self, train: usize, test: usize) -> Split {
        Split {
            train: self.train.subset(train),
            test: self.test.subset(test),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(labels: Vec<u8>, classes: usize) -> Dataset {
        let images = labels.iter().flat_map(|&l| [l, l, l, l]).collect();
        Dataset::new("toy", images, labels, 2, 2, 1, classes).unwrap()
    }

    #[test]
    fn subset_is_balanced_and_ordered() {
        let labels: Vec<u8> = (0..100).map(|i| (i * 7 % 3) as u8).collect();
        let d = toy(labels, 3);
        let s = d.subset(30);
        assert_eq!(s.len(), 30);
        assert_eq!(s.class_counts(), vec![10, 10, 10]);
        // Images travel with their labels.
        for i in 0..s.len() {
            assert_eq!(s.image(i), &[s.label(i); 4]);
        }
        let s = d.subset(31);
        assert_eq!(s.class_counts(), vec![11, 10, 10]);
    }

    #[test]
    fn subset_fills_from_other_classes_when_one_runs_out() {
        let mut labels = vec![0u8; 20];
        labels.extend([1, 1]);
        let d = toy(labels, 2);
        let s = d.subset(10);
        assert_eq!(s.class_counts(), vec![8, 2]);
        assert_eq!(d.subset(100), d);
    }

    #[test]
    fn take_and_select() {
        let d = toy(vec![0, 1, 2, 1, 0], 3);
        assert_eq!(d.take(2).labels, vec![0, 1]);
        assert_eq!(d.take(99).len(), 5);
        assert_eq!(d.select(&[4, 2, 2]).labels, vec![0, 2, 2]);
        assert_eq!(d.select(&[2]).image(0), &[2, 2, 2, 2]);
    }

    #[test]
    fn validate_rejects_inconsistent() {
        assert!(Dataset::new("x", vec![0; 5], vec![0], 2, 2, 1, 1).is_err());
        assert!(Dataset::new("x", vec![0; 4], vec![3], 2, 2, 1, 3).is_err());
        assert!(Dataset::new("x", vec![], vec![], 0, 2, 1, 3).is_err());
        assert!(Dataset::new("x", vec![], vec![], 2, 2, 1, 3)
            .unwrap()
            .is_empty());
    }
}

//! Fashion-MNIST from a directory of IDX files.
//!
//! Debian's `dataset-fashion-mnist` installs the four original files,
//! gzipped, in [`DEFAULT_FASHION_MNIST_DIR`]; decompressed copies are
//! accepted too, because people often `gunzip` them by hand.

use std::path::Path;

use crate::dataset::{Dataset, Split};
use crate::error::DataError;
use crate::idx::{find_maybe_gz, load_idx_pair};

/// Where Debian's `dataset-fashion-mnist` package puts the files.
pub const DEFAULT_FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Fashion-MNIST image side length.
pub const FASHION_MNIST_SIDE: usize = 28;

/// Number of Fashion-MNIST classes.
pub const FASHION_MNIST_CLASSES: usize = 10;

/// Class names by label, as published with the dataset.
pub const FASHION_MNIST_CLASS_NAMES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// File stems (without `.gz`) of the training images, training labels, test
/// images and test labels.
pub const FASHION_MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Loads one half (`train`: 60 000 images, or `t10k`: 10 000) from `dir`.
fn load_half(dir: &Path, images: &str, labels: &str, name: &str) -> Result<Dataset, DataError> {
    let images_path = find_maybe_gz(dir, images, "Fashion-MNIST IDX image file")?;
    let labels_path = find_maybe_gz(dir, labels, "Fashion-MNIST IDX label file")?;
    let d = load_idx_pair(name, &images_path, &labels_path, FASHION_MNIST_CLASSES)?;
    if (d.height, d.width) != (FASHION_MNIST_SIDE, FASHION_MNIST_SIDE) {
        return Err(DataError::BadDims {
            path: images_path,
            expected: format!(
                "[N, {FASHION_MNIST_SIDE}, {FASHION_MNIST_SIDE}] (Fashion-MNIST images)"
            ),
            found: format!("[{}, {}, {}]", d.len(), d.height, d.width),
        });
    }
    Ok(d)
}

/// Loads Fashion-MNIST (28x28x1, 10 classes) from `dir`, which must hold the
/// four files of [`FASHION_MNIST_FILES`], each with or without `.gz`.
pub fn load_fashion_mnist(dir: &Path) -> Result<Split, DataError> {
    let [tri, trl, tei, tel] = FASHION_MNIST_FILES;
    Ok(Split {
        train: load_half(dir, tri, trl, "fashion-mnist/train")?,
        test: load_half(dir, tei, tel, "fashion-mnist/test")?,
    })
}

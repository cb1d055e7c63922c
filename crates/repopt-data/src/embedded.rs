//! A small real Fashion-MNIST subset compiled into the crate.
//!
//! 5 000 training images (500 per class) and 1 000 test images (100 per
//! class), so tests, demos and CI can train a real network with no download
//! and no system package. The files in `data/fashion-mnist-subset/` are the
//! original IDX format, gzipped at level 9, named like the Debian files, and
//! cut from them by `examples/make_embedded_subset.rs` with
//! [`Dataset::subset`](crate::Dataset::subset) (the first 500 / 100 images of
//! each class in file order). Regenerate with
//! `cargo run -p repopt-data --example make_embedded_subset`.

use std::path::Path;

use crate::dataset::Split;
use crate::error::DataError;
use crate::fashion::FASHION_MNIST_CLASSES;
use crate::idx::{dataset_from_idx_bytes, maybe_gunzip};

/// Training images per class in the embedded subset.
pub const EMBEDDED_TRAIN_PER_CLASS: usize = 500;
/// Test images per class in the embedded subset.
pub const EMBEDDED_TEST_PER_CLASS: usize = 100;

const TRAIN_IMAGES: &[u8] =
    include_bytes!("../data/fashion-mnist-subset/train-images-idx3-ubyte.gz");
const TRAIN_LABELS: &[u8] =
    include_bytes!("../data/fashion-mnist-subset/train-labels-idx1-ubyte.gz");
const TEST_IMAGES: &[u8] = include_bytes!("../data/fashion-mnist-subset/t10k-images-idx3-ubyte.gz");
const TEST_LABELS: &[u8] = include_bytes!("../data/fashion-mnist-subset/t10k-labels-idx1-ubyte.gz");

fn decode(
    name: &str,
    images: &[u8],
    images_name: &str,
    labels: &[u8],
    labels_name: &str,
) -> Result<crate::Dataset, DataError> {
    let ip = Path::new("<embedded>").join(images_name);
    let lp = Path::new("<embedded>").join(labels_name);
    let images = maybe_gunzip(images.to_vec(), &ip)?;
    let labels = maybe_gunzip(labels.to_vec(), &lp)?;
    dataset_from_idx_bytes(name, &images, &ip, &labels, &lp, FASHION_MNIST_CLASSES)
}

/// The embedded Fashion-MNIST subset: 28x28x1, 10 classes, 5 000 train /
/// 1 000 test images, class-balanced.
///
/// Decompresses ~2.5 MB on every call (a few tens of milliseconds); keep the
/// result rather than calling it repeatedly. The data is checked by this
/// crate's tests, so the error case does not happen in practice.
pub fn embedded_fashion_mnist() -> Result<Split, DataError> {
    Ok(Split {
        train: decode(
            "fashion-mnist-embedded/train",
            TRAIN_IMAGES,
            "train-images-idx3-ubyte.gz",
            TRAIN_LABELS,
            "train-labels-idx1-ubyte.gz",
        )?,
        test: decode(
            "fashion-mnist-embedded/test",
            TEST_IMAGES,
            "t10k-images-idx3-ubyte.gz",
            TEST_LABELS,
            "t10k-labels-idx1-ubyte.gz",
        )?,
    })
}

//! Image datasets for training plain 3x3 CNNs (RepOpt-VGG).
//!
//! Loads Fashion-MNIST (IDX), CIFAR-10 and CIFAR-100 (binary) into
//! [`Dataset`]s of raw u8 channels-last images, ships a small real
//! Fashion-MNIST subset inside the crate ([`embedded_fashion_mnist`]) so tests
//! and demos need no downloads, and turns datasets into normalised f32
//! [`Batch`]es whose order and augmentation depend only on
//! `(seed, epoch, batch index)` — so resumed training is bit-identical.
//!
//! ```
//! use repopt_data::{Augment, BatchConfig, DataSource, Normalization};
//!
//! let split = "embedded".parse::<DataSource>()?.load()?;
//! let norm = Normalization::from_dataset(&split.train);
//! let config = BatchConfig::train(42, 0, Augment::standard(2));
//! for batch in split.train.batches(128, &config, &norm)? {
//!     assert_eq!(batch.shape(), [128, 28, 28, 1]);
//! }
//! # Ok::<(), repopt_data::DataError>(())
//! ```

mod augment;
mod batch;
mod cifar;
mod dataset;
mod embedded;
mod error;
mod fashion;
pub mod idx;
mod normalize;
mod rng;
mod source;

pub use augment::{Augment, AugmentParams};
pub use batch::{epoch_order, num_batches, Batch, BatchConfig, Batches};
pub use cifar::{
    load_cifar10, load_cifar100, load_cifar_files, parse_cifar_records, CifarFormat,
    CIFAR100_TEST_FILE, CIFAR100_TRAIN_FILE, CIFAR10_CLASS_NAMES, CIFAR10_TEST_FILE,
    CIFAR10_TRAIN_FILES, CIFAR_IMAGE_BYTES, CIFAR_SIDE,
};
pub use dataset::{Dataset, Split};
pub use embedded::{embedded_fashion_mnist, EMBEDDED_TEST_PER_CLASS, EMBEDDED_TRAIN_PER_CLASS};
pub use error::DataError;
pub use fashion::{
    load_fashion_mnist, DEFAULT_FASHION_MNIST_DIR, FASHION_MNIST_CLASSES,
    FASHION_MNIST_CLASS_NAMES, FASHION_MNIST_FILES, FASHION_MNIST_SIDE,
};
pub use normalize::Normalization;
pub use source::DataSource;

//! The one error type of this crate.
//!
//! Every variant that comes from a file names that file, so a user who points
//! the trainer at the wrong directory learns *which* file is wrong and *what*
//! was expected, instead of getting a panic or a bare `UnexpectedEof`.

use std::path::PathBuf;

/// Everything that can go wrong while loading or batching a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A required file does not exist.
    #[error("{path}: file not found (expected {expected})")]
    Missing {
        /// The path that was looked for (for gzip-or-not lookups, the `.gz` name).
        path: PathBuf,
        /// What the file should contain, and alternative names that were tried.
        expected: String,
    },

    /// The file exists but could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The file starts like gzip but does not decompress (corrupt or cut short).
    #[error("{path}: invalid or truncated gzip stream: {source}")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decompressor's error.
        #[source]
        source: std::io::Error,
    },

    /// The file (after decompression) is shorter than its header or format requires.
    #[error("{path}: truncated: expected {expected} bytes ({what}), found {found}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was being read.
        what: String,
        /// Bytes required.
        expected: usize,
        /// Bytes present.
        found: usize,
    },

    /// The file is longer than its header or format allows.
    #[error("{path}: {found} bytes but expected exactly {expected} ({what}); trailing data")]
    TrailingData {
        /// The file.
        path: PathBuf,
        /// What was being read.
        what: String,
        /// Bytes allowed.
        expected: usize,
        /// Bytes present.
        found: usize,
    },

    /// The IDX magic number is not the expected one (wrong file, or not IDX at all).
    #[error("{path}: wrong IDX magic 0x{found:08x}, expected 0x{expected:08x} ({what})")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// What the file should be, e.g. "unsigned-byte 3-D image array".
        what: String,
        /// Magic expected.
        expected: u32,
        /// Magic found.
        found: u32,
    },

    /// The dimensions in the header are not the expected ones.
    #[error("{path}: wrong dimensions {found}, expected {expected}")]
    BadDims {
        /// The file.
        path: PathBuf,
        /// Expected shape, in words.
        expected: String,
        /// Shape found.
        found: String,
    },

    /// An image file and its label file disagree on the number of samples.
    #[error(
        "{labels_path} has {labels} labels but {images_path} has {images} images; \
         the counts must match"
    )]
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// Number of images.
        images: usize,
        /// The label file.
        labels_path: PathBuf,
        /// Number of labels.
        labels: usize,
    },

    /// A label is not below the number of classes.
    #[error("{path}: label {label} at sample {index} is out of range (expected 0..{classes})")]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// Sample index.
        index: usize,
        /// The label found.
        label: u8,
        /// Number of classes.
        classes: usize,
    },

    /// A data-source string could not be parsed.
    #[error(
        "invalid data source {input:?}: {reason}; accepted forms: embedded, \
         fashion-mnist[:DIR] (default DIR {default_dir}), cifar10:DIR, cifar100:DIR",
        default_dir = crate::DEFAULT_FASHION_MNIST_DIR
    )]
    BadSource {
        /// The string given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An in-memory dataset or a batching request is inconsistent
    /// (e.g. batch size 0, normalisation with the wrong channel count).
    #[error("{0}")]
    Invalid(String),
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            DataError::Missing {
                path,
                expected: "a readable file".into(),
            }
        } else {
            DataError::Io { path, source }
        }
    }
}

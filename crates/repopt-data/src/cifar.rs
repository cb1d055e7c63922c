//! CIFAR-10 and CIFAR-100 in their "binary version" formats.
//!
//! Each record is the label byte(s) followed by 3072 bytes: the 32x32 red
//! plane, then green, then blue (CHW). We convert to channels-last (HWC) at
//! load time so every dataset in this crate has the same layout.
//!
//! * CIFAR-10: `data_batch_1.bin` .. `data_batch_5.bin` and `test_batch.bin`,
//!   records of 1 label byte + 3072 (10 000 records per file).
//! * CIFAR-100: `train.bin` and `test.bin`, records of coarse label byte +
//!   fine label byte + 3072; we use the fine labels (100 classes).
//!
//! Either the directory holding the files or its parent (containing the
//! archive's `cifar-10-batches-bin/` or `cifar-100-binary/`) is accepted.

use std::path::{Path, PathBuf};

use crate::dataset::{Dataset, Split};
use crate::error::DataError;
use crate::idx::check_labels;

/// CIFAR image side length.
pub const CIFAR_SIDE: usize = 32;
/// Bytes of pixel data per CIFAR record.
pub const CIFAR_IMAGE_BYTES: usize = 3 * CIFAR_SIDE * CIFAR_SIDE;

/// CIFAR-10 class names by label.
pub const CIFAR10_CLASS_NAMES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// CIFAR-10 training files, in order.
pub const CIFAR10_TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// CIFAR-10 test file.
pub const CIFAR10_TEST_FILE: &str = "test_batch.bin";
/// CIFAR-100 training file.
pub const CIFAR100_TRAIN_FILE: &str = "train.bin";
/// CIFAR-100 test file.
pub const CIFAR100_TEST_FILE: &str = "test.bin";

/// Layout of one CIFAR record flavour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CifarFormat {
    /// Label bytes before the pixels (1 for CIFAR-10, 2 for CIFAR-100).
    pub label_bytes: usize,
    /// Which of those bytes is the label we keep (0 for CIFAR-10; 1, the
    /// fine label, for CIFAR-100).
    pub label_index: usize,
    /// Number of classes of the kept label.
    pub classes: usize,
}

impl CifarFormat {
    /// CIFAR-10: 1 label byte, 10 classes.
    pub const CIFAR10: CifarFormat = CifarFormat {
        label_bytes: 1,
        label_index: 0,
        classes: 10,
    };
    /// CIFAR-100: coarse + fine label bytes, fine labels kept, 100 classes.
    pub const CIFAR100: CifarFormat = CifarFormat {
        label_bytes: 2,
        label_index: 1,
        classes: 100,
    };

    /// Bytes per record.
    pub fn record_len(&self) -> usize {
        self.label_bytes + CIFAR_IMAGE_BYTES
    }
}

/// Parses CIFAR records from `bytes`, appending HWC images and labels.
///
/// `path` is only used in error messages. A file that is empty or not a
/// whole number of records is reported as truncated.
pub fn parse_cifar_records(
    bytes: &[u8],
    format: CifarFormat,
    path: &Path,
    images: &mut Vec<u8>,
    labels: &mut Vec<u8>,
) -> Result<(), DataError> {
    let rec = format.record_len();
    if bytes.is_empty() || bytes.len() % rec != 0 {
        let whole = bytes.len() / rec;
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: format!(
                "a whole number (at least 1) of {rec}-byte CIFAR records; last record is partial"
            ),
            expected: (whole + 1) * rec,
            found: bytes.len(),
        });
    }
    let first = labels.len();
    let plane = CIFAR_SIDE * CIFAR_SIDE;
    images.reserve(bytes.len() / rec * CIFAR_IMAGE_BYTES);
    for r in bytes.chunks_exact(rec) {
        labels.push(r[format.label_index]);
        let px = &r[format.label_bytes..];
        images.extend((0..plane).flat_map(|p| [px[p], px[plane + p], px[2 * plane + p]]));
    }
    check_labels(&labels[first..], format.classes, path)
}

/// Reads and parses the given CIFAR files into one dataset.
pub fn load_cifar_files(
    name: &str,
    paths: &[PathBuf],
    format: CifarFormat,
) -> Result<Dataset, DataError> {
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for path in paths {
        let bytes = std::fs::read(path).map_err(|e| match DataError::io(path, e) {
            DataError::Missing { path, .. } => DataError::Missing {
                path,
                expected: format!("CIFAR binary file of {}-byte records", format.record_len()),
            },
            other => other,
        })?;
        parse_cifar_records(&bytes, format, path, &mut images, &mut labels)?;
    }
    Ok(Dataset {
        name: name.to_string(),
        images,
        labels,
        height: CIFAR_SIDE,
        width: CIFAR_SIDE,
        channels: 3,
        classes: format.classes,
    })
}

/// `dir` itself if it holds `probe`, else `dir/sub` if that does, else `dir`
/// (so the "missing" error names the directory the user gave).
fn resolve_dir(dir: &Path, sub: &str, probe: &str) -> PathBuf {
    if !dir.join(probe).is_file() && dir.join(sub).join(probe).is_file() {
        dir.join(sub)
    } else {
        dir.to_path_buf()
    }
}

/// Loads CIFAR-10 (32x32x3, 10 classes; 50 000 train, 10 000 test).
pub fn load_cifar10(dir: &Path) -> Result<Split, DataError> {
    let dir = resolve_dir(dir, "cifar-10-batches-bin", CIFAR10_TEST_FILE);
    let train: Vec<PathBuf> = CIFAR10_TRAIN_FILES.iter().map(|f| dir.join(f)).collect();
    Ok(Split {
        train: load_cifar_files("cifar10/train", &train, CifarFormat::CIFAR10)?,
        test: load_cifar_files(
            "cifar10/test",
            &[dir.join(CIFAR10_TEST_FILE)],
            CifarFormat::CIFAR10,
        )?,
    })
}

/// Loads CIFAR-100 with fine labels (32x32x3, 100 classes; 50 000 train,
/// 10 000 test).
pub fn load_cifar100(dir: &Path) -> Result<Split, DataError> {
    let dir = resolve_dir(dir, "cifar-100-binary", CIFAR100_TEST_FILE);
    Ok(Split {
        train: load_cifar_files(
            "cifar100/train",
            &[dir.join(CIFAR100_TRAIN_FILE)],
            CifarFormat::CIFAR100,
        )?,
        test: load_cifar_files(
            "cifar100/test",
            &[dir.join(CIFAR100_TEST_FILE)],
            CifarFormat::CIFAR100,
        )?,
    })
}

//! IDX / Fashion-MNIST loading from synthetic files, and every bad-input case.

mod common;

use std::path::Path;

use common::{fashion_dir, images, write};
use proptest::prelude::*;
use repopt_data::idx::{dataset_from_idx_bytes, encode_idx, gzip, maybe_gunzip, read_idx};
use repopt_data::{load_fashion_mnist, parse_cifar_records, CifarFormat, DataError};

#[test]
fn idx_round_trip_plain_and_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..2 * 3 * 5).map(|i| (i * 3) as u8).collect();
    let enc = encode_idx(&[2, 3, 5], &data);
    write(dir.path(), "a", &enc);
    write(dir.path(), "a.gz", &enc);
    for name in ["a", "a.gz"] {
        let arr = read_idx(&dir.path().join(name), 3, "image array").unwrap();
        assert_eq!(arr.dims, vec![2, 3, 5]);
        assert_eq!(arr.data, data);
    }
}

#[test]
fn fashion_dir_loads_gz_and_plain() {
    let dir = tempfile::tempdir().unwrap();
    fashion_dir(dir.path(), 30, 20);
    let split = load_fashion_mnist(dir.path()).unwrap();
    assert_eq!(split.train.len(), 30);
    assert_eq!(split.test.len(), 20);
    assert_eq!(split.train.image_shape(), [28, 28, 1]);
    assert_eq!(split.train.classes, 10);
    assert_eq!(split.train.image(3), &images(30)[3 * 784..4 * 784]);
    assert_eq!(split.test.labels[13], 3);
}

/// Builds a good directory, lets `spoil` break it, and returns the error.
fn broken(spoil: impl FnOnce(&Path)) -> DataError {
    let dir = tempfile::tempdir().unwrap();
    fashion_dir(dir.path(), 10, 10);
    spoil(dir.path());
    load_fashion_mnist(dir.path()).unwrap_err()
}

fn assert_names(err: &DataError, file: &str) {
    let msg = err.to_string();
    assert!(msg.contains(file), "message {msg:?} should name {file}");
}

#[test]
fn missing_file() {
    let err = broken(|d| std::fs::remove_file(d.join("t10k-labels-idx1-ubyte")).unwrap());
    assert!(matches!(err, DataError::Missing { .. }), "{err}");
    assert_names(&err, "t10k-labels-idx1-ubyte");
    let err = load_fashion_mnist(Path::new("/nonexistent/fmnist")).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }), "{err}");
    assert_names(&err, "/nonexistent/fmnist/train-images-idx3-ubyte");
}

#[test]
fn truncated_data() {
    let err = broken(|d| {
        let enc = encode_idx(&[10, 28, 28], &images(10));
        write(d, "train-images-idx3-ubyte.gz", &enc[..enc.len() - 1]);
    });
    assert!(matches!(err, DataError::Truncated { .. }), "{err}");
    assert_names(&err, "train-images-idx3-ubyte.gz");
}

#[test]
fn truncated_header_and_empty_file() {
    let err = broken(|d| write(d, "t10k-labels-idx1-ubyte", &[0, 0, 8, 1, 0]));
    assert!(matches!(err, DataError::Truncated { .. }), "{err}");
    assert_names(&err, "t10k-labels-idx1-ubyte");
    let err = broken(|d| write(d, "t10k-labels-idx1-ubyte", &[]));
    assert!(matches!(err, DataError::Truncated { .. }), "{err}");
}

#[test]
fn truncated_gzip_stream() {
    let err = broken(|d| {
        let gz = gzip(&encode_idx(&[10, 28, 28], &images(10)), 6);
        std::fs::write(d.join("train-images-idx3-ubyte.gz"), &gz[..gz.len() / 2]).unwrap();
    });
    assert!(matches!(err, DataError::Gzip { .. }), "{err}");
    assert_names(&err, "train-images-idx3-ubyte.gz");
}

#[test]
fn trailing_data() {
    let err = broken(|d| {
        let mut enc = encode_idx(&[10], &[0; 10]);
        enc.push(0);
        write(d, "t10k-labels-idx1-ubyte", &enc);
    });
    assert!(matches!(err, DataError::TrailingData { .. }), "{err}");
    assert_names(&err, "t10k-labels-idx1-ubyte");
}

#[test]
fn wrong_magic() {
    // Images and labels swapped: a 1-D file where a 3-D one belongs.
    let err = broken(|d| {
        write(
            d,
            "train-images-idx3-ubyte.gz",
            &encode_idx(&[10], &[0; 10]),
        )
    });
    match &err {
        DataError::BadMagic {
            expected, found, ..
        } => assert_eq!((*expected, *found), (0x803, 0x801)),
        other => panic!("expected BadMagic, got {other}"),
    }
    assert_names(&err, "train-images-idx3-ubyte.gz");
    // Not IDX at all.
    let err = broken(|d| write(d, "t10k-images-idx3-ubyte", b"hello world, not idx"));
    assert!(matches!(err, DataError::BadMagic { .. }), "{err}");
    assert!(err.to_string().contains("0x68656c6c"), "{err}");
}

#[test]
fn wrong_dims() {
    let err = broken(|d| {
        write(
            d,
            "t10k-images-idx3-ubyte",
            &encode_idx(&[10, 32, 32], &vec![0; 10 * 1024]),
        )
    });
    assert!(matches!(err, DataError::BadDims { .. }), "{err}");
    assert_names(&err, "t10k-images-idx3-ubyte");
    assert!(err.to_string().contains("28, 28"), "{err}");
    let err = broken(|d| write(d, "t10k-images-idx3-ubyte", &encode_idx(&[10, 0, 28], &[])));
    assert!(matches!(err, DataError::BadDims { .. }), "{err}");
}

#[test]
fn label_count_mismatch() {
    let err = broken(|d| write(d, "train-labels-idx1-ubyte.gz", &encode_idx(&[9], &[0; 9])));
    match &err {
        DataError::CountMismatch { images, labels, .. } => assert_eq!((*images, *labels), (10, 9)),
        other => panic!("expected CountMismatch, got {other}"),
    }
    assert_names(&err, "train-labels-idx1-ubyte.gz");
    assert_names(&err, "train-images-idx3-ubyte.gz");
}

#[test]
fn label_out_of_range() {
    let err = broken(|d| {
        let mut labels = vec![0u8; 10];
        labels[7] = 10;
        write(d, "t10k-labels-idx1-ubyte", &encode_idx(&[10], &labels));
    });
    match &err {
        DataError::LabelOutOfRange {
            index,
            label,
            classes,
            ..
        } => assert_eq!((*index, *label, *classes), (7, 10, 10)),
        other => panic!("expected LabelOutOfRange, got {other}"),
    }
    assert_names(&err, "t10k-labels-idx1-ubyte");
}

proptest! {
    /// Arbitrary bytes (raw, or behind a valid-looking IDX header, or
    /// gzip-magic-prefixed) give an error or a dataset, never a panic.
    #[test]
    fn garbage_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        dims in proptest::collection::vec(0u32..40, 3),
        n in 0u32..5,
    ) {
        let p = Path::new("fuzz");
        let mut img = vec![0, 0, 8, 3];
        for d in &dims {
            img.extend_from_slice(&d.to_be_bytes());
        }
        img.extend_from_slice(&bytes);
        let mut lab = vec![0, 0, 8, 1];
        lab.extend_from_slice(&n.to_be_bytes());
        lab.extend_from_slice(&bytes[..bytes.len().min(n as usize)]);
        let _ = dataset_from_idx_bytes("f", &img, p, &lab, p, 10);
        let _ = dataset_from_idx_bytes("f", &bytes, p, &bytes, p, 10);
        let mut gz = vec![0x1f, 0x8b];
        gz.extend_from_slice(&bytes);
        let _ = maybe_gunzip(gz, p);
        let (mut i, mut l) = (Vec::new(), Vec::new());
        let _ = parse_cifar_records(&bytes, CifarFormat::CIFAR100, p, &mut i, &mut l);
    }
}

//! CIFAR-10 / CIFAR-100 binary parsing on synthetic files.

mod common;

use std::path::Path;

use common::cifar_record;
use repopt_data::{load_cifar10, load_cifar100, DataError, DataSource};

/// Writes a CIFAR-10 directory where file f record r has label (f + r) % 10
/// and pixel seed 10*f + r.
fn cifar10_dir(dir: &Path, per_file: usize) {
    let names = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    for (f, name) in names.iter().enumerate() {
        let bytes: Vec<u8> = (0..per_file)
            .flat_map(|r| cifar_record(&[((f + r) % 10) as u8], 10 * f + r))
            .collect();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn check_hwc(image: &[u8], seed: usize) {
    assert_eq!(image.len(), 3072);
    for y in 0..32 {
        for x in 0..32 {
            let p = y * 32 + x;
            for c in 0..3 {
                assert_eq!(image[p * 3 + c], ((p + 50 * c + seed) % 256) as u8);
            }
        }
    }
}

#[test]
fn cifar10_chw_to_hwc_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    cifar10_dir(dir.path(), 3);
    let split = load_cifar10(dir.path()).unwrap();
    assert_eq!(split.train.len(), 15);
    assert_eq!(split.test.len(), 3);
    assert_eq!(split.train.image_shape(), [32, 32, 3]);
    assert_eq!(split.train.classes, 10);
    // Train image 7 = file 2 (index 2), record 1.
    assert_eq!(split.train.label(7), 3);
    check_hwc(split.train.image(7), 21);
    assert_eq!(split.test.labels, vec![5, 6, 7]);
    check_hwc(split.test.image(2), 52);
}

#[test]
fn cifar10_found_in_archive_subdirectory() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&sub).unwrap();
    cifar10_dir(&sub, 1);
    let src: DataSource = format!("cifar10:{}", dir.path().display()).parse().unwrap();
    assert_eq!(src.load().unwrap().train.len(), 5);
}

#[test]
fn cifar100_uses_fine_labels() {
    let dir = tempfile::tempdir().unwrap();
    let train: Vec<u8> = (0..4)
        .flat_map(|r| cifar_record(&[19, (r * 30) as u8], r))
        .collect();
    std::fs::write(dir.path().join("train.bin"), train).unwrap();
    std::fs::write(dir.path().join("test.bin"), cifar_record(&[3, 99], 9)).unwrap();
    let split = load_cifar100(dir.path()).unwrap();
    assert_eq!(split.train.classes, 100);
    assert_eq!(split.train.labels, vec![0, 30, 60, 90]);
    assert_eq!(split.test.labels, vec![99]);
    check_hwc(split.train.image(2), 2);
    check_hwc(split.test.image(0), 9);
}

#[test]
fn cifar_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    cifar10_dir(dir.path(), 1);
    std::fs::remove_file(dir.path().join("data_batch_4.bin")).unwrap();
    let err = load_cifar10(dir.path()).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("data_batch_4.bin"), "{err}");
}

#[test]
fn cifar_truncated_record() {
    let dir = tempfile::tempdir().unwrap();
    cifar10_dir(dir.path(), 2);
    let path = dir.path().join("test_batch.bin");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let err = load_cifar10(dir.path()).unwrap_err();
    match &err {
        DataError::Truncated {
            expected, found, ..
        } => assert_eq!((*expected, *found), (2 * 3073, 2 * 3073 - 100)),
        other => panic!("expected Truncated, got {other}"),
    }
    assert!(err.to_string().contains("test_batch.bin"), "{err}");
    // An empty file is also truncated (no records at all).
    std::fs::write(&path, []).unwrap();
    assert!(matches!(
        load_cifar10(dir.path()).unwrap_err(),
        DataError::Truncated { .. }
    ));
}

#[test]
fn cifar_label_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    cifar10_dir(dir.path(), 2);
    std::fs::write(
        dir.path().join("data_batch_2.bin"),
        [cifar_record(&[1], 0), cifar_record(&[10], 0)].concat(),
    )
    .unwrap();
    let err = load_cifar10(dir.path()).unwrap_err();
    match &err {
        DataError::LabelOutOfRange { index, label, .. } => assert_eq!((*index, *label), (1, 10)),
        other => panic!("expected LabelOutOfRange, got {other}"),
    }
    assert!(err.to_string().contains("data_batch_2.bin"), "{err}");
}

#[test]
fn cifar100_file_read_as_cifar10_is_caught() {
    // A CIFAR-100 train.bin has 3074-byte records; as CIFAR-10 that is
    // (almost always) not a whole number of 3073-byte records.
    let dir = tempfile::tempdir().unwrap();
    cifar10_dir(dir.path(), 1);
    std::fs::write(dir.path().join("test_batch.bin"), cifar_record(&[1, 2], 0)).unwrap();
    let err = load_cifar10(dir.path()).unwrap_err();
    assert!(matches!(err, DataError::Truncated { .. }), "{err}");
}

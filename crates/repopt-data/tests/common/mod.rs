//! Helpers shared by the integration tests: synthetic dataset files.
#![allow(dead_code)]

use std::path::Path;

use repopt_data::idx::{encode_idx, gzip};

/// Writes `bytes` to `dir/name`, gzipped first if `name` ends in `.gz`.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let data = if name.ends_with(".gz") {
        gzip(bytes, 6)
    } else {
        bytes.to_vec()
    };
    std::fs::write(dir.join(name), data).unwrap();
}

/// `n` synthetic 28x28 images whose pixel (y, x) of image i is `(i*7 + y*28 + x) % 256`.
pub fn images(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| (0..784).map(move |p| ((i * 7 + p) % 256) as u8))
        .collect()
}

/// Writes a complete synthetic Fashion-MNIST directory (train n_train, test
/// n_test), with gzip for training files and plain for test files.
pub fn fashion_dir(dir: &Path, n_train: usize, n_test: usize) {
    let lab = |n: usize| (0..n).map(|i| (i % 10) as u8).collect::<Vec<_>>();
    write(
        dir,
        "train-images-idx3-ubyte.gz",
        &encode_idx(&[n_train, 28, 28], &images(n_train)),
    );
    write(
        dir,
        "train-labels-idx1-ubyte.gz",
        &encode_idx(&[n_train], &lab(n_train)),
    );
    write(
        dir,
        "t10k-images-idx3-ubyte",
        &encode_idx(&[n_test, 28, 28], &images(n_test)),
    );
    write(
        dir,
        "t10k-labels-idx1-ubyte",
        &encode_idx(&[n_test], &lab(n_test)),
    );
}

/// One CIFAR record: label bytes then CHW planes where channel c of pixel p
/// is `(p + 50*c + seed) % 256`.
pub fn cifar_record(labels: &[u8], seed: usize) -> Vec<u8> {
    let mut r = labels.to_vec();
    for c in 0..3 {
        r.extend((0..1024).map(|p| ((p + 50 * c + seed) % 256) as u8));
    }
    r
}

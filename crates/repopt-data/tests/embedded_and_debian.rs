//! The embedded subset, and (when installed) the Debian Fashion-MNIST files.

use std::path::Path;

use repopt_data::{
    embedded_fashion_mnist, load_fashion_mnist, DataSource, Normalization,
    DEFAULT_FASHION_MNIST_DIR, FASHION_MNIST_CLASSES,
};

#[test]
fn embedded_subset_is_5000_1000_balanced() {
    let split = embedded_fashion_mnist().unwrap();
    assert_eq!(split.train.len(), 5000);
    assert_eq!(split.test.len(), 1000);
    for d in [&split.train, &split.test] {
        assert_eq!(d.image_shape(), [28, 28, 1]);
        assert_eq!(d.classes, FASHION_MNIST_CLASSES);
        d.validate().unwrap();
    }
    assert_eq!(split.train.class_counts(), vec![500; 10]);
    assert_eq!(split.test.class_counts(), vec![100; 10]);
    assert_eq!(DataSource::Embedded.load().unwrap(), split);
}

#[test]
fn embedded_pixel_stats_are_plausible() {
    let split = embedded_fashion_mnist().unwrap();
    let n = Normalization::from_dataset(&split.train);
    let k = Normalization::fashion_mnist();
    assert!((n.mean[0] - k.mean[0]).abs() < 0.02, "{n:?}");
    assert!((n.std[0] - k.std[0]).abs() < 0.02, "{n:?}");
    // Real images: dark background, some bright pixels, no two identical.
    let zeros = split.train.images.iter().filter(|&&v| v == 0).count();
    let frac = zeros as f64 / split.train.images.len() as f64;
    assert!((0.3..0.7).contains(&frac), "fraction of zero pixels {frac}");
    assert_eq!(split.train.images.iter().max(), Some(&255));
    assert_ne!(split.train.image(0), split.train.image(1));
    // Trousers (1) are tall and narrow: the image corners are background,
    // while bags (8) and pullovers (2) fill more of the frame.
    let mean_of = |class: u8| {
        let d = &split.train;
        let (mut s, mut c) = (0u64, 0u64);
        for i in (0..d.len()).filter(|&i| d.label(i) == class) {
            s += d.image(i).iter().map(|&v| u64::from(v)).sum::<u64>();
            c += 784;
        }
        s as f64 / c as f64
    };
    assert!(mean_of(1) < mean_of(2), "trousers darker than pullovers");
}

fn debian_dir() -> Option<&'static Path> {
    let dir = Path::new(DEFAULT_FASHION_MNIST_DIR);
    if dir.join("train-images-idx3-ubyte.gz").is_file() {
        Some(dir)
    } else {
        println!(
            "SKIPPED: {} not found (install Debian package dataset-fashion-mnist)",
            dir.display()
        );
        None
    }
}

#[test]
fn debian_full_fashion_mnist_loads() {
    let Some(dir) = debian_dir() else { return };
    let split = load_fashion_mnist(dir).unwrap();
    assert_eq!(split.train.len(), 60_000);
    assert_eq!(split.test.len(), 10_000);
    assert_eq!(split.train.class_counts(), vec![6000; 10]);
    assert_eq!(split.test.class_counts(), vec![1000; 10]);
    let n = Normalization::from_dataset(&split.train);
    let k = Normalization::fashion_mnist();
    assert!((n.mean[0] - k.mean[0]).abs() < 1e-3, "{n:?}");
    assert!((n.std[0] - k.std[0]).abs() < 1e-3, "{n:?}");
    assert_eq!(
        "fashion-mnist"
            .parse::<DataSource>()
            .unwrap()
            .load()
            .unwrap(),
        split
    );
}

#[test]
fn embedded_subset_matches_regeneration_from_debian_files() {
    let Some(dir) = debian_dir() else { return };
    let full = load_fashion_mnist(dir).unwrap();
    let emb = embedded_fashion_mnist().unwrap();
    let regen = full.subset(5000, 1000);
    assert_eq!(regen.train.images, emb.train.images);
    assert_eq!(regen.train.labels, emb.train.labels);
    assert_eq!(regen.test.images, emb.test.images);
    assert_eq!(regen.test.labels, emb.test.labels);
}

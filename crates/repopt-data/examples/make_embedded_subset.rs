//! Regenerates the embedded Fashion-MNIST subset in `data/fashion-mnist-subset/`.
//!
//! ```text
//! cargo run -p repopt-data --example make_embedded_subset -- [SRC_DIR] [OUT_DIR]
//! ```
//!
//! `SRC_DIR` defaults to `/usr/share/datasets/fashion-mnist` (Debian package
//! `dataset-fashion-mnist`), `OUT_DIR` to this crate's
//! `data/fashion-mnist-subset`. The subset is deterministic: the first 500
//! training and first 100 test images of every class, in file order (that is
//! what `Dataset::subset` picks), written as IDX files gzipped at level 9.
//! Rebuild the crate afterwards: the files are compiled in with `include_bytes!`.

use std::path::PathBuf;

use repopt_data::idx::{encode_idx, gzip};
use repopt_data::{
    load_fashion_mnist, Dataset, DEFAULT_FASHION_MNIST_DIR, EMBEDDED_TEST_PER_CLASS,
    EMBEDDED_TRAIN_PER_CLASS, FASHION_MNIST_CLASSES, FASHION_MNIST_FILES,
};

fn write(out: &std::path::Path, stem: &str, idx: Vec<u8>) -> std::io::Result<()> {
    let path = out.join(format!("{stem}.gz"));
    let gz = gzip(&idx, 9);
    std::fs::write(&path, &gz)?;
    println!("wrote {} ({} bytes)", path.display(), gz.len());
    Ok(())
}

fn write_pair(
    out: &std::path::Path,
    d: &Dataset,
    images: &str,
    labels: &str,
) -> std::io::Result<()> {
    write(
        out,
        images,
        encode_idx(&[d.len(), d.height, d.width], &d.images),
    )?;
    write(out, labels, encode_idx(&[d.len()], &d.labels))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let src = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_FASHION_MNIST_DIR));
    let out = args.next().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist-subset")
    });
    let full = load_fashion_mnist(&src)?;
    let train = full
        .train
        .subset(EMBEDDED_TRAIN_PER_CLASS * FASHION_MNIST_CLASSES);
    let test = full
        .test
        .subset(EMBEDDED_TEST_PER_CLASS * FASHION_MNIST_CLASSES);
    for d in [&train, &test] {
        let counts = d.class_counts();
        println!("{}: {} images, per class {:?}", d.name, d.len(), counts);
    }
    std::fs::create_dir_all(&out)?;
    let [tri, trl, tei, tel] = FASHION_MNIST_FILES;
    write_pair(&out, &train, tri, trl)?;
    write_pair(&out, &test, tei, tel)?;
    Ok(())
}

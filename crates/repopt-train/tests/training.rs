//! Training end to end on real Fashion-MNIST images (the embedded subset):
//! the tiny preset learns, and a resumed run ends with the same weights as an
//! uninterrupted one.

use candle_core::Device;
use repopt_data::{embedded_fashion_mnist, Normalization};
use repopt_train::{Arch, Scales, TrainConfig, Trainer};

fn tiny_config(epochs: usize) -> TrainConfig {
    let mut c = TrainConfig::new(Arch::RepOptVgg, repopt_spec::preset("tiny").unwrap());
    c.epochs = epochs;
    c.scales = Some("initial".into());
    c.seed = 7;
    c
}

#[test]
fn tiny_repopt_vgg_reaches_80_percent_on_fashion_mnist() {
    let split = embedded_fashion_mnist().unwrap();
    let norm = Normalization::from_dataset(&split.train);
    let config = tiny_config(5);
    let scales = Scales::initial(&config.spec);
    let mut t = Trainer::new(config, norm, Some(&scales), &Device::Cpu).unwrap();
    let mut last = None;
    while !t.finished() {
        let m = t
            .train_epoch(&split.train, &split.test, &mut |_| {})
            .unwrap();
        eprintln!("epoch {} test accuracy {:.4}", m.epoch, m.test_accuracy);
        last = Some(m);
    }
    let acc = last.unwrap().test_accuracy;
    assert!(acc >= 0.80, "test accuracy {acc:.4} below 0.80");
}

#[test]
fn resumed_run_ends_with_the_same_weights() {
    let split = embedded_fashion_mnist().unwrap().subset(640, 100);
    let norm = Normalization::from_dataset(&split.train);
    let config = tiny_config(3);
    let scales = Scales::initial(&config.spec);

    let mut straight =
        Trainer::new(config.clone(), norm.clone(), Some(&scales), &Device::Cpu).unwrap();
    while !straight.finished() {
        straight
            .train_epoch(&split.train, &split.test, &mut |_| {})
            .unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let mut first = Trainer::new(config, norm, Some(&scales), &Device::Cpu).unwrap();
    first
        .train_epoch(&split.train, &split.test, &mut |_| {})
        .unwrap();
    first.save(dir.path()).unwrap();
    drop(first);
    let mut resumed = Trainer::resume(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(resumed.epochs_done(), 1);
    while !resumed.finished() {
        resumed
            .train_epoch(&split.train, &split.test, &mut |_| {})
            .unwrap();
    }

    let a = straight.net.state().unwrap();
    let b = resumed.net.state().unwrap();
    assert_eq!(a.len(), b.len());
    for (name, ta) in &a {
        let va = ta.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let vb = b[name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(va == vb, "tensor {name} differs after resume");
    }
    assert_eq!(straight.history.len(), resumed.history.len());
}

#[test]
fn checkpoint_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = Trainer::resume(dir.path(), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains(&dir.path().display().to_string()) && err.contains("checkpoint.json"),
        "{err}"
    );

    let split = embedded_fashion_mnist().unwrap().subset(64, 10);
    let norm = Normalization::from_dataset(&split.train);
    let t = Trainer::new(
        tiny_config(1),
        norm,
        Some(&Scales::initial(&repopt_spec::preset("tiny").unwrap())),
        &Device::Cpu,
    )
    .unwrap();
    t.save(dir.path()).unwrap();
    // Unknown format version.
    let meta = dir.path().join("checkpoint.json");
    let text = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(
        &meta,
        text.replace("\"format_version\": 1", "\"format_version\": 99"),
    )
    .unwrap();
    let err = Trainer::resume(dir.path(), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("format_version 99") && err.contains("checkpoint.json"),
        "{err}"
    );
    std::fs::write(&meta, &text).unwrap();
    // Corrupt weights.
    let weights = dir.path().join("model.safetensors");
    std::fs::write(&weights, b"garbage").unwrap();
    let err = Trainer::resume(dir.path(), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("model.safetensors"), "{err}");
}

//! End to end on real Fashion-MNIST images (the embedded subset): a tiny
//! RepOpt-VGG trained once per test binary (shared fixture), deployed,
//! quantised with each calibration method; golden == Candle on every layer;
//! INT8 top-1 within one point of float top-1; RepVGG checkpoints too.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use candle_core::{Device, Tensor};
use repopt_data::{embedded_fashion_mnist, Dataset, Normalization, Split};
use repopt_int8::{golden, Int8Model};
use repopt_quant::calibrate::Calibration;
use repopt_quant::deploy::DeployedModel;
use repopt_quant::quantize::{quantize_model, QuantizeOptions};
use repopt_quant::report::build_report;
use repopt_quant::verify::{verify, CandleRung, Rung};
use repopt_quant::{CandleInt8, QuantError};
use repopt_train::{Arch, Network, Scales, TrainConfig, Trainer};

struct Fixture {
    split: Split,
    /// Checkpoint folders (kept for the binary's lifetime).
    repopt: PathBuf,
    repvgg: PathBuf,
    _dir: tempfile::TempDir,
}

fn train(arch: Arch, split: &Split, epochs: usize, dir: &std::path::Path) {
    let spec = repopt_spec::preset("tiny").unwrap();
    let mut config = TrainConfig::new(arch, spec.clone());
    config.epochs = epochs;
    config.seed = 3;
    let scales = Scales::initial(&spec);
    let scales = if arch == Arch::RepOptVgg {
        config.scales = Some("initial".into());
        Some(&scales)
    } else {
        None
    };
    let norm = Normalization::from_dataset(&split.train);
    let mut t = Trainer::new(config, norm, scales, &Device::Cpu).unwrap();
    let start = Instant::now();
    while !t.finished() {
        let m = t
            .train_epoch(&split.train, &split.test, &mut |_| {})
            .unwrap();
        eprintln!(
            "[fixture] {} epoch {} test accuracy {:.4} ({:.1}s)",
            arch.label(),
            m.epoch,
            m.test_accuracy,
            start.elapsed().as_secs_f64()
        );
    }
    t.save(dir).unwrap();
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let split = embedded_fashion_mnist().unwrap().subset(2000, 1000);
        let dir = tempfile::tempdir().unwrap();
        let repopt = dir.path().join("repopt");
        let repvgg = dir.path().join("repvgg");
        train(Arch::RepOptVgg, &split, 3, &repopt);
        train(Arch::RepVgg, &split, 1, &repvgg);
        Fixture {
            split,
            repopt,
            repvgg,
            _dir: dir,
        }
    })
}

fn logits_of(net: &mut Network, images: &Tensor) -> Vec<Vec<f32>> {
    net.forward(images, false).unwrap().to_vec2().unwrap()
}

fn assert_close(a: &[Vec<f32>], b: &[Vec<f32>], what: &str) {
    let scale = a
        .iter()
        .flatten()
        .fold(0f32, |m, &x| m.max(x.abs()))
        .max(1.0);
    for (ra, rb) in a.iter().zip(b) {
        for (x, y) in ra.iter().zip(rb) {
            assert!((x - y).abs() <= 1e-4 * scale, "{what}: {x} vs {y}");
        }
    }
}

fn check_deploy(mut net: Network, norm: Normalization, data: &Dataset) {
    let deployed = DeployedModel::from_network(&net, norm).unwrap();
    let fnet = deployed.float_net(&Device::Cpu).unwrap();
    let idx: Vec<usize> = (0..16).collect();
    let x = fnet.batch(data, &idx).unwrap();
    let want = logits_of(&mut net, &x);
    let mut dep = net.deploy().unwrap();
    assert_close(&want, &logits_of(&mut dep, &x), "Network::deploy");
    let got: Vec<Vec<f32>> = fnet.forward(&x).unwrap().logits.to_vec2().unwrap();
    assert_close(&want, &got, "DeployedModel");
}

/// A random network whose BN layers have non-trivial statistics.
fn with_bn_stats(arch: Arch) -> Network {
    let spec = repopt_spec::preset("tiny").unwrap();
    let mut net = Network::new(arch, &spec, None, 5, &Device::Cpu).unwrap();
    let mut state = net.state().unwrap();
    let mut names: Vec<String> = state.keys().cloned().collect();
    names.sort();
    for (k, name) in names.iter().enumerate() {
        let t = state.get_mut(name).unwrap();
        let n = t.elem_count();
        let v: Vec<f32> = (0..n)
            .map(|i| ((i as f32 + k as f32) * 0.731).sin())
            .collect();
        let f = |v: Vec<f32>| Tensor::from_vec(v, t.shape(), &Device::Cpu).unwrap();
        if name.ends_with("running_mean") || name.ends_with("bias") && name.contains("bn") {
            *t = f(v.iter().map(|x| 0.1 * x).collect());
        } else if name.ends_with("running_var") {
            *t = f(v.iter().map(|x| 1.0 + 0.5 * x).collect());
        } else if name.ends_with(".weight")
            && (name.contains(".bn") || name.contains("rbr_identity"))
        {
            *t = f(v.iter().map(|x| 1.0 + 0.3 * x).collect());
        }
    }
    net.load_state(&state, std::path::Path::new("synthetic"))
        .unwrap();
    net
}

#[test]
fn deployed_float_equals_trained_network() {
    let f = fixture();
    let ck = repopt_train::Checkpoint::load(&f.repopt, &Device::Cpu).unwrap();
    check_deploy(
        ck.network(&Device::Cpu).unwrap(),
        ck.meta.normalization.clone(),
        &f.split.test,
    );
    let ck = repopt_train::Checkpoint::load(&f.repvgg, &Device::Cpu).unwrap();
    check_deploy(
        ck.network(&Device::Cpu).unwrap(),
        ck.meta.normalization.clone(),
        &f.split.test,
    );
    let norm = Normalization::fashion_mnist();
    check_deploy(with_bn_stats(Arch::RepOptVgg), norm.clone(), &f.split.test);
    check_deploy(with_bn_stats(Arch::RepVgg), norm, &f.split.test);
}

fn quantize(
    dir: &std::path::Path,
    method: Calibration,
) -> (DeployedModel, Int8Model, repopt_quant::QuantReport) {
    let f = fixture();
    let model = DeployedModel::load(dir).unwrap();
    let opts = QuantizeOptions {
        calibration: method,
        calib_images: 256,
        batch_size: 64,
    };
    let (q, stats, calib) =
        quantize_model(&model, &f.split.train, &opts, &Device::Cpu, &mut |_| {}).unwrap();
    let fnet = model.float_net(&Device::Cpu).unwrap();
    let engine = CandleInt8::new(&q, &Device::Cpu).unwrap();
    let report = build_report(
        &model,
        &q,
        &stats,
        &fnet,
        &engine,
        &f.split.train,
        &calib,
        &f.split.test,
        128,
    )
    .unwrap();
    eprintln!("{}", report.table());
    (model, q, report)
}

fn golden_equals_candle(q: &Int8Model, data: &Dataset, n: usize) {
    let images: Vec<Vec<u8>> = (0..n).map(|i| data.image(i).to_vec()).collect();
    let mut rungs: Vec<Box<dyn Rung>> = vec![Box::new(CandleRung::new(q, &Device::Cpu).unwrap())];
    let t = Instant::now();
    let report = verify(q, &images, &mut rungs).unwrap();
    eprintln!(
        "verify {:.2}s: {:?}",
        t.elapsed().as_secs_f64(),
        report.lines()
    );
    assert!(report.all_match(), "{:?}", report.lines());
}

#[test]
fn repopt_vgg_ptq_every_method() {
    let f = fixture();
    for method in [
        Calibration::MinMax,
        Calibration::Percentile(99.99),
        Calibration::Mse,
    ] {
        let (_, q, r) = quantize(&f.repopt, method);
        assert_eq!(q.calibration, method.name());
        golden_equals_candle(&q, &f.split.test, 24);
        assert!(r.float_top1 > 0.6, "float top-1 {}", r.float_top1);
        assert!(
            (r.int8_top1 - r.float_top1).abs() <= 0.01,
            "{}: INT8 top-1 {} vs float {}",
            method.name(),
            r.int8_top1,
            r.float_top1
        );
        assert!(r.layers.iter().all(|l| l.sqnr_db > 10.0), "{}", r.table());
    }
}

#[test]
fn repvgg_checkpoint_quantizes_and_matches_golden() {
    let f = fixture();
    let (model, q, r) = quantize(&f.repvgg, Calibration::MinMax);
    assert_eq!(r.arch, "repvgg");
    assert_eq!(model.layers.len(), 7);
    golden_equals_candle(&q, &f.split.test, 16);
    // round trip through the file set, and the same numbers after loading
    let dir = tempfile::tempdir().unwrap();
    q.save(dir.path()).unwrap();
    let loaded = Int8Model::load(dir.path()).unwrap();
    assert_eq!(loaded, q);
    let img = f.split.test.image(3);
    assert_eq!(
        golden::run_network(&loaded, img).unwrap(),
        CandleInt8::new(&loaded, &Device::Cpu)
            .unwrap()
            .run_image(img, 0)
            .unwrap()
    );
}

#[test]
fn calibration_data_of_the_wrong_shape_is_a_clear_error() {
    let f = fixture();
    let model = DeployedModel::load(&f.repopt).unwrap();
    let opts = QuantizeOptions::default();
    let rgb = Dataset::new("rgb32", vec![0; 4 * 32 * 32 * 3], vec![0; 4], 32, 32, 3, 10).unwrap();
    let e = quantize_model(&model, &rgb, &opts, &Device::Cpu, &mut |_| {}).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, QuantError::Mismatch { .. }), "{msg}");
    assert!(
        msg.contains("rgb32") && msg.contains("32x32x3") && msg.contains("28x28x1"),
        "{msg}"
    );
    assert!(
        msg.contains("image size 32x32") && msg.contains("3 channel(s)"),
        "{msg}"
    );
    let grey = Dataset::new(
        "grey28x28x3",
        vec![0; 2 * 28 * 28 * 3],
        vec![0; 2],
        28,
        28,
        3,
        10,
    )
    .unwrap();
    let msg = quantize_model(&model, &grey, &opts, &Device::Cpu, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("3 channel(s) differ from the model's 1") && !msg.contains("image size"),
        "{msg}"
    );
}

#[test]
fn a_missing_checkpoint_is_an_error_naming_the_folder() {
    let e = DeployedModel::load(std::path::Path::new("/nonexistent/ck")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/ck"), "{e}");
}

//! `repopt quantize`: post-training INT8 quantisation of a checkpoint
//! (RepOpt-VGG or RepVGG) into the INT8 file set, with a per-layer report.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use repopt_quant::calibrate::Calibration;
use repopt_quant::quantize::{quantize_model, QuantizeOptions};
use repopt_quant::{build_report, CandleInt8, DeployedModel};

use super::common::{device, DataArgs};

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum CalibrationArg {
    /// Scale from the largest activation seen (no clipping).
    Minmax,
    /// Scale from a percentile of the activations (--percentile).
    Percentile,
    /// Scale minimising the quantisation mean squared error.
    Mse,
}

#[derive(Args, Clone)]
pub struct QuantizeArgs {
    /// Checkpoint folder written by `repopt train` (RepOpt-VGG or RepVGG).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Output folder: manifest.json + model.safetensors, report.json, report.csv.
    #[arg(long, default_value = "runs/int8")]
    pub out: PathBuf,
    /// How activation scales are calibrated.
    #[arg(long, value_enum, default_value = "minmax")]
    pub calibration: CalibrationArg,
    /// Percentile for `--calibration percentile`.
    #[arg(long, default_value_t = 99.99)]
    pub percentile: f64,
    /// Number of (class-balanced) training images used for calibration.
    #[arg(long, default_value_t = 512)]
    pub calib_images: usize,
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Where Candle runs the float network and the INT8 engine (`cpu`, `cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress bar or table.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: QuantizeArgs) -> anyhow::Result<()> {
    let dev = device(&args.device)?;
    let method = Calibration::parse(
        match args.calibration {
            CalibrationArg::Minmax => "minmax",
            CalibrationArg::Percentile => "percentile",
            CalibrationArg::Mse => "mse",
        },
        args.percentile,
    )?;
    let model = DeployedModel::load(&args.checkpoint)
        .with_context(|| format!("--checkpoint {}", args.checkpoint.display()))?;
    let (_, split) = args.data.load()?;
    model
        .check_data(&split.train)
        .with_context(|| format!("calibration data --data {}", args.data.data))?;
    let options = QuantizeOptions {
        calibration: method,
        calib_images: args.calib_images,
        batch_size: args.batch_size,
    };
    let images = args.calib_images.min(split.train.len());
    let passes = if method.needs_histogram() { 2 } else { 1 };
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new((passes * images) as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("calibrating ({msg}) [{bar:30}] {pos}/{len} images ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(method.name());
    bar.enable_steady_tick(Duration::from_millis(200));
    let (int8, stats, calib) = quantize_model(&model, &split.train, &options, &dev, &mut |k| {
        bar.inc(k as u64)
    })?;
    bar.finish_and_clear();
    int8.save(&args.out)
        .with_context(|| format!("writing the INT8 model to {}", args.out.display()))?;
    let float = model.float_net(&dev)?;
    let engine = CandleInt8::new(&int8, &dev)?;
    let report = build_report(
        &model,
        &int8,
        &stats,
        &float,
        &engine,
        &split.train,
        &calib,
        &split.test,
        args.batch_size,
    )?;
    report.save(&args.out)?;
    if !args.quiet {
        print!("{}", report.table());
    }
    println!(
        "wrote {} (manifest.json, model.safetensors, report.json, report.csv): float top-1 {:.2}%, INT8 top-1 {:.2}%",
        args.out.display(),
        100.0 * report.float_top1,
        100.0 * report.int8_top1
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The three INT8 commands end to end on a small checkpoint, and their
    //! error messages for bad input.

    use std::path::Path;

    use candle_core::Device;
    use repopt_data::{embedded_fashion_mnist, Normalization};
    use repopt_train::{Arch, TrainConfig, Trainer};

    use super::*;
    use crate::cmd::infer::{EngineArg, InferArgs};
    use crate::cmd::verify::VerifyArgs;

    fn checkpoint(dir: &Path, arch: Arch) {
        let spec = repopt_spec::preset("tiny").unwrap();
        let mut config = TrainConfig::new(arch, spec);
        config.epochs = 1;
        let split = embedded_fashion_mnist().unwrap().subset(256, 64);
        let mut t = Trainer::new(
            config,
            Normalization::from_dataset(&split.train),
            None,
            &Device::Cpu,
        )
        .unwrap();
        t.train_epoch(&split.train, &split.test, &mut |_| {})
            .unwrap();
        t.save(dir).unwrap();
    }

    fn quantize_args(ck: &Path, out: &Path, calibration: CalibrationArg) -> QuantizeArgs {
        QuantizeArgs {
            checkpoint: ck.to_path_buf(),
            out: out.to_path_buf(),
            calibration,
            percentile: 99.9,
            calib_images: 64,
            data: DataArgs {
                data: "embedded".into(),
                train_limit: Some(500),
                test_limit: Some(100),
            },
            batch_size: 32,
            device: "cpu".into(),
            quiet: true,
        }
    }

    fn infer_args(model: &Path, out: &Path, engine: EngineArg) -> InferArgs {
        InferArgs {
            model: model.to_path_buf(),
            engine,
            device: "cpu".into(),
            data: "embedded".into(),
            limit: Some(50),
            images: vec![],
            out: out.to_path_buf(),
            batch_size: 16,
        }
    }

    fn verify_args(model: &Path) -> VerifyArgs {
        VerifyArgs {
            model: model.to_path_buf(),
            images: 4,
            data: "embedded".into(),
            device: "cpu".into(),
            chip: Some("edge-fpga".into()),
            json: None,
        }
    }

    fn chain(e: anyhow::Error) -> String {
        format!("{e:#}")
    }

    #[test]
    fn quantize_infer_verify_end_to_end_and_bad_input() {
        let tmp = tempfile::tempdir().unwrap();
        let ck = tmp.path().join("ck");
        checkpoint(&ck, Arch::RepVgg);
        let q = tmp.path().join("q");
        run(quantize_args(&ck, &q, CalibrationArg::Percentile)).unwrap();
        for f in [
            "manifest.json",
            "model.safetensors",
            "report.json",
            "report.csv",
        ] {
            assert!(q.join(f).exists(), "{f}");
        }
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(q.join("report.json")).unwrap()).unwrap();
        assert_eq!(report["calibration"], "percentile99.9");
        assert_eq!(report["arch"], "repvgg");
        assert_eq!(report["layers"].as_array().unwrap().len(), 7);
        let csv = std::fs::read_to_string(q.join("report.csv")).unwrap();
        assert_eq!(csv.lines().count(), 8);

        // infer: both engines write identical predictions
        let (a, b) = (tmp.path().join("ia"), tmp.path().join("ib"));
        crate::cmd::infer::run(infer_args(&q, &a, EngineArg::Golden)).unwrap();
        crate::cmd::infer::run(infer_args(&q, &b, EngineArg::Candle)).unwrap();
        let pa = std::fs::read_to_string(a.join("predictions.csv")).unwrap();
        assert_eq!(
            pa,
            std::fs::read_to_string(b.join("predictions.csv")).unwrap()
        );
        assert_eq!(pa.lines().count(), 51);
        assert!(b.join("predictions.json").exists());

        // infer from files: an IDX file of the right shape works, a wrong one names the mismatch
        let idx = tmp.path().join("imgs.idx");
        std::fs::write(
            &idx,
            repopt_data::idx::encode_idx(&[3, 28, 28], &[7u8; 3 * 784]),
        )
        .unwrap();
        let mut args = infer_args(&q, &tmp.path().join("ic"), EngineArg::Candle);
        args.images = vec![idx];
        crate::cmd::infer::run(args.clone()).unwrap();
        let bad = tmp.path().join("rgb.idx");
        std::fs::write(
            &bad,
            repopt_data::idx::encode_idx(&[1, 32, 32, 3], &[0u8; 3072]),
        )
        .unwrap();
        args.images = vec![bad];
        let e = chain(crate::cmd::infer::run(args).unwrap_err());
        assert!(
            e.contains("32x32x3 images but the model expects 28x28x1"),
            "{e}"
        );

        // verify: all images match
        let mut v = verify_args(&q);
        let json = tmp.path().join("verify.json");
        v.json = Some(json.clone());
        crate::cmd::verify::run(v).unwrap();
        assert!(std::fs::read_to_string(&json)
            .unwrap()
            .contains("candle-cpu"));

        // bad model folders: unknown version, malformed manifest, wrong dtype
        let copy = |name: &str| {
            let d = tmp.path().join(name);
            std::fs::create_dir_all(&d).unwrap();
            for f in ["manifest.json", "model.safetensors"] {
                std::fs::copy(q.join(f), d.join(f)).unwrap();
            }
            d
        };
        let d = copy("v7");
        let m = std::fs::read_to_string(d.join("manifest.json")).unwrap();
        std::fs::write(
            d.join("manifest.json"),
            m.replace("\"format_version\": 1", "\"format_version\": 7"),
        )
        .unwrap();
        let e = chain(crate::cmd::verify::run(verify_args(&d)).unwrap_err());
        assert!(
            e.contains("--model") && e.contains("format_version") && e.contains("7"),
            "{e}"
        );
        let d = copy("garbage");
        std::fs::write(d.join("manifest.json"), "{ not json").unwrap();
        let e = chain(
            crate::cmd::infer::run(infer_args(&d, &tmp.path().join("x"), EngineArg::Golden))
                .unwrap_err(),
        );
        assert!(
            e.contains("manifest.json") && e.contains("not a valid INT8 manifest"),
            "{e}"
        );
        let d = copy("dtype");
        let tensors = std::fs::read(d.join("model.safetensors")).unwrap();
        let st = safetensors_with_f32_bias(&tensors);
        std::fs::write(d.join("model.safetensors"), st).unwrap();
        let e = chain(crate::cmd::verify::run(verify_args(&d)).unwrap_err());
        assert!(e.contains("head.bias") && e.contains("dtype"), "{e}");

        // quantize: wrong calibration data, missing checkpoint, bad percentile
        let mut a = quantize_args(&ck, &tmp.path().join("q2"), CalibrationArg::Minmax);
        a.checkpoint = tmp.path().join("nothing");
        let e = chain(run(a).unwrap_err());
        assert!(e.contains("--checkpoint") && e.contains("nothing"), "{e}");
        let mut a = quantize_args(&ck, &tmp.path().join("q3"), CalibrationArg::Percentile);
        a.percentile = 0.0;
        assert!(chain(run(a).unwrap_err()).contains("--percentile 0"));
    }

    /// Rewrites `head.bias` (I32) as an F32 tensor of the same shape.
    fn safetensors_with_f32_bias(bytes: &[u8]) -> Vec<u8> {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
        let mut h: serde_json::Value = serde_json::from_str(header).unwrap();
        h["head.bias"]["dtype"] = "F32".into();
        let text = serde_json::to_string(&h).unwrap();
        let mut text = text.into_bytes();
        while !text.len().is_multiple_of(8) {
            text.push(b' ');
        }
        let mut out = (text.len() as u64).to_le_bytes().to_vec();
        out.extend(text);
        out.extend(&bytes[8 + n..]);
        out
    }
}

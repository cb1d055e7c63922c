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

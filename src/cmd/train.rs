//! `repopt train`: train RepOpt-VGG (RepOpt-SGD or plain SGD), RepVGG or the
//! Hyper-Search model, with checkpoints after every epoch and `--resume`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use repopt_data::Augment;
use repopt_spec::ModelSpec;
use repopt_train::trainer::append_metrics;
use repopt_train::{Arch, Scales, TrainConfig, Trainer};

use super::common::{device, DataArgs, TrainProgress};

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ArchArg {
    /// Plain conv-BN-ReLU, trained with RepOpt-SGD (or plain SGD with `--scales none`).
    RepoptVgg,
    /// RepVGG's three-branch blocks (the structural re-parameterisation baseline).
    Repvgg,
    /// The Hyper-Search model (what `repopt hs` trains).
    HyperSearch,
}

impl From<ArchArg> for Arch {
    fn from(a: ArchArg) -> Self {
        match a {
            ArchArg::RepoptVgg => Arch::RepOptVgg,
            ArchArg::Repvgg => Arch::RepVgg,
            ArchArg::HyperSearch => Arch::HyperSearch,
        }
    }
}

#[derive(Args, Clone)]
pub struct TrainArgs {
    /// Preset (tiny, small, A0..B3, L1, L2) or JSON spec file.
    #[arg(long, default_value = "tiny")]
    pub model: String,
    #[arg(long, value_enum, default_value = "repopt-vgg")]
    pub arch: ArchArg,
    /// RepOpt-VGG's gradient multipliers: a scales file (ours, safetensors, or
    /// the authors' .pth), `initial` (Hyper-Search's starting constants,
    /// no search) or `none` (plain SGD, the paper's ablation baseline).
    #[arg(long, default_value = "initial")]
    pub scales: String,
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Peak learning rate (cosine schedule with linear warmup).
    #[arg(long, default_value_t = 0.1)]
    pub lr: f64,
    #[arg(long, default_value_t = 1)]
    pub warmup_epochs: usize,
    #[arg(long, default_value_t = 4e-5)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    #[arg(long, default_value_t = 0.1)]
    pub label_smoothing: f64,
    /// Random-crop padding in pixels (0 disables cropping).
    #[arg(long, default_value_t = 2)]
    pub crop_pad: usize,
    /// Disable random horizontal flips.
    #[arg(long)]
    pub no_flip: bool,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder: checkpoint, metrics.jsonl, metrics.csv
    /// [default: runs/train, runs/hs for `repopt hs`].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run whose checkpoint is in this folder.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Stop after this many epochs in this invocation (the schedule still
    /// spans --epochs); resume later with --resume.
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Only `cpu` for training (see `repopt infer --device` for CUDA).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress bars or per-epoch lines.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Loads the scales a run asks for, checked against the model.
fn resolve_scales(
    arg: &str,
    spec: &ModelSpec,
    arch: Arch,
) -> anyhow::Result<Option<(String, Scales)>> {
    if arch != Arch::RepOptVgg {
        return Ok(None);
    }
    match arg {
        "none" => Ok(None),
        "initial" => Ok(Some(("initial".into(), Scales::initial(spec)))),
        path => {
            let p = Path::new(path);
            let scales = Scales::load(p)?;
            scales.validate(spec, p)?;
            Ok(Some((path.to_string(), scales)))
        }
    }
}

pub fn config_from_args(
    args: &TrainArgs,
    spec: ModelSpec,
    scales_label: Option<String>,
) -> TrainConfig {
    let mut config = TrainConfig::new(args.arch.into(), spec);
    config.scales = scales_label;
    config.epochs = args.epochs;
    config.batch_size = args.batch_size;
    config.lr = args.lr;
    config.warmup_epochs = args.warmup_epochs;
    config.label_smoothing = args.label_smoothing;
    config.sgd.weight_decay = args.weight_decay;
    config.sgd.momentum = args.momentum;
    config.seed = args.seed;
    config.augment = Augment {
        crop_pad: args.crop_pad,
        hflip: !args.no_flip,
    };
    config.data = args.data.data.clone();
    config
}

/// Trains (or resumes) into `out` and returns the trainer at the end, for
/// callers such as `hs`.
pub fn train(args: &TrainArgs, out: &Path) -> anyhow::Result<Trainer> {
    if args.device != "cpu" {
        anyhow::bail!(
            "--device {}: training runs on the CPU only (the trainer's im2col and batch-norm ops have no \
             CUDA kernels yet); `--device cuda` applies to the INT8 engines (infer, verify)",
            args.device
        );
    }
    let dev = device(&args.device)?;
    let (source, split) = args.data.load()?;
    let mut trainer = match &args.resume {
        Some(dir) => {
            let t = Trainer::resume(dir, &dev)
                .with_context(|| format!("resuming from {}", dir.display()))?;
            let requested = ModelSpec::resolve(&args.model)?;
            if requested.stages != t.config.spec.stages || t.config.arch != Arch::from(args.arch) {
                anyhow::bail!(
                    "checkpoint {} holds a {} `{}` model, but --model {} --arch {} was asked for",
                    dir.display(),
                    t.config.arch.label(),
                    t.config.spec.name,
                    args.model,
                    Arch::from(args.arch).label()
                );
            }
            eprintln!(
                "resuming {} at epoch {}/{}",
                dir.display(),
                t.epochs_done() + 1,
                t.config.epochs
            );
            t
        }
        None => {
            let spec = ModelSpec::resolve(&args.model)?;
            let classes = source.classes();
            let [h, _, c] = source.image_shape();
            let spec = if spec.in_channels != c || spec.image_size != h || spec.classes != classes {
                spec.with_io(classes, c, h)
            } else {
                spec
            };
            let scales = resolve_scales(&args.scales, &spec, args.arch.into())?;
            if args.arch == ArchArg::RepoptVgg && args.scales == "initial" && !args.quiet {
                eprintln!("note: RepOpt-SGD with Hyper-Search's initial constants (no search); `repopt hs` searches them");
            }
            let norm = repopt_data::Normalization::from_dataset(&split.train);
            let config = config_from_args(args, spec, scales.as_ref().map(|s| s.0.clone()));
            Trainer::new(config, norm, scales.as_ref().map(|s| &s.1), &dev)?
        }
    };
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut progress = TrainProgress::new(args.quiet);
    let mut this_run = 0;
    while !trainer.finished() && args.stop_after.is_none_or(|n| this_run < n) {
        let m = trainer.train_epoch(&split.train, &split.test, &mut |e| progress.observe(e))?;
        append_metrics(out, &m)?;
        trainer
            .save(out)
            .with_context(|| format!("saving checkpoint to {}", out.display()))?;
        this_run += 1;
    }
    Ok(trainer)
}

/// The run's folder: the resumed checkpoint's, `--out`, or `default`.
pub fn out_dir(args: &TrainArgs, default: &str) -> PathBuf {
    args.resume
        .clone()
        .or_else(|| args.out.clone())
        .unwrap_or_else(|| PathBuf::from(default))
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let out = out_dir(&args, "runs/train");
    let trainer = train(&args, &out)?;
    summary(&trainer, &out);
    Ok(())
}

pub fn summary(trainer: &Trainer, out: &Path) {
    let Some(last) = trainer.history.last() else {
        return;
    };
    let total: f64 = trainer.history.iter().map(|m| m.seconds).sum();
    let c = &trainer.config;
    println!(
        "{} `{}` ({}) on {}: test accuracy {:.2}% after {}/{} epochs, {:.0}s training, {:.0} img/s",
        c.arch.label(),
        c.spec.name,
        match (&c.scales, c.arch) {
            (Some(s), _) => format!("RepOpt-SGD, scales {s}"),
            (None, Arch::RepOptVgg) => "plain SGD".into(),
            _ => "SGD".into(),
        },
        c.data,
        100.0 * last.test_accuracy,
        trainer.epochs_done(),
        c.epochs,
        total,
        last.images_per_second
    );
    println!("checkpoint and metrics in {}", out.display());
}

//! Pieces several subcommands share: data selection, devices, progress bars.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use repopt_data::{DataSource, Split};
use repopt_train::{EpochMetrics, Event};

#[derive(Args, Clone)]
pub struct DataArgs {
    /// Data: `embedded` (Fashion-MNIST subset shipped in the binary),
    /// `fashion-mnist[:DIR]` (default DIR /usr/share/datasets/fashion-mnist),
    /// `cifar10:DIR` or `cifar100:DIR` (binary format).
    #[arg(long, default_value = "embedded")]
    pub data: String,
    /// Use only the first N training images (class-balanced), for quick runs.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Use only the first N test images (class-balanced).
    #[arg(long)]
    pub test_limit: Option<usize>,
}

impl DataArgs {
    pub fn load(&self) -> anyhow::Result<(DataSource, Split)> {
        let source: DataSource = self
            .data
            .parse()
            .with_context(|| format!("--data {}", self.data))?;
        let mut split = source
            .load()
            .with_context(|| format!("loading --data {}", self.data))?;
        if let Some(n) = self.train_limit {
            split.train = split.train.subset(n);
        }
        if let Some(n) = self.test_limit {
            split.test = split.test.subset(n);
        }
        Ok((source, split))
    }
}

/// Where Candle runs. CUDA needs the binary built with `--features cuda`.
pub fn device(name: &str) -> anyhow::Result<candle_core::Device> {
    match name {
        "cpu" => Ok(candle_core::Device::Cpu),
        "cuda" => {
            candle_core::Device::new_cuda(0).context("--device cuda (build with `--features cuda`)")
        }
        other => anyhow::bail!("--device {other}: expected `cpu` or `cuda`"),
    }
}

/// Renders training events as one progress bar per epoch (hidden when stderr
/// is not a terminal) and a line per finished epoch.
pub struct TrainProgress {
    bar: Option<ProgressBar>,
    pub quiet: bool,
}

impl TrainProgress {
    pub fn new(quiet: bool) -> Self {
        Self { bar: None, quiet }
    }

    pub fn observe(&mut self, event: Event) {
        match event {
            Event::EpochStart {
                epoch,
                epochs,
                batches,
            } => {
                let bar = if self.quiet {
                    ProgressBar::hidden()
                } else {
                    ProgressBar::new(batches as u64)
                };
                bar.set_style(
                    ProgressStyle::with_template(
                        "epoch {prefix} [{bar:30}] {pos}/{len} batches {msg} ({eta})",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(format!("{}/{}", epoch + 1, epochs));
                bar.enable_steady_tick(Duration::from_millis(200));
                self.bar = Some(bar);
            }
            Event::Step { loss, .. } => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                    bar.set_message(format!("loss {loss:.3}"));
                }
            }
            Event::Evaluating => {
                if let Some(bar) = &self.bar {
                    bar.set_message("evaluating");
                }
            }
            Event::EpochEnd(m) => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                if !self.quiet {
                    eprintln!("{}", epoch_line(m));
                }
            }
        }
    }
}

pub fn epoch_line(m: &EpochMetrics) -> String {
    format!(
        "epoch {:>3}  lr {:.4}  train loss {:.4} acc {:>6.2}%  test loss {:.4} acc {:>6.2}%  {:.1}s  {:.0} img/s",
        m.epoch + 1,
        m.lr,
        m.train_loss,
        100.0 * m.train_accuracy,
        m.test_loss,
        100.0 * m.test_accuracy,
        m.seconds,
        m.images_per_second
    )
}

/// The test split of `--data`, checked to fit an INT8 model's input.
pub fn int8_test_images(
    data: &str,
    model: &repopt_int8::Int8Model,
) -> anyhow::Result<repopt_data::Dataset> {
    let source: DataSource = data.parse().with_context(|| format!("--data {data}"))?;
    let test = source
        .load()
        .with_context(|| format!("loading --data {data}"))?
        .test;
    repopt_quant::deploy::check_images(
        &test.name,
        test.height,
        test.width,
        test.channels,
        model.input.size,
        model.input.channels,
    )?;
    Ok(test)
}

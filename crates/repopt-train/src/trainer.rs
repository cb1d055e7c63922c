//! The training loop: epochs of RepOpt-SGD (or plain SGD) steps with a cosine
//! schedule and label smoothing, evaluation, metrics and checkpoints.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use repopt_data::{Augment, BatchConfig, Dataset, Normalization};
use repopt_spec::ModelSpec;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, CheckpointMeta, CHECKPOINT_FORMAT_VERSION};
use crate::error::{Error, Result};
use crate::loss::{correct, cross_entropy};
use crate::model::{Arch, Network};
use crate::optim::{RepOptSgd, SgdConfig};
use crate::scales::Scales;
use crate::schedule::CosineWarmup;

/// Everything that defines a training run (stored in every checkpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub arch: Arch,
    pub spec: ModelSpec,
    /// Scales file giving RepOpt-SGD's multipliers (RepOpt-VGG only); none
    /// means plain SGD with PyTorch's default initialisation.
    pub scales: Option<String>,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub warmup_epochs: usize,
    pub label_smoothing: f64,
    pub sgd: SgdConfig,
    pub seed: u64,
    pub augment: Augment,
    /// Where the data came from (informational, e.g. `embedded`).
    pub data: String,
}

impl TrainConfig {
    /// Defaults for a quick run of `spec` (the paper's optimizer settings,
    /// 3 epochs, batch 64).
    pub fn new(arch: Arch, spec: ModelSpec) -> Self {
        Self {
            arch,
            spec,
            scales: None,
            epochs: 3,
            batch_size: 64,
            lr: 0.1,
            warmup_epochs: 1,
            label_smoothing: 0.1,
            sgd: SgdConfig::default(),
            seed: 0,
            augment: Augment::standard(2),
            data: "embedded".into(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        self.spec.validate()?;
        if self.batch_size == 0 || self.epochs == 0 {
            return Err(Error::Config(format!(
                "batch size ({}) and epochs ({}) must be at least 1",
                self.batch_size, self.epochs
            )));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::Config(format!(
                "learning rate {} must be positive",
                self.lr
            )));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(Error::Config(format!(
                "label smoothing {} must be in [0, 1)",
                self.label_smoothing
            )));
        }
        if self.scales.is_some() && self.arch != Arch::RepOptVgg {
            return Err(Error::Config(format!(
                "scales only apply to RepOpt-VGG, not {}",
                self.arch.label()
            )));
        }
        Ok(())
    }
}

/// One row of the metrics log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub seconds: f64,
    pub images_per_second: f64,
}

impl EpochMetrics {
    pub const CSV_HEADER: &'static str =
        "epoch,lr,train_loss,train_accuracy,test_loss,test_accuracy,seconds,images_per_second";
    pub fn csv_row(&self) -> String {
        format!(
            "{},{:.6},{:.5},{:.5},{:.5},{:.5},{:.3},{:.1}",
            self.epoch,
            self.lr,
            self.train_loss,
            self.train_accuracy,
            self.test_loss,
            self.test_accuracy,
            self.seconds,
            self.images_per_second
        )
    }
}

/// What the loop reports while it runs, for progress bars.
pub enum Event<'a> {
    EpochStart {
        epoch: usize,
        epochs: usize,
        batches: usize,
    },
    Step {
        batch: usize,
        loss: f64,
    },
    Evaluating,
    EpochEnd(&'a EpochMetrics),
}

pub struct Trainer {
    pub config: TrainConfig,
    pub net: Network,
    pub normalization: Normalization,
    opt: RepOptSgd,
    pub history: Vec<EpochMetrics>,
    epochs_done: usize,
}

impl Trainer {
    /// A fresh run; `scales` must be given iff `config.scales` is set.
    pub fn new(
        config: TrainConfig,
        normalization: Normalization,
        scales: Option<&Scales>,
        dev: &Device,
    ) -> Result<Self> {
        config.validate()?;
        normalization
            .validate(config.spec.in_channels)
            .map_err(|e| {
                Error::Config(format!(
                    "normalisation does not fit model `{}`: {e}",
                    config.spec.name
                ))
            })?;
        let net = Network::new(config.arch, &config.spec, scales, config.seed, dev)?;
        let opt = RepOptSgd::new(net.params(), config.sgd)?;
        Ok(Self {
            config,
            net,
            normalization,
            opt,
            history: Vec::new(),
            epochs_done: 0,
        })
    }

    /// Continues a run from its checkpoint folder.
    pub fn resume(dir: &Path, dev: &Device) -> Result<Self> {
        let ck = Checkpoint::load(dir, dev)?;
        let net = ck.network(dev)?;
        let mut opt = RepOptSgd::new(net.params(), ck.meta.config.sgd)?;
        opt.load_state(&ck.tensors)?;
        opt.steps = ck.meta.steps;
        Ok(Self {
            config: ck.meta.config,
            net,
            normalization: ck.meta.normalization,
            opt,
            history: ck.meta.history,
            epochs_done: ck.meta.epoch,
        })
    }

    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    pub fn finished(&self) -> bool {
        self.epochs_done >= self.config.epochs
    }

    fn schedule(&self, batches_per_epoch: usize) -> CosineWarmup {
        CosineWarmup {
            base_lr: self.config.lr,
            warmup_steps: self.config.warmup_epochs * batches_per_epoch,
            total_steps: self.config.epochs * batches_per_epoch,
        }
    }

    fn check_data(&self, data: &Dataset) -> Result<()> {
        let s = &self.config.spec;
        if data.channels != s.in_channels
            || data.height != s.image_size
            || data.width != s.image_size
        {
            return Err(Error::Config(format!(
                "data `{}` has {}x{}x{} images but model `{}` expects {}x{}x{}",
                data.name,
                data.channels,
                data.height,
                data.width,
                s.name,
                s.in_channels,
                s.image_size,
                s.image_size
            )));
        }
        if data.classes > s.classes {
            return Err(Error::Config(format!(
                "data `{}` has {} classes but model `{}` has {} outputs",
                data.name, data.classes, s.name, s.classes
            )));
        }
        Ok(())
    }

    /// One optimizer step on a batch; returns (loss, correct).
    pub fn step(&mut self, images: &Tensor, labels: &[u32], lr: f64) -> Result<(f64, usize)> {
        let logits = self.net.forward(images, true)?;
        let loss = cross_entropy(&logits, labels, self.config.label_smoothing)?;
        let grads = loss.backward()?;
        self.opt.step(&grads, lr)?;
        Ok((loss.to_scalar::<f32>()? as f64, correct(&logits, labels)?))
    }

    /// Trains the next epoch and evaluates on `test`.
    pub fn train_epoch(
        &mut self,
        train: &Dataset,
        test: &Dataset,
        observe: &mut dyn FnMut(Event),
    ) -> Result<EpochMetrics> {
        self.check_data(train)?;
        let epoch = self.epochs_done;
        let batch_config = BatchConfig::train(self.config.seed, epoch, self.config.augment);
        let batches = train
            .batches(self.config.batch_size, &batch_config, &self.normalization)
            .map_err(|e| Error::Config(e.to_string()))?;
        let n_batches = batches.num_batches();
        if n_batches == 0 {
            return Err(Error::Config(format!(
                "training set `{}` has {} images, fewer than one batch of {}",
                train.name,
                train.len(),
                self.config.batch_size
            )));
        }
        let schedule = self.schedule(n_batches);
        observe(Event::EpochStart {
            epoch,
            epochs: self.config.epochs,
            batches: n_batches,
        });
        let start = Instant::now();
        let (mut loss_sum, mut hits, mut seen, mut lr) = (0.0, 0usize, 0usize, 0.0);
        for (i, mut batch) in batches.enumerate() {
            lr = schedule.lr(epoch * n_batches + i);
            let images = batch_tensor(&mut batch, self.net.device())?;
            let (loss, ok) = self.step(&images, &batch.labels, lr)?;
            if !loss.is_finite() {
                return Err(Error::Config(format!(
                    "training diverged at epoch {epoch}, batch {i} (loss {loss}); lower the learning rate"
                )));
            }
            loss_sum += loss * batch.size as f64;
            hits += ok;
            seen += batch.size;
            observe(Event::Step { batch: i, loss });
        }
        let seconds = start.elapsed().as_secs_f64();
        observe(Event::Evaluating);
        let (test_loss, test_accuracy) = self.evaluate(test)?;
        self.epochs_done += 1;
        let m = EpochMetrics {
            epoch,
            lr,
            train_loss: loss_sum / seen as f64,
            train_accuracy: hits as f64 / seen as f64,
            test_loss,
            test_accuracy,
            seconds,
            images_per_second: seen as f64 / seconds,
        };
        observe(Event::EpochEnd(&m));
        self.history.push(m.clone());
        Ok(m)
    }

    /// (mean loss without smoothing, top-1 accuracy) in eval mode.
    pub fn evaluate(&mut self, data: &Dataset) -> Result<(f64, f64)> {
        evaluate(&mut self.net, data, &self.normalization)
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let mut tensors = self.net.state()?;
        tensors.extend(self.opt.state());
        let meta = CheckpointMeta {
            format_version: CHECKPOINT_FORMAT_VERSION,
            arch: self.config.arch,
            spec: self.config.spec.clone(),
            config: self.config.clone(),
            normalization: self.normalization.clone(),
            epoch: self.epochs_done,
            steps: self.opt.steps,
            history: self.history.clone(),
        };
        Checkpoint::save(dir, &meta, &tensors)
    }
}

/// Evaluates any network on a dataset: (mean cross-entropy, top-1 accuracy).
pub fn evaluate(net: &mut Network, data: &Dataset, norm: &Normalization) -> Result<(f64, f64)> {
    let (mut loss_sum, mut hits) = (0.0, 0usize);
    let batches = data
        .eval_batches(256, norm)
        .map_err(|e| Error::Config(e.to_string()))?;
    for mut batch in batches {
        let images = batch_tensor(&mut batch, net.device())?;
        let logits = net.forward(&images, false)?.detach();
        loss_sum += cross_entropy(&logits, &batch.labels, 0.0)?.to_scalar::<f32>()? as f64
            * batch.size as f64;
        hits += correct(&logits, &batch.labels)?;
    }
    let n = data.len().max(1) as f64;
    Ok((loss_sum / n, hits as f64 / n))
}

/// Appends one epoch to `metrics.jsonl` and `metrics.csv` in `dir`.
pub fn append_metrics(dir: &Path, m: &EpochMetrics) -> Result<()> {
    use std::io::Write;
    let open = |name: &str| -> Result<(std::fs::File, PathBuf, bool)> {
        let path = dir.join(name);
        let fresh = !path.exists();
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok((f, path, fresh))
    };
    let (mut f, path, _) = open("metrics.jsonl")?;
    let line = serde_json::to_string(m).map_err(|e| Error::Config(e.to_string()))?;
    writeln!(f, "{line}").map_err(|e| Error::io(&path, e))?;
    let (mut f, path, fresh) = open("metrics.csv")?;
    if fresh {
        writeln!(f, "{}", EpochMetrics::CSV_HEADER).map_err(|e| Error::io(&path, e))?;
    }
    writeln!(f, "{}", m.csv_row()).map_err(|e| Error::io(&path, e))
}

/// A channels-last batch `[N, H, W, C]` as a tensor.
/// (Takes the pixels out of the batch to avoid a copy.)
pub fn batch_tensor(batch: &mut repopt_data::Batch, dev: &Device) -> Result<Tensor> {
    let [n, h, w, c] = batch.shape();
    Ok(Tensor::from_vec(
        std::mem::take(&mut batch.images),
        (n, h, w, c),
        dev,
    )?)
}

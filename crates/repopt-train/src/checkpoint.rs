//! Checkpoints: a folder with `model.safetensors` (weights in PyTorch layout,
//! BN statistics, optimizer state) and `checkpoint.json` (model spec, training
//! configuration, progress, metrics). Both files are written atomically.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use repopt_data::Normalization;
use serde::{Deserialize, Serialize};

use crate::error::{write_atomic, Error, Result};
use crate::model::{Arch, Network};
use crate::trainer::{EpochMetrics, TrainConfig};

/// Version of the checkpoint metadata; other versions are rejected.
pub const CHECKPOINT_FORMAT_VERSION: u32 = 1;
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const META_FILE: &str = "checkpoint.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointMeta {
    pub format_version: u32,
    pub arch: Arch,
    pub spec: repopt_spec::ModelSpec,
    pub config: TrainConfig,
    pub normalization: Normalization,
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub steps: usize,
    pub history: Vec<EpochMetrics>,
}

pub struct Checkpoint {
    pub meta: CheckpointMeta,
    pub tensors: HashMap<String, Tensor>,
    pub dir: PathBuf,
}

impl Checkpoint {
    pub fn save(
        dir: &Path,
        meta: &CheckpointMeta,
        tensors: &HashMap<String, Tensor>,
    ) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let bytes = safetensors_bytes(tensors)?;
        write_atomic(&dir.join(WEIGHTS_FILE), &bytes)?;
        let json =
            serde_json::to_vec_pretty(meta).map_err(|e| Error::checkpoint(dir, e.to_string()))?;
        write_atomic(&dir.join(META_FILE), &json)
    }

    /// Reads a checkpoint folder (or the path of either of its two files).
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let dir = if path.is_file() {
            path.parent().unwrap_or(Path::new(".")).to_path_buf()
        } else {
            path.to_path_buf()
        };
        let meta_path = dir.join(META_FILE);
        if !meta_path.exists() {
            return Err(Error::checkpoint(
                &dir,
                format!(
                    "no {META_FILE} here; is this a checkpoint folder written by `repopt train`?"
                ),
            ));
        }
        let text = std::fs::read_to_string(&meta_path).map_err(|e| Error::io(&meta_path, e))?;
        let version: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::checkpoint(&meta_path, format!("not valid JSON: {e}")))?;
        match version.get("format_version").and_then(|v| v.as_u64()) {
            Some(v) if v == CHECKPOINT_FORMAT_VERSION as u64 => {}
            Some(v) => {
                return Err(Error::checkpoint(
                    &meta_path,
                    format!(
                    "format_version {v} is not supported (expected {CHECKPOINT_FORMAT_VERSION})"
                ),
                ))
            }
            None => {
                return Err(Error::checkpoint(
                    &meta_path,
                    "missing field `format_version`",
                ))
            }
        }
        let meta: CheckpointMeta = serde_json::from_value(version)
            .map_err(|e| Error::checkpoint(&meta_path, e.to_string()))?;
        meta.spec.validate()?;
        let weights = dir.join(WEIGHTS_FILE);
        if !weights.exists() {
            return Err(Error::checkpoint(&weights, "file not found"));
        }
        let tensors = candle_core::safetensors::load(&weights, device).map_err(|e| {
            Error::checkpoint(&weights, format!("not a readable safetensors file: {e}"))
        })?;
        Ok(Self { meta, tensors, dir })
    }

    /// The trained network (eval-ready), weights checked against the spec.
    pub fn network(&self, device: &Device) -> Result<Network> {
        let mut net = Network::new(self.meta.arch, &self.meta.spec, None, 0, device)?;
        net.load_state(&self.tensors, &self.dir.join(WEIGHTS_FILE))?;
        Ok(net)
    }
}

fn safetensors_bytes(tensors: &HashMap<String, Tensor>) -> Result<Vec<u8>> {
    // Candle writes to a path; serialise through a private temp file so the
    // public file is only ever replaced whole.
    let tmp = std::env::temp_dir().join(format!(
        "repopt-{}-{}.safetensors",
        std::process::id(),
        unique()
    ));
    candle_core::safetensors::save(tensors, &tmp)?;
    let bytes = std::fs::read(&tmp).map_err(|e| Error::io(&tmp, e));
    let _ = std::fs::remove_file(&tmp);
    bytes
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

//! `repopt multipliers`: the RepOpt-SGD gradient multipliers a scales file
//! implies, per layer, printed or exported as safetensors for inspection.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use candle_core::{Device, Tensor};
use clap::Args;
use repopt_spec::{ModelSpec, PRESETS};
use repopt_train::scales::multiplier_oihw;
use repopt_train::Scales;
use serde::Serialize;

#[derive(Args)]
pub struct MultipliersArgs {
    /// Scales file: ours (safetensors) or the authors' PyTorch archive (.pth).
    pub scales: PathBuf,
    /// Preset or spec file the scales belong to [default: the preset they fit].
    #[arg(long)]
    pub model: Option<String>,
    /// Write every layer's multiplier `[O, I, 3, 3]` to this safetensors file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the per-layer summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct LayerSummary {
    layer: String,
    out_channels: usize,
    in_channels: usize,
    identity: bool,
    centre_min: f64,
    centre_mean: f64,
    centre_max: f64,
    surround_min: f64,
    surround_mean: f64,
    surround_max: f64,
}

fn stats(values: impl Iterator<Item = f64>) -> (f64, f64, f64) {
    let (mut lo, mut hi, mut sum, mut n) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0usize);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
        sum += v;
        n += 1;
    }
    (lo, sum / n.max(1) as f64, hi)
}

fn find_spec(scales: &Scales, path: &Path, model: Option<&str>) -> anyhow::Result<ModelSpec> {
    if let Some(m) = model {
        let spec = ModelSpec::resolve(m)?;
        scales.validate(&spec, path)?;
        return Ok(spec);
    }
    PRESETS
        .iter()
        .filter_map(|p| repopt_spec::preset(p))
        .find(|spec| scales.validate(spec, path).is_ok())
        .with_context(|| {
            format!(
                "{}: {} layers that fit no preset; name the model with --model (a preset or spec file)",
                path.display(),
                scales.layers.len()
            )
        })
}

pub fn run(args: MultipliersArgs) -> anyhow::Result<()> {
    let scales = Scales::load(&args.scales)?;
    let spec = find_spec(&scales, &args.scales, args.model.as_deref())?;
    let mut summaries = Vec::new();
    let mut tensors = HashMap::new();
    for (layer, s) in spec.conv_layers().iter().zip(&scales.layers) {
        let m = multiplier_oihw(layer, s);
        let centre = stats(
            m.iter()
                .enumerate()
                .filter(|(k, _)| k % 9 == 4)
                .map(|(_, &v)| v),
        );
        let surround = stats(
            m.iter()
                .enumerate()
                .filter(|(k, _)| k % 9 != 4)
                .map(|(_, &v)| v),
        );
        summaries.push(LayerSummary {
            layer: s.name.clone(),
            out_channels: layer.out_channels,
            in_channels: layer.in_channels,
            identity: layer.has_identity,
            centre_min: centre.0,
            centre_mean: centre.1,
            centre_max: centre.2,
            surround_min: surround.0,
            surround_mean: surround.1,
            surround_max: surround.2,
        });
        if args.out.is_some() {
            let shape = (layer.out_channels, layer.in_channels, 3, 3);
            let t = Tensor::from_vec(m, shape, &Device::Cpu)?.to_dtype(candle_core::DType::F32)?;
            tensors.insert(format!("{}.multiplier", s.name), t);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summaries)?);
    } else {
        println!(
            "multipliers of {} for model `{}`:",
            args.scales.display(),
            spec.name
        );
        println!(
            "{:<10} {:>5} {:>5} {:>3}  {:>26}  {:>26}",
            "layer", "out", "in", "id", "centre min/mean/max", "surround min/mean/max"
        );
        for s in &summaries {
            println!(
                "{:<10} {:>5} {:>5} {:>3}  {:>8.4} {:>8.4} {:>8.4}  {:>8.4} {:>8.4} {:>8.4}",
                s.layer,
                s.out_channels,
                s.in_channels,
                if s.identity { "yes" } else { "" },
                s.centre_min,
                s.centre_mean,
                s.centre_max,
                s.surround_min,
                s.surround_mean,
                s.surround_max
            );
        }
    }
    if let Some(out) = &args.out {
        let tmp = out.with_extension("partial");
        candle_core::safetensors::save(&tensors, &tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
        eprintln!(
            "{} multiplier tensors written to {}",
            tensors.len(),
            out.display()
        );
    }
    Ok(())
}

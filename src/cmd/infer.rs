//! `repopt infer`: run an INT8 model (golden engine or Candle INT8 engine) on
//! a data set or on image files; write logits and predictions.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use repopt_int8::{golden, Int8Model};
use repopt_quant::deploy::{argmax, check_images};
use repopt_quant::CandleInt8;

use super::common::device;

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum EngineArg {
    /// The golden integer engine (plain loops, the reference).
    Golden,
    /// The Candle INT8 engine (batched; CPU or CUDA).
    Candle,
}

#[derive(Args, Clone)]
pub struct InferArgs {
    /// INT8 model folder (manifest.json + model.safetensors).
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long, value_enum, default_value = "candle")]
    pub engine: EngineArg,
    /// Device of the Candle engine (`cpu`, `cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Data set whose TEST split is classified (see `repopt train --help`).
    #[arg(long, default_value = "embedded")]
    pub data: String,
    /// Classify only the first N test images (class-balanced).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Image files instead of --data: IDX u8 files (`[N, H, W]` or
    /// `[N, H, W, C]`, optionally gzipped) or raw HWC u8 files of whole images.
    #[arg(long, num_args = 1..)]
    pub images: Vec<PathBuf>,
    /// Output folder: predictions.csv and predictions.json.
    #[arg(long, default_value = "runs/infer")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
}

/// Images (HWC u8, back to back), their count and labels (when known).
struct Inputs {
    pixels: Vec<u8>,
    count: usize,
    labels: Option<Vec<u8>>,
    source: String,
}

fn read_image_files(files: &[PathBuf], model: &Int8Model) -> anyhow::Result<Inputs> {
    let (s, c) = (model.input.size, model.input.channels);
    let per = s * s * c;
    let mut pixels = Vec::new();
    for f in files {
        let bytes = repopt_data::idx::read_maybe_gz(f)?;
        let is_idx = bytes.len() >= 4 && bytes[0] == 0 && bytes[1] == 0 && bytes[2] == 0x08;
        if is_idx {
            let ndims = bytes[3];
            let arr = repopt_data::idx::parse_idx(&bytes, ndims, f, "images")?;
            let (h, w, ch) = match arr.dims[..] {
                [_, h, w] => (h, w, 1),
                [_, h, w, ch] => (h, w, ch),
                ref d => anyhow::bail!(
                    "{}: IDX images must be [N, H, W] or [N, H, W, C], found {d:?}",
                    f.display()
                ),
            };
            check_images(&f.display().to_string(), h, w, ch, s, c)?;
            pixels.extend(arr.data);
        } else {
            if bytes.is_empty() || bytes.len() % per != 0 {
                anyhow::bail!(
                    "{}: {} bytes is not a whole number of {s}x{s}x{c} images ({per} bytes each) and not an IDX file",
                    f.display(),
                    bytes.len()
                );
            }
            pixels.extend(bytes);
        }
    }
    Ok(Inputs {
        count: pixels.len() / per,
        pixels,
        labels: None,
        source: format!("{} file(s)", files.len()),
    })
}

fn read_data(args: &InferArgs, model: &Int8Model) -> anyhow::Result<Inputs> {
    let mut test = super::common::int8_test_images(&args.data, model)?;
    if let Some(n) = args.limit {
        test = test.subset(n);
    }
    Ok(Inputs {
        count: test.len(),
        pixels: test.images.clone(),
        labels: Some(test.labels.clone()),
        source: format!("{} test split", args.data),
    })
}

/// int32 logits of every image with the chosen engine.
pub fn logits(
    model: &Int8Model,
    engine: EngineArg,
    device_name: &str,
    pixels: &[u8],
    count: usize,
    batch_size: usize,
) -> anyhow::Result<Vec<Vec<i32>>> {
    let per = pixels.len() / count.max(1);
    match engine {
        EngineArg::Golden => pixels
            .chunks(per.max(1))
            .enumerate()
            .map(|(i, img)| {
                golden::run_network(model, img)
                    .map(|o| o.logits)
                    .with_context(|| format!("image {i}"))
            })
            .collect(),
        EngineArg::Candle => {
            let dev = device(device_name)?;
            let e = CandleInt8::new(model, &dev)?;
            let mut out = Vec::with_capacity(count);
            for (b, chunk) in pixels.chunks(per * batch_size.max(1)).enumerate() {
                let n = chunk.len() / per.max(1);
                out.extend(e.run(chunk, n, false, b * batch_size)?.logits_i32()?);
            }
            Ok(out)
        }
    }
}

pub fn run(args: InferArgs) -> anyhow::Result<()> {
    let model = Int8Model::load(&args.model)
        .with_context(|| format!("--model {}", args.model.display()))?;
    let inputs = if args.images.is_empty() {
        read_data(&args, &model)?
    } else {
        read_image_files(&args.images, &model)?
    };
    if inputs.count == 0 {
        anyhow::bail!("no images to classify ({})", inputs.source);
    }
    let t = Instant::now();
    let logits = logits(
        &model,
        args.engine,
        &args.device,
        &inputs.pixels,
        inputs.count,
        args.batch_size,
    )?;
    let secs = t.elapsed().as_secs_f64();
    let preds: Vec<usize> = logits.iter().map(|l| argmax(l)).collect();
    write_outputs(&args.out, &model, &logits, &preds, inputs.labels.as_deref())?;
    let engine = match args.engine {
        EngineArg::Golden => "golden".to_string(),
        EngineArg::Candle => format!("candle-{}", args.device),
    };
    println!(
        "{} image(s) from {} with the {engine} engine in {secs:.2}s ({:.0} img/s); wrote {}",
        inputs.count,
        inputs.source,
        inputs.count as f64 / secs.max(1e-9),
        args.out.display()
    );
    if let Some(labels) = &inputs.labels {
        let hits = preds
            .iter()
            .zip(labels)
            .filter(|(p, &l)| **p == usize::from(l))
            .count();
        println!(
            "top-1 accuracy: {:.2}% ({hits}/{})",
            100.0 * hits as f64 / inputs.count.max(1) as f64,
            inputs.count
        );
    }
    Ok(())
}

fn write_outputs(
    out: &Path,
    model: &Int8Model,
    logits: &[Vec<i32>],
    preds: &[usize],
    labels: Option<&[u8]>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let k = model.head.classes;
    let mut csv = String::from("index,label,prediction");
    for c in 0..k {
        let _ = write!(csv, ",logit{c}");
    }
    csv.push('\n');
    let mut rows = Vec::with_capacity(preds.len());
    for (i, (l, &p)) in logits.iter().zip(preds).enumerate() {
        let label = labels.map(|v| v[i]);
        let _ = write!(
            csv,
            "{i},{},{p}",
            label.map(|l| l.to_string()).unwrap_or_default()
        );
        for v in l {
            let _ = write!(csv, ",{v}");
        }
        csv.push('\n');
        rows.push(serde_json::json!({
            "index": i, "label": label, "prediction": p, "logits": l,
        }));
    }
    let json = serde_json::json!({
        "model": model.name,
        "calibration": model.calibration,
        "logit_scale": model.head.logit_scale(),
        "images": rows,
    });
    let p = out.join("predictions.csv");
    std::fs::write(&p, csv).with_context(|| format!("writing {}", p.display()))?;
    let p = out.join("predictions.json");
    std::fs::write(&p, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("writing {}", p.display()))?;
    Ok(())
}

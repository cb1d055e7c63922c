//! `repopt verify`: the INT8 rungs against the golden engine, layer by layer.
//! Rungs are a list: the Candle engine, then with `--chip` the simulator's
//! functional path and the HLS C simulation of that chip.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use repopt_int8::Int8Model;
use repopt_quant::verify::{verify, CandleRung, Rung};

use super::common::device;
use super::rungs::{HlsRung, SimRung};

#[derive(Args, Clone)]
pub struct VerifyArgs {
    /// INT8 model folder (manifest.json + model.safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// Number of test images to compare.
    #[arg(long, default_value_t = 16)]
    pub images: usize,
    /// Data set whose test images are used (`random` for random pixels).
    #[arg(long, default_value = "embedded")]
    pub data: String,
    /// Device of the Candle rung (`cpu`, `cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Also check the simulator's functional path and the HLS C simulation of
    /// this chip (preset or TOML file) as the last rungs of the ladder.
    #[arg(long)]
    pub chip: Option<String>,
    /// Also write the result as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

fn images(args: &VerifyArgs, model: &Int8Model) -> anyhow::Result<Vec<Vec<u8>>> {
    if args.data == "random" {
        return Ok((0..args.images as u64)
            .map(|k| repopt_int8::testutil::random_image(k, model))
            .collect());
    }
    let test = super::common::int8_test_images(&args.data, model)?;
    Ok((0..args.images.min(test.len()))
        .map(|i| test.image(i).to_vec())
        .collect())
}

/// The rungs checked against the golden engine, in order.
fn rungs(args: &VerifyArgs, model: &Int8Model) -> anyhow::Result<Vec<Box<dyn Rung>>> {
    let dev = device(&args.device)?;
    let mut rungs: Vec<Box<dyn Rung>> = vec![Box::new(CandleRung::new(model, &dev)?)];
    if let Some(name) = &args.chip {
        let chip = repopt_sim::ChipSpec::resolve(name).context("resolving --chip")?;
        rungs.push(Box::new(SimRung { chip: chip.clone() }));
        match HlsRung::unavailable() {
            None => rungs.push(Box::new(HlsRung { chip })),
            Some(why) => eprintln!("hls-csim rung skipped: {why}"),
        }
    }
    Ok(rungs)
}

pub fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let model = Int8Model::load(&args.model)
        .with_context(|| format!("--model {}", args.model.display()))?;
    let imgs = images(&args, &model)?;
    let mut rungs = rungs(&args, &model)?;
    let report = verify(&model, &imgs, &mut rungs)?;
    for line in report.lines() {
        println!("{line}");
    }
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if !report.all_match() {
        anyhow::bail!("verification failed: an implementation differs from the golden engine");
    }
    Ok(())
}

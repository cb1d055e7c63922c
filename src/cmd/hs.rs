//! `repopt hs`: Hyper-Search. Trains the HS model (trainable per-channel
//! scales s, t, d; plain SGD) and writes the last epoch's scales, which
//! `repopt train --scales` turns into RepOpt-SGD's gradient multipliers.

use anyhow::Context;
use clap::Args;
use repopt_train::Arch;

use super::train::{out_dir, summary, train, ArchArg, TrainArgs};

/// File name of the scales written into the run folder.
pub const SCALES_FILE: &str = "scales.safetensors";

#[derive(Args)]
pub struct HsArgs {
    #[command(flatten)]
    pub train: TrainArgs,
}

pub fn run(mut args: HsArgs) -> anyhow::Result<()> {
    if args.train.arch != ArchArg::RepoptVgg && args.train.arch != ArchArg::HyperSearch {
        anyhow::bail!("`repopt hs` always trains the Hyper-Search model; drop --arch");
    }
    args.train.arch = ArchArg::HyperSearch;
    let out = out_dir(&args.train, "runs/hs");
    let trainer = train(&args.train, &out)?;
    summary(&trainer, &out);
    let scales = trainer
        .net
        .scales()?
        .context("the Hyper-Search model has scales")?;
    debug_assert_eq!(trainer.config.arch, Arch::HyperSearch);
    let path = out.join(SCALES_FILE);
    scales.save(&path)?;
    println!(
        "scales of {} layers written to {} (train with `repopt train --model {} --scales {}`)",
        scales.layers.len(),
        path.display(),
        args.train.model,
        path.display()
    );
    Ok(())
}

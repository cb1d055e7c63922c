//! `repopt hls`: generate the Vitis HLS project of a chip's conv-unit array
//! (kernel, testbench, data from the simulator, build scripts, resource
//! estimate), and optionally run its C simulation with g++.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use repopt_hls::{csim, demo_model, generate};
use repopt_sim::{functional, ChipSpec};

#[derive(Args, Debug)]
pub struct HlsArgs {
    /// Chip preset (edge-fpga, dc-fpga, asic) or path to a chip TOML file.
    #[arg(long, default_value = "edge-fpga")]
    pub chip: String,
    /// INT8 model directory (repopt-int8 file set) the testbench runs;
    /// without it, a small random network with odd shapes.
    #[arg(long)]
    pub int8: Option<PathBuf>,
    /// Project folder to write (replaced as a whole, never left half-written).
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the test image (and of the random network without --int8).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also compile and run the C simulation (g++ and the ap_types headers of
    /// scripts/fetch_ap_types.sh).
    #[arg(long)]
    pub csim: bool,
}

pub fn run(args: HlsArgs) -> anyhow::Result<()> {
    let chip = ChipSpec::resolve(&args.chip).context("resolving --chip")?;
    let model = match &args.int8 {
        Some(dir) => functional::load_model(dir)
            .with_context(|| format!("loading INT8 model {}", dir.display()))?,
        None => demo_model(args.seed),
    };
    let project = generate(&chip, &model, args.seed, &args.out)
        .with_context(|| format!("generating {}", args.out.display()))?;
    let r = &project.report;
    println!(
        "wrote {} ({} files): chip {} ({} units x {} x {}), network {} ({} layers)",
        args.out.display(),
        project.files.len(),
        r.chip,
        r.kernel.units,
        r.kernel.pi,
        r.kernel.po,
        r.network,
        r.layers.len()
    );
    println!(
        "{:<5} {:<14} {:>5} {:>5} {:>4} {:>3} {:>6} {:>6} {:>5} {:>12} {:>12}",
        "layer", "name", "I", "O", "H", "s", "passes", "bands", "rows", "iterations", "cycles"
    );
    for l in &r.layers {
        println!(
            "{:<5} {:<14} {:>5} {:>5} {:>4} {:>3} {:>6} {:>6} {:>5} {:>12} {:>12}",
            l.index,
            l.name,
            l.conv.in_channels,
            l.conv.out_channels,
            l.conv.in_size,
            l.conv.stride,
            l.schedule.passes,
            l.schedule.bands,
            l.schedule.band_rows,
            l.compute.iterations,
            l.compute.total()
        );
    }
    print!("{}", r.resources.table());
    if args.csim {
        let report = csim::run_csim(&args.out)?;
        print!("{}", report.log);
        println!("{}", report.summary());
    }
    Ok(())
}

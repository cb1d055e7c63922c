//! `repopt sim`: run a network on a chip description and report cycles,
//! utilisation, DRAM traffic and energy (table, JSON, CSV, SVG plots).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use repopt_sim::{
    analytic, event, functional, scalesim, svg, write_atomic, ChipSpec, NetworkReport, Workload,
};
use repopt_spec::ModelSpec;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Level {
    /// Closed-form per-layer model (what sweeps use).
    Analytic,
    /// Tile-level event simulation (every transfer and tile).
    Event,
}

/// Where the network comes from, shared by `sim` and `sweep`.
#[derive(Args, Debug, Clone)]
pub struct WorkloadArgs {
    /// Preset name (tiny, small, A0..B3, L1, L2) or path to a JSON spec file.
    #[arg(long, default_value = "tiny", conflicts_with = "topology")]
    pub model: String,
    /// A SCALE-Sim topology CSV instead of --model (3x3 layers, padded sizes).
    #[arg(long)]
    pub topology: Option<PathBuf>,
    /// An INT8 model directory (repopt-int8 file set) instead of --model: its
    /// layers are timed, and `sim` also runs them functionally.
    #[arg(long, conflicts_with_all = ["topology", "image_size"])]
    pub int8: Option<PathBuf>,
    /// Override the model's input image size (square).
    #[arg(long)]
    pub image_size: Option<usize>,
}

impl WorkloadArgs {
    pub fn load(&self) -> anyhow::Result<Workload> {
        if let Some(dir) = &self.int8 {
            let m = functional::load_model(dir)
                .with_context(|| format!("loading INT8 model {}", dir.display()))?;
            return Ok(functional::workload_of(&m));
        }
        if let Some(t) = &self.topology {
            if self.image_size.is_some() {
                bail!(
                    "--image-size applies to --model, not to --topology (the CSV fixes the sizes)"
                );
            }
            return Ok(scalesim::import_file(t)?);
        }
        let mut spec = ModelSpec::resolve(&self.model).context("resolving --model")?;
        if let Some(n) = self.image_size {
            spec.image_size = n;
            spec.validate()?;
        }
        Ok(Workload::from_spec(&spec))
    }
}

#[derive(Args, Debug)]
pub struct SimArgs {
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Chip preset (edge-fpga, dc-fpga, asic) or path to a chip TOML file.
    #[arg(long, default_value = "edge-fpga")]
    pub chip: String,
    /// Timing model of the report.
    #[arg(long, value_enum, default_value = "event")]
    pub level: Level,
    /// Directory for report.json, layers.csv, the SVG plots, chip.toml and topology.csv.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the report as JSON instead of a table.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print the per-layer CSV instead of a table.
    #[arg(long)]
    pub csv: bool,
    /// Write the workload as a SCALE-Sim topology CSV to this file.
    #[arg(long)]
    pub export_topology: Option<PathBuf>,
    /// With --int8: random images to run through the chip's functional path
    /// and the golden engine (every layer output must be bit-identical).
    #[arg(long, default_value_t = 1)]
    pub images: usize,
    /// Seed of the random images.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also write trace.csv (every weight load, input load, compute and store
    /// of the event simulation) into --out.
    #[arg(long, requires = "out")]
    pub trace: bool,
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    let p = dir.join(name);
    write_atomic(&p, text.as_bytes()).with_context(|| format!("writing {}", p.display()))
}

/// Writes every report file of `r` into `dir`.
pub fn write_report_files(
    dir: &Path,
    r: &NetworkReport,
    chip: &ChipSpec,
    w: &Workload,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write(dir, "report.json", &r.to_json())?;
    write(dir, "layers.csv", &r.to_csv())?;
    write(dir, "cycles.svg", &svg::cycles_by_cause(r))?;
    write(dir, "utilisation.svg", &svg::utilisation(r))?;
    write(dir, "roofline.svg", &svg::roofline(r, chip))?;
    write(dir, "chip.toml", &chip.to_toml())?;
    write(dir, "topology.csv", &scalesim::export(w))?;
    let plan = repopt_sim::schedule::network_plan(chip, w);
    write(
        dir,
        "schedule.json",
        &serde_json::to_string_pretty(&plan).context("serialising the schedule")?,
    )?;
    Ok(())
}

pub fn run(args: SimArgs) -> anyhow::Result<()> {
    let w = args.workload.load()?;
    let chip = ChipSpec::resolve(&args.chip).context("resolving --chip")?;
    if let Some(p) = &args.export_topology {
        write_atomic(p, scalesim::export(&w).as_bytes())
            .with_context(|| format!("writing {}", p.display()))?;
    }
    let a = analytic::simulate(&chip, &w)?;
    let e = event::simulate(&chip, &w)?;
    let (r, other) = match args.level {
        Level::Analytic => (&a, &e),
        Level::Event => (&e, &a),
    };
    if let Some(dir) = &args.out {
        write_report_files(dir, r, &chip, &w)?;
        if args.trace {
            write(dir, "trace.csv", &event::trace_csv(&chip, &w))?;
        }
    }
    let functional_line = match &args.workload.int8 {
        Some(dir) => {
            let m = functional::load_model(dir)?;
            let t0 = std::time::Instant::now();
            let layers = functional::check_random_images(&chip, &m, args.images, args.seed)
                .map_err(|e| anyhow::anyhow!("functional check failed: {e}"))?;
            Some(format!(
                "functional: {} image(s) bit-exact to the golden engine on all {layers} layers, pooled features and logits ({:.2} s)",
                args.images,
                t0.elapsed().as_secs_f64()
            ))
        }
        None => None,
    };
    if args.json {
        println!("{}", r.to_json());
    } else if args.csv {
        print!("{}", r.to_csv());
    } else {
        print!("{}", r.to_table());
        let dev = (a.total_cycles as f64 - e.total_cycles as f64) / e.total_cycles as f64;
        println!(
            "{:?} timing gives {} cycles ({:+.2}% analytic vs event)",
            other.level,
            other.total_cycles,
            100.0 * dev
        );
        if let Some(l) = &functional_line {
            println!("{l}");
        }
        if let Some(dir) = &args.out {
            println!(
                "wrote report.json, layers.csv, schedule.json, cycles.svg, utilisation.svg, roofline.svg, chip.toml, topology.csv{} to {}",
                if args.trace { ", trace.csv" } else { "" },
                dir.display()
            );
        }
    }
    Ok(())
}

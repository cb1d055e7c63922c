//! `repopt sweep`: a grid over chip parameters with the analytic model, in
//! parallel; every point and the Pareto fronts as CSV and SVG.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use repopt_sim::sweep::{self, SweepGrid};
use repopt_sim::{write_atomic, ChipSpec};

use super::sim::WorkloadArgs;

#[derive(Args, Debug)]
pub struct SweepArgs {
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Base chip (preset or TOML file); parameters not swept come from it.
    #[arg(long, default_value = "edge-fpga")]
    pub chip: String,
    /// Numbers of units, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub units: Vec<usize>,
    /// Input channels per unit per cycle (PI).
    #[arg(long, value_delimiter = ',')]
    pub pi: Vec<usize>,
    /// Output channels per unit per cycle (PO).
    #[arg(long, value_delimiter = ',')]
    pub po: Vec<usize>,
    /// DRAM bandwidths in GB/s.
    #[arg(long, value_delimiter = ',')]
    pub bw: Vec<f64>,
    /// Clocks in MHz.
    #[arg(long, value_delimiter = ',')]
    pub clock: Vec<f64>,
    /// Keep the base chip's buffer sizes (points that do not fit are marked
    /// infeasible) instead of growing them to what the network needs.
    #[arg(long)]
    pub keep_buffers: bool,
    /// Directory for points.csv, pareto_lanes.csv, pareto_energy.csv and the SVG plots.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: SweepArgs) -> anyhow::Result<()> {
    let w = args.workload.load()?;
    let base = ChipSpec::resolve(&args.chip).context("resolving --chip")?;
    let mut grid = SweepGrid::from_chip(&base);
    let or = |v: Vec<usize>, d: Vec<usize>| if v.is_empty() { d } else { v };
    grid.units = or(args.units, grid.units);
    grid.pi = or(args.pi, grid.pi);
    grid.po = or(args.po, grid.po);
    if !args.bw.is_empty() {
        grid.bandwidth_gb_per_s = args.bw;
    }
    if !args.clock.is_empty() {
        grid.clock_mhz = args.clock;
    }
    grid.fit_buffers = !args.keep_buffers;
    let n = grid.len();
    let t0 = Instant::now();
    let last = Mutex::new(Instant::now());
    let progress = |done: usize, total: usize| {
        let mut l = last.lock().unwrap();
        if l.elapsed().as_millis() >= 500 || done == total && t0.elapsed().as_millis() >= 500 {
            *l = Instant::now();
            eprint!("\rsweep: {done}/{total} points");
            if done == total {
                eprintln!();
            }
            let _ = std::io::stderr().flush();
        }
    };
    let r = sweep::run(&base, &w, &grid, Some(&progress))?;
    let secs = t0.elapsed().as_secs_f64();
    let feasible = r.points.iter().filter(|p| p.feasible).count();
    println!(
        "{}: {n} points on base chip {} ({feasible} feasible) in {:.1} ms",
        r.model,
        r.base_chip,
        secs * 1e3
    );
    if let Some(p) = r.points.iter().find(|p| !p.feasible) {
        println!("first infeasible point: {}", p.reason);
    }
    println!("Pareto front, frames/s vs MAC lanes:");
    println!(
        "{:>6} {:>4} {:>4} {:>8} {:>8} {:>9} {:>10} {:>7} {:>11}",
        "units", "pi", "po", "bw GB/s", "MHz", "lanes", "frames/s", "util%", "uJ/frame"
    );
    for &i in &r.front_lanes {
        let p = &r.points[i];
        println!(
            "{:>6} {:>4} {:>4} {:>8} {:>8} {:>9} {:>10.1} {:>7.1} {:>11.1}",
            p.units,
            p.pi,
            p.po,
            p.bandwidth_gb_per_s,
            p.clock_mhz,
            p.mac_lanes,
            p.frames_per_s,
            100.0 * p.utilisation,
            p.energy_uj
        );
    }
    println!(
        "Pareto front, frames/s vs energy per frame: {} points",
        r.front_energy.len()
    );
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (name, text) in [
            ("points.csv", r.points_csv()),
            ("pareto_lanes.csv", r.front_lanes_csv()),
            ("pareto_energy.csv", r.front_energy_csv()),
            ("pareto_lanes.svg", r.lanes_svg()),
            ("pareto_energy.svg", r.energy_svg()),
        ] {
            let p = dir.join(name);
            write_atomic(&p, text.as_bytes())
                .with_context(|| format!("writing {}", p.display()))?;
        }
        println!(
            "wrote points.csv, pareto_lanes.csv, pareto_energy.csv, pareto_lanes.svg, pareto_energy.svg to {}",
            dir.display()
        );
    }
    Ok(())
}

//! `repopt flow`: the main job end to end. Hyper-Search (or given scales),
//! RepOpt-VGG training, folding and INT8 quantisation, chip simulation, HLS
//! generation and the verification ladder, ending with a summary and a
//! report folder (JSON, CSV, and an HTML page with the plots).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use repopt_int8::Int8Model;
use repopt_quant::verify::{verify, CandleRung, Rung, VerifyReport};
use repopt_sim::{analytic, event, svg, write_atomic, ChipSpec, NetworkReport, Workload};
use serde::Serialize;
use serde_json::Value;

use super::common::DataArgs;
use super::quantize::{CalibrationArg, QuantizeArgs};
use super::rungs::{HlsRung, SimRung};
use super::train::{out_dir, train, ArchArg, TrainArgs};

#[derive(Args)]
pub struct FlowArgs {
    /// Plain model: preset or JSON spec file.
    #[arg(long, default_value = "tiny")]
    pub model: String,
    #[command(flatten)]
    pub data: DataArgs,
    /// Chip preset (edge-fpga, dc-fpga, asic) or chip TOML file.
    #[arg(long, default_value = "edge-fpga")]
    pub chip: String,
    /// Training epochs of RepOpt-VGG.
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Epochs of the brief Hyper-Search that gives RepOpt-SGD its scales.
    #[arg(long, default_value_t = 1)]
    pub hs_epochs: usize,
    /// Use this scales file instead of searching (ours, or the authors' .pth
    /// with --model B1/B2/L1/L2).
    #[arg(long)]
    pub scales: Option<PathBuf>,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 0.1)]
    pub lr: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// PTQ calibration method.
    #[arg(long, value_enum, default_value = "percentile")]
    pub calibration: CalibrationArg,
    /// Test images run through every rung of the verification ladder.
    #[arg(long, default_value_t = 8)]
    pub verify_images: usize,
    /// Output folder (hs/, train/, int8/, sim/, hls/, report/).
    #[arg(long, default_value = "runs/flow")]
    pub out: PathBuf,
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Serialize)]
struct RungLine {
    rung: String,
    status: String,
    detail: String,
}

#[derive(Serialize)]
struct FlowSummary {
    model: String,
    data: String,
    chip: String,
    scales: String,
    float_top1: f64,
    int8_top1: f64,
    latency_us: f64,
    frames_per_s: f64,
    utilisation: f64,
    energy_uj: f64,
    achieved_gops: f64,
    peak_gops: f64,
    dram_bytes: u64,
    event_vs_analytic: f64,
    hls_loop_check: String,
    ladder: Vec<RungLine>,
    ladder_passed: bool,
    folders: Vec<(String, String)>,
}

fn step(n: usize, what: &str, quiet: bool) {
    if !quiet {
        eprintln!("[{n}/6] {what}");
    }
}

fn train_args(
    args: &FlowArgs,
    arch: ArchArg,
    scales: &str,
    epochs: usize,
    out: PathBuf,
) -> TrainArgs {
    TrainArgs {
        model: args.model.clone(),
        arch,
        scales: scales.to_string(),
        data: args.data.clone(),
        epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        warmup_epochs: 1,
        weight_decay: 4e-5,
        momentum: 0.9,
        label_smoothing: 0.1,
        crop_pad: 2,
        no_flip: false,
        seed: args.seed,
        out: Some(out),
        resume: None,
        stop_after: None,
        device: "cpu".into(),
        quiet: args.quiet,
    }
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

pub fn run(args: FlowArgs) -> anyhow::Result<()> {
    let out = args.out.clone();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let chip = ChipSpec::resolve(&args.chip).context("resolving --chip")?;

    // 1. Scales: a brief Hyper-Search, or the file given.
    let scales_path = match &args.scales {
        Some(p) => {
            step(1, &format!("scales from {}", p.display()), args.quiet);
            p.clone()
        }
        None => {
            step(
                1,
                &format!("Hyper-Search, {} epoch(s)", args.hs_epochs),
                args.quiet,
            );
            let hs_out = out.join("hs");
            let hs = train(
                &train_args(
                    &args,
                    ArchArg::HyperSearch,
                    "none",
                    args.hs_epochs,
                    hs_out.clone(),
                ),
                &hs_out,
            )?;
            let path = hs_out.join(super::hs::SCALES_FILE);
            hs.net
                .scales()?
                .context("the HS model has scales")?
                .save(&path)?;
            path
        }
    };

    // 2. RepOpt-VGG with RepOpt-SGD.
    step(
        2,
        &format!(
            "training RepOpt-VGG `{}` with RepOpt-SGD, {} epoch(s)",
            args.model, args.epochs
        ),
        args.quiet,
    );
    let ta = train_args(
        &args,
        ArchArg::RepoptVgg,
        &scales_path.to_string_lossy(),
        args.epochs,
        out.join("train"),
    );
    let trainer = train(&ta, &out_dir(&ta, "runs/train"))?;
    let spec = trainer.config.spec.clone();

    // 3. Fold BN, quantise, report float vs INT8.
    step(3, "folding and INT8 post-training quantisation", args.quiet);
    let int8_dir = out.join("int8");
    super::quantize::run(QuantizeArgs {
        checkpoint: out.join("train"),
        out: int8_dir.clone(),
        calibration: args.calibration,
        percentile: 99.99,
        calib_images: 512,
        data: args.data.clone(),
        batch_size: 64,
        device: "cpu".into(),
        quiet: true,
    })?;
    let qreport = read_json(&int8_dir.join("report.json"))?;
    let model =
        Int8Model::load(&int8_dir).with_context(|| format!("loading {}", int8_dir.display()))?;

    // 4. The chip: analytic and event timing, reports and plots.
    step(
        4,
        &format!("simulating on chip `{}`", chip.name),
        args.quiet,
    );
    let workload = Workload::from_spec(&spec);
    let analytic = analytic::simulate(&chip, &workload)?;
    let sim = event::simulate(&chip, &workload)?;
    let sim_dir = out.join("sim");
    super::sim::write_report_files(&sim_dir, &sim, &chip, &workload)?;

    // 5. HLS project (and its C simulation with the loop-count check).
    step(5, "generating the Vitis HLS project", args.quiet);
    let hls_dir = out.join("hls");
    repopt_hls::project::generate(&chip, &model, args.seed, &hls_dir)
        .with_context(|| format!("generating {}", hls_dir.display()))?;
    let hls_missing = HlsRung::unavailable();
    let hls_loop_check = match &hls_missing {
        Some(why) => format!("skipped: {why}"),
        None => repopt_hls::csim::run_csim(&hls_dir)
            .map(|r| r.summary())
            .unwrap_or_else(|e| format!("FAILED: {e}")),
    };

    // 6. The verification ladder.
    step(
        6,
        "verification ladder: golden, Candle, simulator, HLS C simulation",
        args.quiet,
    );
    let (_, split) = args.data.load()?;
    let images: Vec<Vec<u8>> = (0..args.verify_images.min(split.test.len()))
        .map(|i| split.test.image(i).to_vec())
        .collect();
    let mut rungs: Vec<Box<dyn Rung>> = vec![
        Box::new(CandleRung::new(&model, &candle_core::Device::Cpu)?),
        Box::new(SimRung { chip: chip.clone() }),
    ];
    if hls_missing.is_none() {
        rungs.push(Box::new(HlsRung { chip: chip.clone() }));
    }
    let ladder = verify(&model, &images, &mut rungs)?;
    let mut lines = ladder_lines(&ladder);
    if let Some(why) = &hls_missing {
        lines.push(RungLine {
            rung: "hls-csim".into(),
            status: "skipped".into(),
            detail: why.clone(),
        });
    }
    let passed = ladder.all_match() && !hls_loop_check.starts_with("FAILED");

    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let summary = FlowSummary {
        model: spec.name.clone(),
        data: args.data.data.clone(),
        chip: chip.name.clone(),
        scales: scales_path.display().to_string(),
        float_top1: num(&qreport, "float_top1"),
        int8_top1: num(&qreport, "int8_top1"),
        latency_us: sim.latency_us,
        frames_per_s: sim.frames_per_s,
        utilisation: sim.utilisation,
        energy_uj: sim.energy_uj,
        achieved_gops: sim.achieved_gops,
        peak_gops: sim.peak_gops,
        dram_bytes: sim.dram_read_bytes + sim.dram_write_bytes,
        event_vs_analytic: sim.total_cycles as f64 / analytic.total_cycles as f64,
        hls_loop_check,
        ladder: lines,
        ladder_passed: passed,
        folders: [
            ("hs", "hs"),
            ("checkpoint", "train"),
            ("INT8 model", "int8"),
            ("chip reports", "sim"),
            ("HLS project", "hls"),
            ("report", "report"),
        ]
        .iter()
        .map(|(k, d)| (k.to_string(), out.join(d).display().to_string()))
        .collect(),
    };
    let report_dir = out.join("report");
    write_report(&report_dir, &summary, &sim, &chip, &qreport, &ladder)?;
    print_summary(&summary);
    if !passed {
        anyhow::bail!(
            "the verification ladder found a mismatch; see {}",
            report_dir.join("index.html").display()
        );
    }
    Ok(())
}

fn ladder_lines(r: &VerifyReport) -> Vec<RungLine> {
    let mut v = vec![RungLine {
        rung: "golden".into(),
        status: "reference".into(),
        detail: format!(
            "{} images, {} layers, {:.3}s",
            r.images, r.layers, r.golden_seconds
        ),
    }];
    for (rung, line) in r.rungs.iter().zip(r.lines()) {
        let status = match (&rung.error, &rung.mismatch) {
            (Some(_), _) => "error",
            (None, Some(_)) => "mismatch",
            (None, None) => "match",
        };
        v.push(RungLine {
            rung: rung.rung.clone(),
            status: status.into(),
            detail: line,
        });
    }
    v
}

fn print_summary(s: &FlowSummary) {
    println!(
        "\nrepopt flow: `{}` on {}, chip `{}`",
        s.model, s.data, s.chip
    );
    println!(
        "  accuracy      float {:.2}%  INT8 {:.2}%",
        100.0 * s.float_top1,
        100.0 * s.int8_top1
    );
    println!(
        "  chip          {:.1} µs/image, {:.0} frames/s, {:.1}% MAC utilisation, {:.2} µJ/image, {:.1} of {:.1} GOPS",
        s.latency_us,
        s.frames_per_s,
        100.0 * s.utilisation,
        s.energy_uj,
        s.achieved_gops,
        s.peak_gops
    );
    println!("  HLS loops     {}", s.hls_loop_check);
    for l in &s.ladder {
        println!(
            "  ladder        {:<22} {:<9} {}",
            l.rung, l.status, l.detail
        );
    }
    for (what, path) in &s.folders {
        println!("  {what:<13} {path}");
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn write_report(
    dir: &Path,
    s: &FlowSummary,
    sim: &NetworkReport,
    chip: &ChipSpec,
    qreport: &Value,
    ladder: &VerifyReport,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, text: &str| -> anyhow::Result<()> {
        let p = dir.join(name);
        write_atomic(&p, text.as_bytes()).with_context(|| format!("writing {}", p.display()))
    };
    write("summary.json", &serde_json::to_string_pretty(s)?)?;
    write("verify.json", &serde_json::to_string_pretty(ladder)?)?;
    write("quantization.json", &serde_json::to_string_pretty(qreport)?)?;
    write("layers.csv", &sim.to_csv())?;
    let mut csv = String::from("metric,value\n");
    for (k, v) in [
        ("float_top1", s.float_top1),
        ("int8_top1", s.int8_top1),
        ("latency_us", s.latency_us),
        ("frames_per_s", s.frames_per_s),
        ("utilisation", s.utilisation),
        ("energy_uj", s.energy_uj),
        ("achieved_gops", s.achieved_gops),
        ("dram_bytes", s.dram_bytes as f64),
    ] {
        csv += &format!("{k},{v}\n");
    }
    write("summary.csv", &csv)?;

    let mut h = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>repopt flow report</title>\
         <style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.match{color:#070}.mismatch,.error{color:#b00}\
         .skipped{color:#a60}</style></head><body>",
    );
    h += &format!(
        "<h1>repopt flow: <code>{}</code> on {}, chip <code>{}</code></h1>",
        html_escape(&s.model),
        html_escape(&s.data),
        html_escape(&s.chip)
    );
    h += "<h2>Summary</h2><table>";
    for (k, v) in [
        ("float top-1", format!("{:.2}%", 100.0 * s.float_top1)),
        ("INT8 top-1", format!("{:.2}%", 100.0 * s.int8_top1)),
        ("latency", format!("{:.1} µs per image", s.latency_us)),
        ("throughput", format!("{:.0} frames/s", s.frames_per_s)),
        ("MAC utilisation", format!("{:.1}%", 100.0 * s.utilisation)),
        ("energy", format!("{:.2} µJ per image", s.energy_uj)),
        (
            "achieved / peak",
            format!("{:.1} / {:.1} GOPS", s.achieved_gops, s.peak_gops),
        ),
        ("DRAM traffic", format!("{} bytes per image", s.dram_bytes)),
        (
            "event / analytic cycles",
            format!("{:.3}", s.event_vs_analytic),
        ),
        ("HLS loop counts", s.hls_loop_check.clone()),
        ("scales", s.scales.clone()),
    ] {
        h += &format!("<tr><th>{k}</th><td>{}</td></tr>", html_escape(&v));
    }
    h += "</table><h2>Verification ladder</h2><table><tr><th>rung</th><th>status</th><th>detail</th></tr>";
    for l in &s.ladder {
        h += &format!(
            "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            html_escape(&l.rung),
            l.status,
            l.status,
            html_escape(&l.detail)
        );
    }
    h += "</table><h2>Chip</h2>";
    h += &svg::cycles_by_cause(sim);
    h += &svg::utilisation(sim);
    h += &svg::roofline(sim, chip);
    h += "<h2>Files</h2><ul>";
    for (what, path) in &s.folders {
        h += &format!(
            "<li>{}: <code>{}</code></li>",
            html_escape(what),
            html_escape(path)
        );
    }
    h += "<li>this folder: summary.json, summary.csv, layers.csv, quantization.json, verify.json</li></ul></body></html>\n";
    write("index.html", &h)
}

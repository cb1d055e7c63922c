//! Hand-written SVG plots: per-layer cycles stacked by cause, utilisation per
//! layer, the chip's roofline with every layer on it, and sweep scatters with
//! their Pareto fronts.

use std::fmt::Write as _;

use crate::chip::ChipSpec;
use crate::report::NetworkReport;

const W: f64 = 900.0;
const H: f64 = 480.0;
const ML: f64 = 80.0;
const MR: f64 = 170.0;
const MT: f64 = 40.0;
const MB: f64 = 90.0;

const COLORS: [&str; 6] = [
    "#4e79a7", "#a0cbe8", "#f28e2b", "#59a14f", "#e15759", "#b07aa1",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn open(title: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" font-size="14" text-anchor="middle">{}</text>"#,
        W / 2.0,
        esc(title)
    );
    s
}

fn axes(s: &mut String, xlabel: &str, ylabel: &str) {
    let (x0, y0, x1, y1) = (ML, H - MB, W - MR, MT);
    let _ = writeln!(
        s,
        r#"<path d="M{x0},{y1} L{x0},{y0} L{x1},{y0}" stroke="black" fill="none"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        (x0 + x1) / 2.0,
        H - 10.0,
        esc(xlabel)
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">{}</text>"#,
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0,
        esc(ylabel)
    );
}

fn legend(s: &mut String, items: &[(&str, &str)]) {
    for (i, (name, color)) in items.iter().enumerate() {
        let y = MT + 10.0 + 18.0 * i as f64;
        let x = W - MR + 15.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{}" width="12" height="12" fill="{color}"/><text x="{}" y="{}">{}</text>"#,
            y - 10.0,
            x + 18.0,
            y,
            esc(name)
        );
    }
}

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.3}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.3}M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.3}k", v / 1e3)
    } else if a >= 1.0 || a == 0.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.3e}")
    }
    .replace(".000", "")
}

/// The smallest 1, 2, 2.5, 5 or 10 times a power of ten at or above `v`
/// (so that five ticks fall on round numbers).
fn nice_max(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

/// Linear y ticks from 0 to `max`.
fn y_ticks(s: &mut String, max: f64, fmt: impl Fn(f64) -> String) {
    let (y0, y1) = (H - MB, MT);
    for i in 0..=5 {
        let v = max * i as f64 / 5.0;
        let y = y0 - (y0 - y1) * i as f64 / 5.0;
        let _ = writeln!(
            s,
            r##"<line x1="{ML}" x2="{}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            W - MR,
            ML - 5.0,
            y + 4.0,
            fmt(v)
        );
    }
}

fn bar_labels(s: &mut String, names: &[String]) {
    let n = names.len().max(1) as f64;
    let bw = (W - ML - MR) / n;
    for (i, name) in names.iter().enumerate() {
        let x = ML + bw * (i as f64 + 0.5);
        let y = H - MB + 10.0;
        let _ = writeln!(
            s,
            r#"<text x="{x}" y="{y}" font-size="9" text-anchor="end" transform="rotate(-60 {x} {y})">{}</text>"#,
            esc(name)
        );
    }
}

/// Per-layer cycles stacked by cause.
pub fn cycles_by_cause(r: &NetworkReport) -> String {
    let mut s = open(&format!(
        "{} on {}: cycles per layer by cause ({:?} timing)",
        r.model, r.chip, r.level
    ));
    let max = nice_max(
        r.layers
            .iter()
            .map(|l| l.total_cycles)
            .max()
            .unwrap_or(1)
            .max(1) as f64,
    );
    y_ticks(&mut s, max, fmt_num);
    axes(&mut s, "layer", "cycles");
    let n = r.layers.len().max(1) as f64;
    let bw = (W - ML - MR) / n;
    let scale = (H - MB - MT) / max;
    let names = [
        "compute",
        "fill/drain",
        "weight load",
        "fmap traffic",
        "stalls",
    ];
    for (i, l) in r.layers.iter().enumerate() {
        let c = &l.cycles;
        let parts = [
            c.compute,
            c.fill_drain,
            c.weight_load,
            c.fmap_traffic,
            c.stalls,
        ];
        let mut y = H - MB;
        let x = ML + bw * i as f64 + bw * 0.1;
        for (k, &p) in parts.iter().enumerate() {
            let h = p as f64 * scale;
            y -= h;
            let _ = writeln!(
                s,
                r#"<rect x="{x:.2}" y="{y:.2}" width="{:.2}" height="{h:.2}" fill="{}"><title>{} {}: {p} cycles</title></rect>"#,
                bw * 0.8,
                COLORS[k],
                esc(&l.name),
                names[k]
            );
        }
    }
    bar_labels(
        &mut s,
        &r.layers.iter().map(|l| l.name.clone()).collect::<Vec<_>>(),
    );
    legend(
        &mut s,
        &names
            .iter()
            .zip(COLORS)
            .map(|(a, b)| (*a, b))
            .collect::<Vec<_>>(),
    );
    s.push_str("</svg>\n");
    s
}

/// MAC utilisation per layer.
pub fn utilisation(r: &NetworkReport) -> String {
    let mut s = open(&format!(
        "{} on {}: MAC utilisation per layer (network {:.1}%)",
        r.model,
        r.chip,
        100.0 * r.utilisation
    ));
    y_ticks(&mut s, 100.0, |v| format!("{v:.0}%"));
    axes(&mut s, "layer", "MAC utilisation");
    let n = r.layers.len().max(1) as f64;
    let bw = (W - ML - MR) / n;
    let scale = (H - MB - MT) / 100.0;
    for (i, l) in r.layers.iter().enumerate() {
        let h = 100.0 * l.utilisation * scale;
        let color = match l.bound {
            crate::report::Bound::Compute => COLORS[0],
            crate::report::Bound::Memory => COLORS[4],
        };
        let _ = writeln!(
            s,
            r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{h:.2}" fill="{color}"><title>{}: {:.1}%</title></rect>"#,
            ML + bw * i as f64 + bw * 0.1,
            H - MB - h,
            bw * 0.8,
            esc(&l.name),
            100.0 * l.utilisation
        );
    }
    bar_labels(
        &mut s,
        &r.layers.iter().map(|l| l.name.clone()).collect::<Vec<_>>(),
    );
    legend(
        &mut s,
        &[("compute-bound", COLORS[0]), ("memory-bound", COLORS[4])],
    );
    s.push_str("</svg>\n");
    s
}

struct LogAxis {
    lo: f64,
    hi: f64,
}

impl LogAxis {
    fn new(min: f64, max: f64) -> Self {
        let lo = min.max(1e-12).log10().floor();
        let hi = max.max(min * 10.0).log10().ceil();
        LogAxis {
            lo,
            hi: hi.max(lo + 1.0),
        }
    }
    fn frac(&self, v: f64) -> f64 {
        (v.max(1e-12).log10() - self.lo) / (self.hi - self.lo)
    }
}

fn log_grid(s: &mut String, xa: &LogAxis, ya: &LogAxis) {
    let mut e = xa.lo;
    while e <= xa.hi + 1e-9 {
        let x = ML + xa.frac(10f64.powf(e)) * (W - ML - MR);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.2}" x2="{x:.2}" y1="{MT}" y2="{}" stroke="#ddd"/><text x="{x:.2}" y="{}" text-anchor="middle">{}</text>"##,
            H - MB,
            H - MB + 15.0,
            fmt_num(10f64.powf(e))
        );
        e += 1.0;
    }
    let mut e = ya.lo;
    while e <= ya.hi + 1e-9 {
        let y = H - MB - ya.frac(10f64.powf(e)) * (H - MB - MT);
        let _ = writeln!(
            s,
            r##"<line x1="{ML}" x2="{}" y1="{y:.2}" y2="{y:.2}" stroke="#ddd"/><text x="{}" y="{:.2}" text-anchor="end">{}</text>"##,
            W - MR,
            ML - 5.0,
            y + 4.0,
            fmt_num(10f64.powf(e))
        );
        e += 1.0;
    }
}

/// The chip's roofline (GOPS against operations per DRAM byte) with every
/// layer placed at its intensity and achieved throughput.
pub fn roofline(r: &NetworkReport, chip: &ChipSpec) -> String {
    let mut s = open(&format!(
        "{} on {}: roofline ({:.0} GOPS peak, {} GB/s)",
        r.model,
        r.chip,
        chip.peak_gops(),
        chip.dram.bandwidth_gb_per_s
    ));
    let peak = chip.peak_gops();
    let bw = chip.dram.bandwidth_gb_per_s;
    let ridge = peak / bw;
    let imin = r
        .layers
        .iter()
        .map(|l| l.ops_per_dram_byte)
        .fold(ridge, f64::min)
        / 2.0;
    let imax = r
        .layers
        .iter()
        .map(|l| l.ops_per_dram_byte)
        .fold(ridge, f64::max)
        * 2.0;
    let gmin = r
        .layers
        .iter()
        .map(|l| l.achieved_gops)
        .fold(peak, f64::min)
        .min(imin * bw)
        / 2.0;
    let xa = LogAxis::new(imin, imax);
    let ya = LogAxis::new(gmin, peak * 2.0);
    log_grid(&mut s, &xa, &ya);
    axes(&mut s, "operations per DRAM byte", "GOPS");
    let px = |v: f64| ML + xa.frac(v) * (W - ML - MR);
    let py = |v: f64| H - MB - ya.frac(v) * (H - MB - MT);
    let x_lo = 10f64.powf(xa.lo);
    let x_hi = 10f64.powf(xa.hi);
    let _ = writeln!(
        s,
        r#"<path d="M{:.2},{:.2} L{:.2},{:.2} L{:.2},{:.2}" stroke="black" stroke-width="2" fill="none"/>"#,
        px(x_lo),
        py(x_lo * bw),
        px(ridge),
        py(peak),
        px(x_hi),
        py(peak)
    );
    for l in &r.layers {
        let color = match l.bound {
            crate::report::Bound::Compute => COLORS[0],
            crate::report::Bound::Memory => COLORS[4],
        };
        let _ = writeln!(
            s,
            r#"<circle cx="{:.2}" cy="{:.2}" r="4" fill="{color}" fill-opacity="0.8"><title>{}: {:.1} ops/B, {:.1} GOPS</title></circle>"#,
            px(l.ops_per_dram_byte),
            py(l.achieved_gops),
            esc(&l.name),
            l.ops_per_dram_byte,
            l.achieved_gops
        );
    }
    legend(
        &mut s,
        &[
            ("roofline", "black"),
            ("compute-bound layer", COLORS[0]),
            ("memory-bound layer", COLORS[4]),
        ],
    );
    s.push_str("</svg>\n");
    s
}

/// Scatter of sweep points (x against y, both log scale) with the Pareto
/// front drawn as a line through `front` (indices into `points`).
pub fn pareto_scatter(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    points: &[(f64, f64)],
    front: &[usize],
) -> String {
    let mut s = open(title);
    let fin: Vec<&(f64, f64)> = points
        .iter()
        .filter(|p| p.0 > 0.0 && p.1 > 0.0 && p.0.is_finite() && p.1.is_finite())
        .collect();
    let (xmin, xmax) = fin
        .iter()
        .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p.0), a.1.max(p.0)));
    let (ymin, ymax) = fin
        .iter()
        .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p.1), a.1.max(p.1)));
    if fin.is_empty() {
        s.push_str("</svg>\n");
        return s;
    }
    let xa = LogAxis::new(xmin, xmax);
    let ya = LogAxis::new(ymin, ymax);
    log_grid(&mut s, &xa, &ya);
    axes(&mut s, xlabel, ylabel);
    let px = |v: f64| ML + xa.frac(v) * (W - ML - MR);
    let py = |v: f64| H - MB - ya.frac(v) * (H - MB - MT);
    for p in fin {
        let _ = writeln!(
            s,
            r##"<circle cx="{:.2}" cy="{:.2}" r="2.5" fill="#999" fill-opacity="0.6"/>"##,
            px(p.0),
            py(p.1)
        );
    }
    let mut f: Vec<(f64, f64)> = front.iter().map(|&i| points[i]).collect();
    f.sort_by(|a, b| a.0.total_cmp(&b.0));
    if !f.is_empty() {
        let d: Vec<String> = f
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!(
                    "{}{:.2},{:.2}",
                    if i == 0 { "M" } else { " L" },
                    px(p.0),
                    py(p.1)
                )
            })
            .collect();
        let _ = writeln!(
            s,
            r#"<path d="{}" stroke="{}" stroke-width="2" fill="none"/>"#,
            d.concat(),
            COLORS[4]
        );
        for p in &f {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.2}" cy="{:.2}" r="4" fill="{}"><title>{} / {}</title></circle>"#,
                px(p.0),
                py(p.1),
                COLORS[4],
                fmt_num(p.0),
                fmt_num(p.1)
            );
        }
    }
    legend(
        &mut s,
        &[("design point", "#999"), ("Pareto front", COLORS[4])],
    );
    s.push_str("</svg>\n");
    s
}

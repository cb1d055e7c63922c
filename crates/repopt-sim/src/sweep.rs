//! Sweeps over chip parameters with the analytic model, in parallel, and the
//! Pareto fronts of throughput against resources (MAC lanes) and energy.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use serde::Serialize;

use crate::chip::ChipSpec;
use crate::schedule::{min_fmap_buffer_bytes, min_weight_buffer_bytes};
use crate::workload::Workload;
use crate::SimError;

/// The grid: every combination of the listed values; other fields come from
/// the base chip, except static power, scaled by the point's MAC lanes over
/// the base chip's (a bigger array leaks more).
#[derive(Debug, Clone, PartialEq)]
pub struct SweepGrid {
    pub units: Vec<usize>,
    pub pi: Vec<usize>,
    pub po: Vec<usize>,
    pub bandwidth_gb_per_s: Vec<f64>,
    pub clock_mhz: Vec<f64>,
    /// Grow each point's buffers to the minimum the workload needs (never shrink).
    pub fit_buffers: bool,
}

impl SweepGrid {
    /// A grid with the base chip's values everywhere.
    pub fn from_chip(c: &ChipSpec) -> Self {
        SweepGrid {
            units: vec![c.array.units],
            pi: vec![c.array.pi],
            po: vec![c.array.po],
            bandwidth_gb_per_s: vec![c.dram.bandwidth_gb_per_s],
            clock_mhz: vec![c.array.clock_mhz],
            fit_buffers: true,
        }
    }

    pub fn len(&self) -> usize {
        self.units.len()
            * self.pi.len()
            * self.po.len()
            * self.bandwidth_gb_per_s.len()
            * self.clock_mhz.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The chip of point `i` (row-major over units, pi, po, bandwidth, clock).
    pub fn chip(&self, base: &ChipSpec, w: &Workload, mut i: usize) -> ChipSpec {
        let mut pick = |n: usize| {
            let k = i % n;
            i /= n;
            k
        };
        let clock = self.clock_mhz[pick(self.clock_mhz.len())];
        let bw = self.bandwidth_gb_per_s[pick(self.bandwidth_gb_per_s.len())];
        let po = self.po[pick(self.po.len())];
        let pi = self.pi[pick(self.pi.len())];
        let units = self.units[pick(self.units.len())];
        let mut c = base.clone();
        // Static power grows with the array: scale the base chip's by MAC lanes.
        let lanes = (units * 9 * pi * po) as f64;
        c.energy.static_mw = base.energy.static_mw * lanes / base.macs_per_cycle() as f64;
        c.name = format!("{}-u{units}-pi{pi}-po{po}-bw{bw}-clk{clock}", base.name);
        c.array.units = units;
        c.array.pi = pi;
        c.array.po = po;
        c.array.clock_mhz = clock;
        c.dram.bandwidth_gb_per_s = bw;
        if self.fit_buffers && units > 0 && po > 0 && pi > 0 {
            for l in &w.layers {
                c.buffers.weight_bytes_per_unit = c
                    .buffers
                    .weight_bytes_per_unit
                    .max(min_weight_buffer_bytes(&c, &l.conv));
                c.buffers.fmap_bytes = c.buffers.fmap_bytes.max(min_fmap_buffer_bytes(&c, &l.conv));
            }
        }
        c
    }
}

/// One design point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepPoint {
    pub units: usize,
    pub pi: usize,
    pub po: usize,
    pub bandwidth_gb_per_s: f64,
    pub clock_mhz: f64,
    /// Resource proxy: MAC lanes = units * 9 * pi * po (about twice the DSPs
    /// of an FPGA that packs two int8 MACs per DSP).
    pub mac_lanes: u64,
    pub weight_bytes_per_unit: u64,
    pub fmap_bytes: u64,
    pub sram_bytes: u64,
    /// False when the chip cannot run the workload (`reason` says why).
    pub feasible: bool,
    pub reason: String,
    pub cycles: u64,
    pub latency_us: f64,
    pub frames_per_s: f64,
    pub achieved_gops: f64,
    pub utilisation: f64,
    pub energy_uj: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepResult {
    pub model: String,
    pub base_chip: String,
    pub points: Vec<SweepPoint>,
    /// Indices of the throughput vs MAC-lanes Pareto front (feasible points).
    pub front_lanes: Vec<usize>,
    /// Indices of the throughput vs energy-per-frame Pareto front.
    pub front_energy: Vec<usize>,
}

/// Evaluates one point.
pub fn evaluate(chip: &ChipSpec, w: &Workload) -> SweepPoint {
    let mut p = SweepPoint {
        units: chip.array.units,
        pi: chip.array.pi,
        po: chip.array.po,
        bandwidth_gb_per_s: chip.dram.bandwidth_gb_per_s,
        clock_mhz: chip.array.clock_mhz,
        mac_lanes: chip.macs_per_cycle(),
        weight_bytes_per_unit: chip.buffers.weight_bytes_per_unit,
        fmap_bytes: chip.buffers.fmap_bytes,
        sram_bytes: chip.sram_bytes(),
        feasible: true,
        reason: String::new(),
        cycles: 0,
        latency_us: 0.0,
        frames_per_s: 0.0,
        achieved_gops: 0.0,
        utilisation: 0.0,
        energy_uj: 0.0,
    };
    if let Err(e) = chip.validate_for(w) {
        p.feasible = false;
        p.reason = e.to_string();
        return p;
    }
    let (cycles, energy_pj) = crate::analytic::quick(chip, w);
    let macs = w.macs() as f64;
    p.cycles = cycles;
    p.latency_us = cycles as f64 / chip.array.clock_mhz;
    p.frames_per_s = 1e6 / p.latency_us;
    p.achieved_gops = 2.0 * macs / (p.latency_us * 1e3);
    p.utilisation = macs / (cycles as f64 * chip.macs_per_cycle() as f64);
    p.energy_uj = energy_pj * 1e-6;
    p
}

/// Runs the grid in parallel. `progress(done, total)` is called from worker
/// threads now and then (about every 1% of the points) and at the end.
pub fn run(
    base: &ChipSpec,
    w: &Workload,
    grid: &SweepGrid,
    progress: Option<&(dyn Fn(usize, usize) + Sync)>,
) -> Result<SweepResult, SimError> {
    let n = grid.len();
    if n == 0 {
        return Err(SimError::Sweep(
            "the grid is empty: every parameter list needs at least one value".into(),
        ));
    }
    let done = AtomicUsize::new(0);
    let step = (n / 100).max(1);
    let points: Vec<SweepPoint> = (0..n)
        .into_par_iter()
        .map(|i| {
            let p = evaluate(&grid.chip(base, w, i), w);
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(f) = progress {
                if d % step == 0 || d == n {
                    f(d, n);
                }
            }
            p
        })
        .collect();
    let feasible: Vec<usize> = (0..n).filter(|&i| points[i].feasible).collect();
    let pick = |cost: &dyn Fn(&SweepPoint) -> f64| {
        let pts: Vec<(f64, f64)> = feasible
            .iter()
            .map(|&i| (cost(&points[i]), points[i].frames_per_s))
            .collect();
        pareto_front(&pts)
            .into_iter()
            .map(|k| feasible[k])
            .collect::<Vec<_>>()
    };
    let front_lanes = pick(&|p| p.mac_lanes as f64);
    let front_energy = pick(&|p| p.energy_uj);
    Ok(SweepResult {
        model: w.name.clone(),
        base_chip: base.name.clone(),
        points,
        front_lanes,
        front_energy,
    })
}

/// Indices of the points (cost, value) no other point dominates, where lower
/// cost and higher value are better (a point dominates another when it is no
/// worse in both and strictly better in one). Sorted by cost.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..points.len()).collect();
    idx.sort_by(|&a, &b| {
        points[a]
            .0
            .total_cmp(&points[b].0)
            .then(points[b].1.total_cmp(&points[a].1))
    });
    let mut front: Vec<usize> = Vec::new();
    let mut best = f64::NEG_INFINITY;
    for i in idx {
        let (c, v) = points[i];
        let tie_with_last = front.last().map(|&j| points[j] == (c, v)).unwrap_or(false);
        if v > best || tie_with_last {
            front.push(i);
            best = best.max(v);
        }
    }
    front
}

impl SweepResult {
    fn csv_of(&self, rows: &mut dyn Iterator<Item = usize>) -> String {
        let mut s = String::from(
            "units,pi,po,bandwidth_gb_per_s,clock_mhz,mac_lanes,weight_bytes_per_unit,fmap_bytes,\
             sram_bytes,feasible,cycles,latency_us,frames_per_s,achieved_gops,utilisation,energy_uj,\
             on_front_lanes,on_front_energy,reason\n",
        );
        for i in rows {
            let p = &self.points[i];
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{:.3},{:.3},{:.3},{:.4},{:.3},{},{},\"{}\"",
                p.units,
                p.pi,
                p.po,
                p.bandwidth_gb_per_s,
                p.clock_mhz,
                p.mac_lanes,
                p.weight_bytes_per_unit,
                p.fmap_bytes,
                p.sram_bytes,
                p.feasible,
                p.cycles,
                p.latency_us,
                p.frames_per_s,
                p.achieved_gops,
                p.utilisation,
                p.energy_uj,
                self.front_lanes.contains(&i),
                self.front_energy.contains(&i),
                p.reason.replace('"', "'")
            );
        }
        s
    }

    /// Every point, in grid order.
    pub fn points_csv(&self) -> String {
        self.csv_of(&mut (0..self.points.len()))
    }

    pub fn front_lanes_csv(&self) -> String {
        self.csv_of(&mut self.front_lanes.iter().copied())
    }

    pub fn front_energy_csv(&self) -> String {
        self.csv_of(&mut self.front_energy.iter().copied())
    }

    pub fn lanes_svg(&self) -> String {
        let pts: Vec<(f64, f64)> = self
            .points
            .iter()
            .map(|p| {
                if p.feasible {
                    (p.mac_lanes as f64, p.frames_per_s)
                } else {
                    (0.0, 0.0)
                }
            })
            .collect();
        crate::svg::pareto_scatter(
            &format!(
                "{} sweep on {}: frames/s vs MAC lanes",
                self.model, self.base_chip
            ),
            "MAC lanes (units x 9 x PI x PO)",
            "frames/s",
            &pts,
            &self.front_lanes,
        )
    }

    pub fn energy_svg(&self) -> String {
        let pts: Vec<(f64, f64)> = self
            .points
            .iter()
            .map(|p| {
                if p.feasible {
                    (p.energy_uj, p.frames_per_s)
                } else {
                    (0.0, 0.0)
                }
            })
            .collect();
        crate::svg::pareto_scatter(
            &format!(
                "{} sweep on {}: frames/s vs energy per frame",
                self.model, self.base_chip
            ),
            "energy per frame (uJ)",
            "frames/s",
            &pts,
            &self.front_energy,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dominates(a: (f64, f64), b: (f64, f64)) -> bool {
        a.0 <= b.0 && a.1 >= b.1 && (a.0 < b.0 || a.1 > b.1)
    }

    proptest! {
        #[test]
        fn front_is_exactly_the_non_dominated_set(
            pts in proptest::collection::vec((0u8..20, 0u8..20), 1..60)
        ) {
            let pts: Vec<(f64, f64)> = pts.into_iter().map(|(a, b)| (a as f64, b as f64)).collect();
            let front = pareto_front(&pts);
            for i in 0..pts.len() {
                let dominated = pts.iter().any(|&q| dominates(q, pts[i]));
                prop_assert_eq!(front.contains(&i), !dominated, "point {:?}", pts[i]);
            }
        }
    }

    #[test]
    fn sweep_of_b1_front_is_not_dominated() {
        let base = ChipSpec::preset("dc-fpga").unwrap();
        let w = Workload::from_spec(&repopt_spec::preset("B1").unwrap());
        let grid = SweepGrid {
            units: vec![2, 4, 8, 16],
            pi: vec![4, 8, 16],
            po: vec![8, 16, 32],
            bandwidth_gb_per_s: vec![16.0, 64.0],
            clock_mhz: vec![200.0, 300.0],
            fit_buffers: true,
        };
        let r = run(&base, &w, &grid, None).unwrap();
        assert_eq!(r.points.len(), grid.len());
        assert!(r.points.iter().all(|p| p.feasible));
        for front in [&r.front_lanes, &r.front_energy] {
            assert!(!front.is_empty());
        }
        for &i in &r.front_lanes {
            let a = &r.points[i];
            for b in &r.points {
                assert!(!dominates(
                    (b.mac_lanes as f64, b.frames_per_s),
                    (a.mac_lanes as f64, a.frames_per_s)
                ));
            }
        }
        for &i in &r.front_energy {
            let a = &r.points[i];
            for b in &r.points {
                assert!(!dominates(
                    (b.energy_uj, b.frames_per_s),
                    (a.energy_uj, a.frames_per_s)
                ));
            }
        }
        // The point with the grid's base parameters matches a direct run.
        let direct = crate::analytic::simulate(&grid.chip(&base, &w, 0), &w).unwrap();
        assert_eq!(direct.total_cycles, r.points[0].cycles);
    }

    #[test]
    fn infeasible_points_say_why() {
        let base = ChipSpec::preset("edge-fpga").unwrap();
        let w = Workload::from_spec(&repopt_spec::preset("B1").unwrap());
        let mut grid = SweepGrid::from_chip(&base);
        grid.po = vec![64];
        grid.fit_buffers = false;
        let r = run(&base, &w, &grid, None).unwrap();
        assert!(!r.points[0].feasible);
        assert!(r.points[0].reason.contains("weight_bytes_per_unit"));
        assert!(r.front_lanes.is_empty());
    }
}

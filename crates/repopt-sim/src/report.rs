//! Per-layer and per-network figures, and their terminal, CSV and JSON forms.

use std::fmt::Write as _;

use serde::Serialize;

use crate::chip::{ChipSpec, PARAM_BYTES_PER_CHANNEL};
use crate::schedule::LayerSchedule;
use crate::workload::{Workload, WorkloadLayer};

/// Which timing model produced a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimingLevel {
    Analytic,
    Event,
}

/// Every cycle of a layer, explained. The causes add up to the layer's cycles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CycleBreakdown {
    /// Pipelined-loop iterations (one window x PI x PO per unit per cycle).
    pub compute: u64,
    /// Pipeline fill/drain, once per tile.
    pub fill_drain: u64,
    /// Exposed weight loading (the first pass's weights, before any compute).
    pub weight_load: u64,
    /// Exposed feature-map traffic (first input band, last output band).
    pub fmap_traffic: u64,
    /// Compute waiting for DRAM in the steady state (memory-bound passes).
    pub stalls: u64,
}

impl CycleBreakdown {
    pub fn total(&self) -> u64 {
        self.compute + self.fill_drain + self.weight_load + self.fmap_traffic + self.stalls
    }
}

/// What a timing model says about one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerTiming {
    pub cycles: CycleBreakdown,
    /// Cycles the DRAM port is busy (all transfers of the layer).
    pub dram_busy_cycles: u64,
}

/// Whether DRAM or the array sets a layer's pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bound {
    Compute,
    Memory,
}

/// Energy of a layer, in picojoules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Energy {
    pub mac_pj: f64,
    pub sram_pj: f64,
    pub dram_pj: f64,
    /// Static power over the layer's time.
    pub static_pj: f64,
}

impl Energy {
    pub fn total(&self) -> f64 {
        self.mac_pj + self.sram_pj + self.dram_pj + self.static_pj
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerReport {
    pub index: usize,
    pub name: String,
    pub in_channels: usize,
    pub out_channels: usize,
    pub stride: usize,
    pub in_size: usize,
    pub out_size: usize,
    pub passes: usize,
    pub bands: usize,
    pub band_rows: usize,
    pub ic_groups: usize,
    pub macs: u64,
    pub cycles: CycleBreakdown,
    pub total_cycles: u64,
    pub time_us: f64,
    /// Useful MACs / (cycles * peak MACs per cycle).
    pub utilisation: f64,
    pub dram_read_bytes: u64,
    pub dram_write_bytes: u64,
    pub dram_busy_cycles: u64,
    pub bound: Bound,
    /// Operations (2 per MAC) per DRAM byte: the roofline's x axis.
    pub ops_per_dram_byte: f64,
    pub achieved_gops: f64,
    pub energy: Energy,
}

/// DRAM bytes of a layer: (read, written).
pub fn layer_dram_bytes(s: &LayerSchedule) -> (u64, u64) {
    let l = &s.layer;
    let weights = l.out_channels as u64 * (9 * l.in_channels as u64 + PARAM_BYTES_PER_CHANNEL);
    let per_pass =
        crate::analytic::input_rows_per_pass(s) as u64 * (l.in_size * l.in_channels) as u64;
    let loads = if s.input_resident { 1 } else { s.passes as u64 };
    let written = (l.out_size * l.out_size * l.out_channels) as u64;
    (weights + per_pass * loads, written)
}

/// SRAM bytes a layer touches: per iteration each active output channel
/// reads 9 * PI weight bytes and the window takes a new 3 * PI input column
/// (broadcast to the units); every output byte is written once; every DRAM
/// byte passes through SRAM once.
pub fn layer_sram_bytes(chip: &ChipSpec, s: &LayerSchedule) -> u64 {
    let l = &s.layer;
    let pi = chip.array.pi as u64;
    let px = (l.out_size * l.out_size) as u64 * s.ic_groups as u64;
    let mut bytes = 0u64;
    for p in 0..s.passes {
        let oc = s.oc_per_pass.min(l.out_channels - p * s.oc_per_pass) as u64;
        bytes += px * (oc * 9 * pi + 3 * pi);
    }
    let (r, w) = layer_dram_bytes(s);
    bytes + (l.out_size * l.out_size * l.out_channels) as u64 + r + w
}

/// Energy of a layer that takes `cycles`: MACs, SRAM bytes and DRAM bytes
/// times their energies, plus static power times time (mW * us * 1000 = pJ).
pub fn layer_energy_pj(chip: &ChipSpec, s: &LayerSchedule, cycles: u64) -> Energy {
    let (r, w) = layer_dram_bytes(s);
    Energy {
        mac_pj: s.layer.macs() as f64 * chip.energy.mac_pj,
        sram_pj: layer_sram_bytes(chip, s) as f64 * chip.energy.sram_byte_pj,
        dram_pj: (r + w) as f64 * chip.energy.dram_byte_pj,
        static_pj: chip.energy.static_mw * (cycles as f64 / chip.array.clock_mhz) * 1e3,
    }
}

pub fn layer_report(
    chip: &ChipSpec,
    wl: &WorkloadLayer,
    s: &LayerSchedule,
    t: LayerTiming,
) -> LayerReport {
    let l = &wl.conv;
    let total = t.cycles.total();
    let macs = l.macs();
    let (r, w) = layer_dram_bytes(s);
    let time_us = total as f64 / chip.array.clock_mhz;
    LayerReport {
        index: l.index,
        name: wl.name.clone(),
        in_channels: l.in_channels,
        out_channels: l.out_channels,
        stride: l.stride,
        in_size: l.in_size,
        out_size: l.out_size,
        passes: s.passes,
        bands: s.bands,
        band_rows: s.band_rows,
        ic_groups: s.ic_groups,
        macs,
        cycles: t.cycles,
        total_cycles: total,
        time_us,
        utilisation: macs as f64 / (total as f64 * chip.macs_per_cycle() as f64),
        dram_read_bytes: r,
        dram_write_bytes: w,
        dram_busy_cycles: t.dram_busy_cycles,
        bound: if t.dram_busy_cycles > t.cycles.compute + t.cycles.fill_drain {
            Bound::Memory
        } else {
            Bound::Compute
        },
        ops_per_dram_byte: 2.0 * macs as f64 / (r + w) as f64,
        achieved_gops: 2.0 * macs as f64 / (time_us * 1e3),
        energy: layer_energy_pj(chip, s, total),
    }
}

/// A whole network on a chip (one frame, conv layers only).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkReport {
    pub model: String,
    pub chip: String,
    pub level: TimingLevel,
    pub units: usize,
    pub pi: usize,
    pub po: usize,
    pub clock_mhz: f64,
    pub mac_lanes: u64,
    pub sram_bytes: u64,
    pub macs: u64,
    pub total_cycles: u64,
    pub cycles: CycleBreakdown,
    pub latency_us: f64,
    pub frames_per_s: f64,
    pub achieved_gops: f64,
    pub peak_gops: f64,
    pub utilisation: f64,
    pub dram_bandwidth_gb_per_s: f64,
    pub dram_read_bytes: u64,
    pub dram_write_bytes: u64,
    pub energy_uj: f64,
    pub energy: Energy,
    pub layers: Vec<LayerReport>,
}

impl NetworkReport {
    pub fn new(
        chip: &ChipSpec,
        w: &Workload,
        level: TimingLevel,
        layers: Vec<LayerReport>,
    ) -> Self {
        let mut cycles = CycleBreakdown::default();
        let mut energy = Energy::default();
        let (mut r, mut wr) = (0, 0);
        for l in &layers {
            cycles.compute += l.cycles.compute;
            cycles.fill_drain += l.cycles.fill_drain;
            cycles.weight_load += l.cycles.weight_load;
            cycles.fmap_traffic += l.cycles.fmap_traffic;
            cycles.stalls += l.cycles.stalls;
            energy.mac_pj += l.energy.mac_pj;
            energy.sram_pj += l.energy.sram_pj;
            energy.dram_pj += l.energy.dram_pj;
            energy.static_pj += l.energy.static_pj;
            r += l.dram_read_bytes;
            wr += l.dram_write_bytes;
        }
        let total = cycles.total();
        let latency_us = total as f64 / chip.array.clock_mhz;
        let macs = w.macs();
        NetworkReport {
            model: w.name.clone(),
            chip: chip.name.clone(),
            level,
            units: chip.array.units,
            pi: chip.array.pi,
            po: chip.array.po,
            clock_mhz: chip.array.clock_mhz,
            mac_lanes: chip.macs_per_cycle(),
            sram_bytes: chip.sram_bytes(),
            macs,
            total_cycles: total,
            cycles,
            latency_us,
            frames_per_s: 1e6 / latency_us,
            achieved_gops: 2.0 * macs as f64 / (latency_us * 1e3),
            peak_gops: chip.peak_gops(),
            utilisation: macs as f64 / (total as f64 * chip.macs_per_cycle() as f64),
            dram_bandwidth_gb_per_s: chip.dram.bandwidth_gb_per_s,
            dram_read_bytes: r,
            dram_write_bytes: wr,
            energy_uj: energy.total() * 1e-6,
            energy,
            layers,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serialises")
    }

    /// One row per layer.
    pub fn to_csv(&self) -> String {
        let mut s = String::from(
            "index,name,in_channels,out_channels,stride,in_size,out_size,passes,bands,band_rows,\
             ic_groups,macs,compute_cycles,fill_drain_cycles,weight_load_cycles,fmap_traffic_cycles,\
             stall_cycles,total_cycles,time_us,utilisation,dram_read_bytes,dram_write_bytes,\
             dram_busy_cycles,bound,ops_per_dram_byte,achieved_gops,energy_mac_pj,energy_sram_pj,\
             energy_dram_pj,energy_static_pj\n",
        );
        for l in &self.layers {
            let c = &l.cycles;
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.3},{:.4},{},{},{},{},{:.3},{:.2},{:.0},{:.0},{:.0},{:.0}",
                l.index,
                l.name,
                l.in_channels,
                l.out_channels,
                l.stride,
                l.in_size,
                l.out_size,
                l.passes,
                l.bands,
                l.band_rows,
                l.ic_groups,
                l.macs,
                c.compute,
                c.fill_drain,
                c.weight_load,
                c.fmap_traffic,
                c.stalls,
                l.total_cycles,
                l.time_us,
                l.utilisation,
                l.dram_read_bytes,
                l.dram_write_bytes,
                l.dram_busy_cycles,
                match l.bound {
                    Bound::Compute => "compute",
                    Bound::Memory => "memory",
                },
                l.ops_per_dram_byte,
                l.achieved_gops,
                l.energy.mac_pj,
                l.energy.sram_pj,
                l.energy.dram_pj,
                l.energy.static_pj
            );
        }
        s
    }

    /// Human-readable table with a summary.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} on {} ({:?} timing): {} units x {}x{} channels ({} MAC lanes), {} MHz",
            self.model,
            self.chip,
            self.level,
            self.units,
            self.pi,
            self.po,
            self.mac_lanes,
            self.clock_mhz
        );
        let _ = writeln!(
            s,
            "{:<10} {:>5} {:>5} {:>3} {:>8} {:>4} {:>4} {:>11} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>8} {:>8} {:>5}",
            "layer", "in", "out", "s", "map", "pass", "band", "cycles", "comp%", "fill%", "wload%",
            "fmap%", "stall%", "util%", "rd KiB", "wr KiB", "bound"
        );
        for l in &self.layers {
            let t = l.total_cycles.max(1) as f64;
            let pc = |x: u64| 100.0 * x as f64 / t;
            let c = &l.cycles;
            let _ = writeln!(
                s,
                "{:<10} {:>5} {:>5} {:>3} {:>3}->{:<4} {:>4} {:>4} {:>11} {:>6.1} {:>6.1} {:>6.1} {:>6.1} {:>6.1} {:>6.1} {:>8.0} {:>8.0} {:>5}",
                l.name,
                l.in_channels,
                l.out_channels,
                l.stride,
                l.in_size,
                l.out_size,
                l.passes,
                l.bands,
                l.total_cycles,
                pc(c.compute),
                pc(c.fill_drain),
                pc(c.weight_load),
                pc(c.fmap_traffic),
                pc(c.stalls),
                100.0 * l.utilisation,
                l.dram_read_bytes as f64 / 1024.0,
                l.dram_write_bytes as f64 / 1024.0,
                match l.bound {
                    Bound::Compute => "comp",
                    Bound::Memory => "mem",
                }
            );
        }
        let c = &self.cycles;
        let t = self.total_cycles.max(1) as f64;
        let _ = writeln!(
            s,
            "total: {} cycles = {:.1} us/frame, {:.1} frames/s, {:.1} GOPS achieved of {:.1} peak ({:.1}% MAC utilisation)",
            self.total_cycles,
            self.latency_us,
            self.frames_per_s,
            self.achieved_gops,
            self.peak_gops,
            100.0 * self.utilisation
        );
        let _ = writeln!(
            s,
            "cycles: compute {:.1}%, fill/drain {:.1}%, weight load {:.1}%, fmap traffic {:.1}%, stalls {:.1}%",
            100.0 * c.compute as f64 / t,
            100.0 * c.fill_drain as f64 / t,
            100.0 * c.weight_load as f64 / t,
            100.0 * c.fmap_traffic as f64 / t,
            100.0 * c.stalls as f64 / t
        );
        let _ = writeln!(
            s,
            "DRAM: {:.2} MiB read, {:.2} MiB written per frame at {} GB/s; energy {:.1} uJ/frame (MAC {:.1}, SRAM {:.1}, DRAM {:.1}, static {:.1})",
            self.dram_read_bytes as f64 / 1048576.0,
            self.dram_write_bytes as f64 / 1048576.0,
            self.dram_bandwidth_gb_per_s,
            self.energy_uj,
            self.energy.mac_pj * 1e-6,
            self.energy.sram_pj * 1e-6,
            self.energy.dram_pj * 1e-6,
            self.energy.static_pj * 1e-6
        );
        s
    }
}

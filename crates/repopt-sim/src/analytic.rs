//! Analytic timing: a closed form per pass of each layer.
//!
//! With `w(p)`, `IN_p`, `ST_p` the DRAM cycles of pass p's weights, input
//! bands and output bands (each transfer: latency + ceil(bytes / bytes per
//! cycle)) and `C_p` its compute cycles (iterations + fill/drain per band):
//!
//! ```text
//! D_p   = IN_p + ST_p + w(p + 1)       (minus the first input band for p = 0,
//!                                       minus the last output band for the last pass)
//! cycles = w(0) + in(0)                (prologue: nothing to overlap with)
//!        + sum_p max(C_p, D_p)         (double buffering: the slower side sets the pace)
//!        + st(last)                    (epilogue)
//! ```
//!
//! The event simulation ([`crate::event`]) plays every transfer; the two agree
//! within the tolerance stated in `docs/simulator.md`.

use crate::chip::{ChipSpec, PARAM_BYTES_PER_CHANNEL};
use crate::report::{CycleBreakdown, LayerTiming, NetworkReport, TimingLevel};
use crate::schedule::LayerSchedule;
use crate::workload::Workload;
use crate::SimError;

/// Total input rows one pass loads (halo included, clipped at the map edges).
pub fn input_rows_per_pass(s: &LayerSchedule) -> usize {
    let l = &s.layer;
    let e = l.out_size;
    let bottom_clip = usize::from((e - 1) * l.stride + 1 > l.in_size - 1);
    // Every band: (r_b - 1) * s + 3 rows; the first band loses the padding row
    // above the map, the last band the one below it (when it reaches it).
    let rows = (e - s.bands) * l.stride + 3 * s.bands - 1 - bottom_clip;
    rows.min(s.bands * l.in_size)
}

/// DRAM cycles of `n` transfers moving `bytes` in total (the ceiling is taken
/// once over the sum: at most `n` cycles below the per-transfer sum).
fn transfers(chip: &ChipSpec, n: u64, bytes: u64) -> u64 {
    if bytes == 0 || n == 0 {
        0
    } else {
        n * chip.dram.latency_cycles + (bytes as f64 / chip.dram_bytes_per_cycle()).ceil() as u64
    }
}

/// Analytic timing of one layer.
pub fn layer_timing(chip: &ChipSpec, s: &LayerSchedule) -> LayerTiming {
    let l = &s.layer;
    let a = &chip.array;
    let e = l.out_size as u64;
    let bands = s.bands as u64;
    let wbytes_per_channel = 9 * l.in_channels as u64 + PARAM_BYTES_PER_CHANNEL;
    let oc_of = |p: usize| s.oc_per_pass.min(l.out_channels - p * s.oc_per_pass) as u64;
    let w_of = |p: usize| {
        if p < s.passes {
            chip.transfer_cycles(oc_of(p) * wbytes_per_channel)
        } else {
            0
        }
    };
    let row_bytes = (l.in_size * l.in_channels) as u64;
    let in_rows = input_rows_per_pass(s) as u64;
    // First tile's input band and last tile's output band (exposed).
    let first = s.tile(chip, 0);
    let last = s.tile(chip, s.tile_count() - 1);
    let in0 = chip.transfer_cycles(first.in_bytes);
    let st_last = chip.transfer_cycles(last.out_bytes);
    let c_pass = e * e * s.ic_groups as u64 + bands * a.pipeline_depth;

    let mut stalls = 0u64;
    let mut busy = 0u64;
    let mut paced = 0u64;
    for p in 0..s.passes {
        let in_p = if s.input_resident && p > 0 {
            0
        } else {
            transfers(chip, bands, in_rows * row_bytes)
        };
        let st_p = transfers(chip, bands, e * e * oc_of(p));
        busy += in_p + st_p + w_of(p);
        let mut d = in_p + st_p + w_of(p + 1);
        if p == 0 {
            d = d.saturating_sub(in0);
        }
        if p + 1 == s.passes {
            d = d.saturating_sub(st_last);
        }
        stalls += d.saturating_sub(c_pass);
        paced += c_pass.max(d);
    }
    let cc = s.compute_cycles(chip);
    let w0 = w_of(0);
    let cycles = CycleBreakdown {
        compute: cc.iterations,
        fill_drain: cc.fill_drain,
        weight_load: w0,
        fmap_traffic: in0 + st_last,
        stalls,
    };
    debug_assert_eq!(cycles.total(), w0 + in0 + paced + st_last);
    LayerTiming {
        cycles,
        dram_busy_cycles: busy,
    }
}

/// Analytic timing of a whole network (validated against the chip first).
pub fn simulate(chip: &ChipSpec, w: &Workload) -> Result<NetworkReport, SimError> {
    chip.validate_for(w)?;
    let layers = w
        .layers
        .iter()
        .map(|wl| {
            let s = LayerSchedule::new(chip, &wl.conv);
            let t = layer_timing(chip, &s);
            crate::report::layer_report(chip, wl, &s, t)
        })
        .collect();
    Ok(NetworkReport::new(chip, w, TimingLevel::Analytic, layers))
}

/// Only the figures a sweep needs: (cycles per frame, energy per frame in pJ),
/// without allocating a report. The chip must be valid for `w`.
pub fn quick(chip: &ChipSpec, w: &Workload) -> (u64, f64) {
    let mut cycles = 0;
    let mut energy = 0.0;
    for wl in &w.layers {
        let s = LayerSchedule::new(chip, &wl.conv);
        let c = layer_timing(chip, &s).cycles.total();
        cycles += c;
        energy += crate::report::layer_energy_pj(chip, &s, c).total();
    }
    (cycles, energy)
}

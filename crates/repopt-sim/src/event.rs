//! Tile-level event simulation: every weight load, input-band load, compute
//! and output-band store of every tile is a task with its dependencies; DRAM
//! is one shared server (transfers serialised), compute is one server (the
//! units run in lock step). Among the tasks whose dependencies are done, the
//! one that can start first runs first; DRAM serves its requests in the order
//! they became ready (ties: program order, so the current pass's bands go
//! before the next pass's weight prefetch).
//!
//! Double buffering appears as dependencies: the weights of pass p + 1 wait
//! for the last tile of pass p - 1 (their buffer slot), the input band of tile
//! k waits for compute of tile k - 2, compute of tile k waits for the store of
//! tile k - 2 (its output slot). Layers run one after the other: a layer
//! starts when the previous layer's last band is stored.

use serde::Serialize;

use crate::chip::ChipSpec;
use crate::report::{CycleBreakdown, LayerTiming, NetworkReport, TimingLevel};
use crate::schedule::LayerSchedule;
use crate::workload::Workload;
use crate::SimError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TaskKind {
    WeightLoad,
    InputLoad,
    Compute,
    Store,
}

/// One scheduled task of the trace (times in cycles from the layer start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TraceEntry {
    pub kind: TaskKind,
    /// Pass for weight loads, tile index otherwise.
    pub index: usize,
    pub bytes: u64,
    pub start: u64,
    pub end: u64,
}

struct Task {
    kind: TaskKind,
    index: usize,
    bytes: u64,
    dur: u64,
    deps: [usize; 4],
    ndeps: usize,
}

const NONE: usize = usize::MAX;

/// Event simulation of one layer; returns its timing and the full trace.
pub fn layer_trace(chip: &ChipSpec, s: &LayerSchedule) -> (LayerTiming, Vec<TraceEntry>) {
    let n = s.tile_count();
    let mut tasks: Vec<Task> = Vec::with_capacity(4 * n);
    let mut compute_id = vec![NONE; n];
    let mut store_id = vec![NONE; n];
    let mut input_id = vec![NONE; n];
    let mut weight_id = vec![NONE; s.passes];
    let push = |tasks: &mut Vec<Task>, kind, index, bytes, dur, deps: &[usize]| {
        let mut d = [NONE; 4];
        let mut nd = 0;
        for &x in deps {
            if x != NONE {
                d[nd] = x;
                nd += 1;
            }
        }
        tasks.push(Task {
            kind,
            index,
            bytes,
            dur,
            deps: d,
            ndeps: nd,
        });
        tasks.len() - 1
    };
    let depth = chip.array.pipeline_depth;
    for k in 0..n {
        let t = s.tile(chip, k);
        if t.band == 0 {
            // Slot of pass p - 2's weights frees when its last tile is computed.
            let dep = if t.pass >= 2 {
                compute_id[(t.pass - 1) * s.bands - 1]
            } else {
                NONE
            };
            weight_id[t.pass] = push(
                &mut tasks,
                TaskKind::WeightLoad,
                t.pass,
                t.weight_bytes,
                chip.transfer_cycles(t.weight_bytes),
                &[dep],
            );
        }
        if t.in_bytes > 0 {
            let dep = if k >= 2 { compute_id[k - 2] } else { NONE };
            input_id[k] = push(
                &mut tasks,
                TaskKind::InputLoad,
                k,
                t.in_bytes,
                chip.transfer_cycles(t.in_bytes),
                &[dep],
            );
        }
        let input = if s.input_resident {
            input_id[0]
        } else {
            input_id[k]
        };
        let prev = if k >= 1 { compute_id[k - 1] } else { NONE };
        let slot = if k >= 2 { store_id[k - 2] } else { NONE };
        compute_id[k] = push(
            &mut tasks,
            TaskKind::Compute,
            k,
            0,
            t.iterations + depth,
            &[input, weight_id[t.pass], prev, slot],
        );
        store_id[k] = push(
            &mut tasks,
            TaskKind::Store,
            k,
            t.out_bytes,
            chip.transfer_cycles(t.out_bytes),
            &[compute_id[k]],
        );
    }

    // List scheduling in time order.
    let m = tasks.len();
    let mut waiting: Vec<usize> = tasks.iter().map(|t| t.ndeps).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); m];
    for (i, t) in tasks.iter().enumerate() {
        for &d in &t.deps[..t.ndeps] {
            dependents[d].push(i);
        }
    }
    let mut ready_at = vec![0u64; m];
    let mut start = vec![0u64; m];
    let mut end = vec![0u64; m];
    let mut frontier: Vec<usize> = (0..m).filter(|&i| waiting[i] == 0).collect();
    let (mut dram_free, mut compute_free) = (0u64, 0u64);
    let mut dram_busy = 0u64;
    for _ in 0..m {
        let (pos, &id, st) = frontier
            .iter()
            .enumerate()
            .map(|(pos, id)| {
                let free = if tasks[*id].kind == TaskKind::Compute {
                    compute_free
                } else {
                    dram_free
                };
                (pos, id, ready_at[*id].max(free))
            })
            .min_by_key(|&(_, id, st)| (st, ready_at[*id], *id))
            .expect("dependency graph is acyclic");
        frontier.swap_remove(pos);
        start[id] = st;
        end[id] = st + tasks[id].dur;
        if tasks[id].kind == TaskKind::Compute {
            compute_free = end[id];
        } else {
            dram_free = end[id];
            dram_busy += tasks[id].dur;
        }
        for &d in &dependents[id] {
            ready_at[d] = ready_at[d].max(end[id]);
            waiting[d] -= 1;
            if waiting[d] == 0 {
                frontier.push(d);
            }
        }
    }

    // Explain every cycle: prologue, gaps between computes, epilogue.
    let c0 = compute_id[0];
    let c_last = compute_id[n - 1];
    let total = end.iter().copied().max().unwrap_or(0);
    let gap0 = start[c0];
    let weight_load = gap0.min(end[weight_id[0]]);
    let mut stalls = 0;
    for k in 1..n {
        stalls += start[compute_id[k]] - end[compute_id[k - 1]];
    }
    let cc = s.compute_cycles(chip);
    let cycles = CycleBreakdown {
        compute: cc.iterations,
        fill_drain: cc.fill_drain,
        weight_load,
        fmap_traffic: (gap0 - weight_load) + (total - end[c_last]),
        stalls,
    };
    debug_assert_eq!(cycles.total(), total);
    let trace = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| TraceEntry {
            kind: t.kind,
            index: t.index,
            bytes: t.bytes,
            start: start[i],
            end: end[i],
        })
        .collect();
    (
        LayerTiming {
            cycles,
            dram_busy_cycles: dram_busy,
        },
        trace,
    )
}

/// Event-simulated timing of one layer.
pub fn layer_timing(chip: &ChipSpec, s: &LayerSchedule) -> LayerTiming {
    layer_trace(chip, s).0
}

/// Event simulation of a whole network (validated against the chip first).
/// Layers are independent once their start is fixed, so they run in parallel.
pub fn simulate(chip: &ChipSpec, w: &Workload) -> Result<NetworkReport, SimError> {
    use rayon::prelude::*;
    chip.validate_for(w)?;
    let layers = w
        .layers
        .par_iter()
        .map(|wl| {
            let s = LayerSchedule::new(chip, &wl.conv);
            let t = layer_timing(chip, &s);
            crate::report::layer_report(chip, wl, &s, t)
        })
        .collect();
    Ok(NetworkReport::new(chip, w, TimingLevel::Event, layers))
}

/// The event trace of every layer as CSV (times in cycles from the frame
/// start; layers run back to back).
pub fn trace_csv(chip: &ChipSpec, w: &Workload) -> String {
    use std::fmt::Write as _;
    let mut s = String::from("layer,name,task,index,bytes,start_cycle,end_cycle\n");
    let mut t0 = 0u64;
    for wl in &w.layers {
        let sched = LayerSchedule::new(chip, &wl.conv);
        let (timing, trace) = layer_trace(chip, &sched);
        for e in &trace {
            let kind = match e.kind {
                TaskKind::WeightLoad => "weight_load",
                TaskKind::InputLoad => "input_load",
                TaskKind::Compute => "compute",
                TaskKind::Store => "store",
            };
            let _ = writeln!(
                s,
                "{},{},{kind},{},{},{},{}",
                wl.conv.index,
                wl.name,
                e.index,
                e.bytes,
                t0 + e.start,
                t0 + e.end
            );
        }
        t0 += timing.cycles.total();
    }
    s
}

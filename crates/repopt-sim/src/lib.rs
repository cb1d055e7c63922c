//! Cycle-approximate simulator of an array of identical 3x3 conv units.
//!
//! * [`chip`]: chip descriptions (versioned TOML, embedded presets, validation).
//! * [`schedule`]: how a layer is tiled onto the array (the schedule the HLS
//!   generator implements literally), with the per-layer compute-cycle count.
//! * [`analytic`]: closed-form per-layer timing (fast, used by sweeps).
//! * [`event`]: tile-level event simulation (every transfer and tile).
//! * [`report`]: per-layer and per-network figures, table, CSV, JSON, SVG.
//! * [`sweep`]: grids over chip parameters and their Pareto fronts.
//! * [`scalesim`]: SCALE-Sim topology CSV import and export.
//! * [`functional`]: INT8 execution in the array's schedule, bit-exact to the
//!   golden engine of `repopt-int8`, with accumulator overflow detection.
//!
//! The schedule and both timing levels are documented in `docs/simulator.md`.

pub mod analytic;
pub mod chip;
pub mod event;
pub mod functional;
pub mod report;
pub mod scalesim;
pub mod schedule;
pub mod svg;
pub mod sweep;
pub mod workload;
mod write;

pub use chip::{ChipSpec, CHIP_FORMAT_VERSION};
pub use report::{CycleBreakdown, LayerReport, NetworkReport, TimingLevel};
pub use schedule::{compute_cycles, ComputeCycles, LayerSchedule};
pub use workload::{Workload, WorkloadLayer};
pub use write::write_atomic;

/// Everything that can go wrong in the simulator, with the field or layer named.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("unknown chip `{name}`; known chips: {known}")]
    UnknownChip { name: String, known: String },
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
    #[error("chip description {origin} is not valid: {message}")]
    ChipParse { origin: String, message: String },
    #[error("chip `{chip}`: {message}")]
    ChipInvalid { chip: String, message: String },
    #[error("chip `{chip}` cannot run layer {layer}: {message}")]
    DoesNotFit {
        chip: String,
        layer: String,
        message: String,
    },
    #[error("SCALE-Sim topology {origin}, {location}: {message}")]
    Topology {
        origin: String,
        location: String,
        message: String,
    },
    #[error("sweep: {0}")]
    Sweep(String),
}

//! Network specifications shared by every stage of the stack.
//!
//! A plain RepOpt-VGG network is a list of stages of 3x3 conv blocks followed
//! by global average pooling and a linear head. This crate knows the shapes
//! only: presets from the paper, spec files, per-layer geometry and parameter
//! counts. It has no numeric dependencies so the simulator and the HLS
//! generator can use it without pulling in Candle.

mod geometry;
mod params;
mod presets;
mod spec;

pub use geometry::{conv_out_size, ConvLayer};
pub use params::ParamCounts;
pub use presets::{preset, preset_names, PRESETS};
pub use spec::{ModelSpec, SpecError, StageSpec, SPEC_FORMAT_VERSION};

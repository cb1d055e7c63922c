//! The INT8 datapath of repopt, one contract for four implementations.
//!
//! Everything here follows `docs/int8-datapath.md` (the contract): the golden
//! integer engine in this crate, the Candle reference, the simulator and the
//! generated HLS C++ must agree bit for bit.
//!
//! * [`arith`]: the fixed-point arithmetic (requantisation, saturation).
//! * [`format`]: the INT8 model and its file set (safetensors + manifest).
//! * [`golden`]: the plain reference engine.
//! * [`testutil`]: random valid models for property tests of other crates.

pub mod arith;
pub mod bounds;
pub mod error;
pub mod format;
pub mod golden;
pub mod model;
pub mod testutil;

pub use arith::{quantize_multiplier, requantize, requantize_u8, saturate_i8, saturate_u8};
pub use bounds::AccBound;
pub use error::Int8Error;
pub use format::{MANIFEST_FILE, TENSORS_FILE};
pub use golden::{run_layer, run_network, Outputs};
pub use model::{
    ActDtype, InputQuant, Int8Head, Int8Layer, Int8Model, LayerGeometry, CONTRACT, FORMAT_NAME,
    FORMAT_VERSION,
};

#[cfg(test)]
mod tests_format;
#[cfg(test)]
mod tests_golden;

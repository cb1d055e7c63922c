//! The INT8 datapath of repopt, one contract for four implementations.
//!
//! Everything here follows `docs/int8-datapath.md` (the contract): the golden
//! integer engine in this crate, the Candle reference, the simulator and the
//! generated HLS C++ must agree bit for bit.
//!
//! * [`arith`]: the fixed-point arithmetic (requantisation, saturation).
//! * [`format`](mod@format): the INT8 model and its file set (safetensors + manifest).
//! * [`golden`]: the plain reference engine.
//! * [`host`]: host-side quantisation helpers (scales, bias, layouts).
//! * [`bounds`]: static worst-case accumulator bounds.
//! * [`testutil`]: random valid models for property tests of other crates.
//!
//! ```
//! use repopt_int8::{golden, testutil, Int8Model};
//! let spec = repopt_spec::ModelSpec::resolve("A0").unwrap().with_io(10, 3, 16);
//! let model = testutil::random_model(42, &spec);
//! let dir = std::env::temp_dir().join(format!("repopt-int8-doc-{}", std::process::id()));
//! model.save(&dir).unwrap();
//! let loaded = Int8Model::load(&dir).unwrap();
//! let out = golden::run_network(&loaded, &testutil::random_image(1, &loaded)).unwrap();
//! assert_eq!(out.logits.len(), 10);
//! assert!(loaded.check_accumulator_bounds(32).is_ok());
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

pub mod arith;
pub mod bounds;
pub mod error;
pub mod format;
pub mod golden;
pub mod host;
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

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

//! Post-training INT8 quantisation of deployed RepOpt-VGG / RepVGG networks,
//! per-layer reports, and the Candle INT8 reference engine. See
//! `docs/quantization.md`; the integer arithmetic is `docs/int8-datapath.md`.
//!
//! * [`deploy`]: a checkpoint's float deployed model as plain data
//!   ([`DeployedModel`]) and its Candle forward pass ([`FloatNet`]).
//! * [`calibrate`]: activation histograms and the min-max, percentile and
//!   MSE thresholds.
//! * [`quantize`]: calibration + the contract's quantisation (§10) into a
//!   `repopt_int8::Int8Model`.
//! * [`report`]: Table-11 weight statistics, scales, SQNR, float vs INT8 top-1.
//! * [`engine`]: the Candle INT8 engine (exact integers in f64 tensors).
//! * [`verify`]: golden vs other engines, layer by layer, as a list of rungs.

pub mod calibrate;
pub mod deploy;
pub mod engine;
pub mod error;
pub mod im2col;
pub mod quantize;
pub mod report;
pub mod verify;

pub use calibrate::{ActivationStats, Calibration, Histogram};
pub use deploy::{DeployedLayer, DeployedModel, FloatNet};
pub use engine::CandleInt8;
pub use error::{QuantError, Result};
pub use quantize::{build_int8, quantize_model, QuantizeOptions};
pub use report::{build_report, QuantReport};
pub use verify::{verify, CandleRung, GoldenRung, Rung, VerifyReport};

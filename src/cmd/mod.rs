//! One module per `repopt` subcommand; each exposes `XArgs` (clap) and `run`.

pub mod common;
pub mod experiment;
pub mod flow;
pub mod hls;
pub mod hs;
pub mod infer;
pub mod model;
pub mod multipliers;
pub mod quantize;
pub mod rungs;
pub mod sim;
pub mod sweep;
pub mod train;
pub mod verify;

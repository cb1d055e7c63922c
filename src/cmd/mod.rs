//! One module per `repopt` subcommand; each exposes `XArgs` (clap) and `run`.

pub mod common;
pub mod model;
pub mod sim;
pub mod sweep;
pub mod train;

//! One module per `repopt` subcommand; each exposes `XArgs` (clap) and `run`.

pub mod model;
pub mod sim;
pub mod sweep;

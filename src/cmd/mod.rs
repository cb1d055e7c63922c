//! One module per `repopt` subcommand; each exposes `XArgs` (clap) and `run`.

pub mod model;

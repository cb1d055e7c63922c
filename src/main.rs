//! `repopt`: one command for the whole stack (train, quantize, simulate,
//! generate HLS, verify). Each subcommand lives in its own module under `cmd/`.

use clap::{Parser, Subcommand};

mod cmd;

#[derive(Parser)]
#[command(
    name = "repopt",
    version,
    about = "RepOpt-VGG co-design stack: train, quantize, simulate, generate HLS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train RepOpt-VGG (RepOpt-SGD or plain SGD), RepVGG or the Hyper-Search model.
    Train(cmd::train::TrainArgs),
    /// Show a model preset or spec file: layers, shapes, parameter counts.
    Model(cmd::model::ModelArgs),
    /// Simulate a network on a chip description: cycles, utilisation, traffic, energy.
    Sim(cmd::sim::SimArgs),
    /// Sweep chip parameters (analytic model) and find the Pareto fronts.
    Sweep(cmd::sweep::SweepArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Train(args) => cmd::train::run(args),
        Command::Model(args) => cmd::model::run(args),
        Command::Sim(args) => cmd::sim::run(args),
        Command::Sweep(args) => cmd::sweep::run(args),
    }
}

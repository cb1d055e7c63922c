//! `repopt`: one command for the whole stack (train, quantize, simulate,
//! generate HLS, verify). Each subcommand lives in its own module under `cmd/`.

use clap::{Parser, Subcommand};

mod alloc;
mod cmd;

#[global_allocator]
static ALLOC: alloc::CountingMimalloc = alloc::CountingMimalloc;

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
    /// The main job end to end: search, train, quantize, simulate, generate HLS, verify.
    Flow(cmd::flow::FlowArgs),
    /// Train RepOpt-VGG (RepOpt-SGD or plain SGD), RepVGG or the Hyper-Search model.
    Train(cmd::train::TrainArgs),
    /// Hyper-Search: train the HS model and write its scales file.
    Hs(cmd::hs::HsArgs),
    /// Print or export the RepOpt-SGD gradient multipliers of a scales file.
    Multipliers(cmd::multipliers::MultipliersArgs),
    /// Reproduce the paper's claims at small scale (RepOpt-SGD vs plain SGD vs RepVGG).
    Experiment(cmd::experiment::ExperimentArgs),
    /// Show a model preset or spec file: layers, shapes, parameter counts.
    Model(cmd::model::ModelArgs),
    /// Simulate a network on a chip description: cycles, utilisation, traffic, energy.
    Sim(cmd::sim::SimArgs),
    /// Sweep chip parameters (analytic model) and find the Pareto fronts.
    Sweep(cmd::sweep::SweepArgs),
    /// Generate the Vitis HLS project of a chip's conv-unit array (kernel, testbench, scripts).
    Hls(cmd::hls::HlsArgs),
    /// Post-training INT8 quantisation of a checkpoint, with a per-layer report.
    Quantize(cmd::quantize::QuantizeArgs),
    /// Run an INT8 model (golden or Candle engine): logits, predictions, accuracy.
    Infer(cmd::infer::InferArgs),
    /// Check INT8 implementations against the golden engine, layer by layer.
    Verify(cmd::verify::VerifyArgs),
}

fn main() -> std::process::ExitCode {
    restore_default_sigpipe();
    repopt_train::configure_cpu_threads();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line, no backtrace.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `repopt ... | head` should end quietly, not panic on a closed pipe.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: resetting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Flow(args) => cmd::flow::run(args),
        Command::Train(args) => cmd::train::run(args),
        Command::Hs(args) => cmd::hs::run(args),
        Command::Multipliers(args) => cmd::multipliers::run(args),
        Command::Experiment(args) => cmd::experiment::run(args),
        Command::Model(args) => cmd::model::run(args),
        Command::Sim(args) => cmd::sim::run(args),
        Command::Sweep(args) => cmd::sweep::run(args),
        Command::Hls(args) => cmd::hls::run(args),
        Command::Quantize(args) => cmd::quantize::run(args),
        Command::Infer(args) => cmd::infer::run(args),
        Command::Verify(args) => cmd::verify::run(args),
    }
}

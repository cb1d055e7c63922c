//! Vitis HLS generator for repopt's array of 3x3 conv units.
//!
//! From a chip description (`repopt_sim::ChipSpec`) and an INT8 model
//! (`repopt_int8`), [`project::generate`] writes a self-contained Vitis HLS
//! project: the kernel (one conv layer per invocation, the simulator's
//! schedule, the INT8 datapath contract's arithmetic), a testbench that runs
//! the network layer after layer against the simulator's outputs, data
//! files, build scripts for both Vitis flows and a resource estimate.
//! [`csim`] compiles and runs the C simulation with g++ and the open-source
//! ap_types headers. Templates live in `hls_templates/`; `docs/hls.md`
//! describes the design.
//!
//! * [`design`]: the kernel's constants from the chip, and every check that
//!   the chip and network can be expressed (before anything is written);
//! * [`resources`]: DSP / BRAM / URAM / LUT estimate against the FPGA part;
//! * [`project`]: rendering, test data from the simulator, atomic writing;
//! * [`csim`]: g++ C simulation and the loop-count check.

pub mod csim;
pub mod design;
pub mod project;
pub mod resources;

pub use csim::{run_csim, verify_model, CsimLayer, CsimReport};
pub use design::{HlsLayer, KernelDesign};
pub use project::{demo_model, generate, render_project, Project};
pub use resources::ResourceEstimate;

/// Everything that can go wrong, with the chip, layer or file named.
#[derive(Debug, thiserror::Error)]
pub enum HlsError {
    #[error("chip `{chip}` cannot be expressed by the HLS templates: {message}")]
    Unsupported { chip: String, message: String },
    #[error("chip `{chip}`: the generated kernel cannot run layer {layer}: {message}")]
    DoesNotFit {
        chip: String,
        layer: String,
        message: String,
    },
    #[error(transparent)]
    Sim(#[from] repopt_sim::SimError),
    #[error("simulator functional path: {0}")]
    Functional(#[from] repopt_sim::functional::FunctionalError),
    #[error(transparent)]
    Int8(#[from] repopt_int8::Int8Error),
    #[error("rendering {template}: {message}")]
    Render { template: String, message: String },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{}", csim::SKIP_MESSAGE)]
    ApTypesMissing,
    #[error("{0}")]
    Csim(String),
}

//! RepOpt-VGG training in Candle: models, RepOpt-SGD, Hyper-Search and the
//! RepVGG baseline. See `docs/training.md`.

mod batchnorm_op;
pub mod conv;
pub mod error;
pub mod model;
pub mod nn;
pub mod scales;

pub use error::{Error, Result};
pub use model::{Arch, Network, Param};
pub use scales::Scales;
pub use threads::configure_cpu_threads;
pub mod checkpoint;
pub mod loss;
pub mod optim;
pub mod schedule;
pub mod threads;
pub mod trainer;

pub use checkpoint::Checkpoint;
pub use trainer::{EpochMetrics, Event, TrainConfig, Trainer};

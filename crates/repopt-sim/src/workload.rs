//! What the simulator runs: an ordered list of 3x3 conv layers (padding 1,
//! square maps), from a [`ModelSpec`] or a SCALE-Sim topology file.

use repopt_spec::{ConvLayer, ModelSpec};
use serde::Serialize;

/// One named conv layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkloadLayer {
    pub name: String,
    pub conv: ConvLayer,
}

/// A network as the chip sees it: conv layers run one after the other, each
/// reading its input map from DRAM and writing its output map back. Global
/// average pooling and the linear head run on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Workload {
    pub name: String,
    pub layers: Vec<WorkloadLayer>,
}

impl Workload {
    pub fn from_spec(spec: &ModelSpec) -> Self {
        Workload {
            name: format!("{}@{}", spec.name, spec.image_size),
            layers: spec
                .conv_layers()
                .into_iter()
                .map(|conv| WorkloadLayer {
                    name: conv.name(),
                    conv,
                })
                .collect(),
        }
    }

    /// Multiply-accumulates of the conv layers.
    pub fn macs(&self) -> u64 {
        self.layers.iter().map(|l| l.conv.macs()).sum()
    }
}

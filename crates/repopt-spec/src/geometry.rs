use serde::{Deserialize, Serialize};

/// Output size of a 3x3 conv with padding 1: `floor((n - 1) / stride) + 1`.
pub fn conv_out_size(n: usize, stride: usize) -> usize {
    (n + 2 - 3) / stride + 1
}

/// One 3x3 conv layer (padding 1) of a plain network, with square maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvLayer {
    /// Position in the network, 0-based.
    pub index: usize,
    pub stage: usize,
    /// Block index inside its stage.
    pub block: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub stride: usize,
    pub in_size: usize,
    pub out_size: usize,
    /// An identity branch exists (Hyper-Search, RepVGG): in == out and stride 1.
    pub has_identity: bool,
}

impl ConvLayer {
    pub fn macs(&self) -> u64 {
        (self.out_size * self.out_size * self.out_channels * self.in_channels * 9) as u64
    }

    pub fn weight_count(&self) -> usize {
        self.out_channels * self.in_channels * 9
    }

    /// Name used for this layer's tensors, e.g. `stage2.3` or `stage0`,
    /// matching the official scale archives (whose stage 0 has one block).
    pub fn name(&self) -> String {
        if self.stage == 0 && self.block == 0 {
            "stage0".to_string()
        } else {
            format!("stage{}.{}", self.stage, self.block)
        }
    }
}

//! The rungs of the verification ladder that live beyond the quantizer: the
//! simulator's functional path and the HLS C simulation. Each runs the same
//! images as the golden engine and returns every layer's output, so
//! `repopt_quant::verify` can compare them byte for byte.

use repopt_int8::golden::Outputs;
use repopt_int8::Int8Model;
use repopt_quant::error::{QuantError, Result};
use repopt_quant::verify::Rung;
use repopt_sim::ChipSpec;

/// The simulator executing the network the way the array tiles it.
pub struct SimRung {
    pub chip: ChipSpec,
}

impl Rung for SimRung {
    fn name(&self) -> String {
        format!("sim-{}", self.chip.name)
    }

    fn run(&mut self, model: &Int8Model, images: &[Vec<u8>]) -> Result<Vec<Outputs>> {
        images
            .iter()
            .enumerate()
            .map(|(i, img)| {
                repopt_sim::functional::run_network(&self.chip, model, img)
                    .map_err(|e| QuantError::Config(format!("simulator, image {i}: {e}")))
            })
            .collect()
    }
}

/// The generated Vitis HLS kernel, compiled with g++ and C-simulated.
pub struct HlsRung {
    pub chip: ChipSpec,
}

impl HlsRung {
    /// Why the C simulation cannot run here, if it cannot.
    pub fn unavailable() -> Option<String> {
        let gxx = std::process::Command::new("g++").arg("--version").output();
        if !gxx.map(|o| o.status.success()).unwrap_or(false) {
            return Some("g++ is not installed".into());
        }
        if repopt_hls::csim::ap_types_dir().is_none() {
            return Some(
                "the ap_types headers are not installed (run scripts/fetch_ap_types.sh)".into(),
            );
        }
        None
    }
}

impl Rung for HlsRung {
    fn name(&self) -> String {
        format!("hls-csim-{}", self.chip.name)
    }

    fn run(&mut self, model: &Int8Model, images: &[Vec<u8>]) -> Result<Vec<Outputs>> {
        repopt_hls::csim::run_images(&self.chip, model, images)
            .map_err(|e| QuantError::Config(format!("HLS C simulation: {e}")))
    }
}

//! Chip descriptions: a versioned TOML file naming the array, its buffers,
//! DRAM, energy figures and (optionally) the FPGA part it targets.
//!
//! Units of every field are in its name (`_bytes`, `_mhz`, `_gb_per_s`,
//! `_cycles`, `_pj`). DRAM bandwidth is given in GB/s (10^9 bytes per second)
//! and converted to bytes per chip clock cycle by [`ChipSpec::dram_bytes_per_cycle`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::workload::Workload;
use crate::SimError;

/// Version of the chip-description format; files of another version are rejected.
pub const CHIP_FORMAT_VERSION: u32 = 1;

/// Chip presets embedded in the binary, as (name, TOML text).
pub const CHIP_PRESETS: [(&str, &str); 3] = [
    (
        "edge-fpga",
        include_str!("../../../sim/chips/edge-fpga.toml"),
    ),
    ("dc-fpga", include_str!("../../../sim/chips/dc-fpga.toml")),
    ("asic", include_str!("../../../sim/chips/asic.toml")),
];

/// A whole chip: an array of identical 3x3 conv units with shared buffers and DRAM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChipSpec {
    pub format_version: u32,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub array: ArraySpec,
    pub buffers: BufferSpec,
    pub dram: DramSpec,
    pub energy: EnergySpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fpga: Option<FpgaPart>,
}

/// The compute array. Every unit, every cycle, multiplies a 3x3 window of
/// `pi` input channels by the weights of `po` output channels and adds into
/// `po` accumulators: `9 * pi * po` MACs per unit per cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArraySpec {
    /// Number of identical conv units.
    pub units: usize,
    /// Input channels each unit consumes per cycle (PI).
    pub pi: usize,
    /// Output channels each unit produces per cycle (PO).
    pub po: usize,
    pub clock_mhz: f64,
    /// Width of each accumulator, in bits (two's complement).
    pub accumulator_bits: u32,
    /// Latency of a unit's pipeline in cycles: paid once per tile (fill/drain).
    pub pipeline_depth: u64,
}

/// On-chip SRAM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferSpec {
    /// Weight buffer of each unit (holds two weight tiles: double buffering).
    pub weight_bytes_per_unit: u64,
    /// Shared feature-map buffer (two input bands and two output bands).
    pub fmap_bytes: u64,
}

/// Off-chip memory, one shared port (reads and writes are serialised).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DramSpec {
    /// Sustained bandwidth in GB/s (10^9 bytes per second).
    pub bandwidth_gb_per_s: f64,
    /// Fixed latency of every transfer, in chip clock cycles.
    pub latency_cycles: u64,
}

/// Energy per operation, in picojoules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnergySpec {
    pub mac_pj: f64,
    pub sram_byte_pj: f64,
    pub dram_byte_pj: f64,
    /// Static (leakage and clocking) power in milliwatts, paid for every
    /// cycle a frame takes; 0 when absent.
    #[serde(default)]
    pub static_mw: f64,
}

/// The FPGA part a chip description targets (resources of the whole part).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FpgaPart {
    pub name: String,
    pub dsp: u64,
    pub bram_18k: u64,
    pub lut: u64,
}

/// Bytes of per-output-channel parameters that travel with the weights:
/// int32 bias and int32 requantisation multiplier (the shift rides in spare bits).
pub const PARAM_BYTES_PER_CHANNEL: u64 = 8;

impl ChipSpec {
    /// Names of the embedded presets.
    pub fn preset_names() -> Vec<&'static str> {
        CHIP_PRESETS.iter().map(|p| p.0).collect()
    }

    /// An embedded preset by name (case-insensitive).
    pub fn preset(name: &str) -> Option<ChipSpec> {
        let (n, text) = CHIP_PRESETS
            .iter()
            .find(|p| p.0.eq_ignore_ascii_case(name))?;
        Some(
            Self::from_toml_str(text, &format!("preset {n}"))
                .expect("embedded chip presets are valid"),
        )
    }

    /// A preset name first, then a TOML file path.
    pub fn resolve(name_or_path: &str) -> Result<ChipSpec, SimError> {
        if let Some(c) = Self::preset(name_or_path) {
            return Ok(c);
        }
        let path = Path::new(name_or_path);
        if path.exists() || name_or_path.ends_with(".toml") || name_or_path.contains('/') {
            // Looks like a file: say why it cannot be read.
            return Self::from_file(path);
        }
        Err(SimError::UnknownChip {
            name: name_or_path.into(),
            known: format!(
                "{} (or a path to a chip TOML file)",
                Self::preset_names().join(", ")
            ),
        })
    }

    pub fn from_file(path: &Path) -> Result<ChipSpec, SimError> {
        let text = std::fs::read_to_string(path).map_err(|e| SimError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses and validates (structurally) a chip description.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<ChipSpec, SimError> {
        // Check the version before the schema so that a future file is
        // rejected for its version, not for an unknown field.
        let value: toml::Table = toml::from_str(text).map_err(|e| SimError::ChipParse {
            origin: origin.into(),
            message: e.to_string(),
        })?;
        match value.get("format_version") {
            Some(toml::Value::Integer(v)) if *v == CHIP_FORMAT_VERSION as i64 => {}
            Some(v) => {
                return Err(SimError::ChipParse {
                    origin: origin.into(),
                    message: format!(
                        "format_version {v} is not supported (expected {CHIP_FORMAT_VERSION})"
                    ),
                })
            }
            None => {
                return Err(SimError::ChipParse {
                    origin: origin.into(),
                    message: format!(
                        "missing `format_version` (expected format_version = {CHIP_FORMAT_VERSION})"
                    ),
                })
            }
        }
        let chip: ChipSpec = toml::from_str(text).map_err(|e| SimError::ChipParse {
            origin: origin.into(),
            message: e.to_string(),
        })?;
        chip.validate().map_err(|e| match e {
            SimError::ChipInvalid { message, .. } => SimError::ChipInvalid {
                chip: format!("{} ({origin})", chip.name),
                message,
            },
            other => other,
        })?;
        Ok(chip)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("chip description serialises")
    }

    /// Structural checks that do not depend on a network.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |message: String| {
            Err(SimError::ChipInvalid {
                chip: self.name.clone(),
                message,
            })
        };
        if self.format_version != CHIP_FORMAT_VERSION {
            return bad(format!(
                "format_version {} is not supported (expected {CHIP_FORMAT_VERSION})",
                self.format_version
            ));
        }
        let a = &self.array;
        for (field, v) in [
            ("array.units", a.units as u64),
            ("array.pi", a.pi as u64),
            ("array.po", a.po as u64),
            (
                "buffers.weight_bytes_per_unit",
                self.buffers.weight_bytes_per_unit,
            ),
            ("buffers.fmap_bytes", self.buffers.fmap_bytes),
        ] {
            if v == 0 {
                return bad(format!("`{field}` must be at least 1 (got 0)"));
            }
        }
        if !(1..=64).contains(&a.accumulator_bits) {
            return bad(format!(
                "`array.accumulator_bits` must be in 1..=64 (got {})",
                a.accumulator_bits
            ));
        }
        for (field, v) in [
            ("array.clock_mhz", a.clock_mhz),
            ("dram.bandwidth_gb_per_s", self.dram.bandwidth_gb_per_s),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("`{field}` must be a positive number (got {v})"));
            }
        }
        for (field, v) in [
            ("energy.mac_pj", self.energy.mac_pj),
            ("energy.sram_byte_pj", self.energy.sram_byte_pj),
            ("energy.dram_byte_pj", self.energy.dram_byte_pj),
            ("energy.static_mw", self.energy.static_mw),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("`{field}` must be zero or positive (got {v})"));
            }
        }
        Ok(())
    }

    /// Checks that every layer of `w` fits this chip: buffers hold at least
    /// one double-buffered tile, the accumulator holds the worst-case sum.
    pub fn validate_for(&self, w: &Workload) -> Result<(), SimError> {
        self.validate_buffers_for(w)?;
        for l in &w.layers {
            let c = &l.conv;
            let need_bits = accumulator_bits_needed(c.in_channels);
            if self.array.accumulator_bits < need_bits {
                return Err(SimError::DoesNotFit {
                    chip: self.name.clone(),
                    layer: l.name.clone(),
                    message: format!(
                        "`array.accumulator_bits` = {} cannot hold the worst-case sum: \
                         9 * {} * 127 * 255 + bias bound = {} needs {need_bits} bits (signed)",
                        self.array.accumulator_bits,
                        c.in_channels,
                        worst_case_accumulator(c.in_channels)
                    ),
                });
            }
        }
        Ok(())
    }

    /// The buffer checks of [`ChipSpec::validate_for`] only (the functional
    /// path detects accumulator overflow on the actual data instead).
    pub fn validate_buffers_for(&self, w: &Workload) -> Result<(), SimError> {
        self.validate()?;
        for l in &w.layers {
            let c = &l.conv;
            let need_w = crate::schedule::min_weight_buffer_bytes(self, c);
            if self.buffers.weight_bytes_per_unit < need_w {
                return Err(SimError::DoesNotFit {
                    chip: self.name.clone(),
                    layer: l.name.clone(),
                    message: format!(
                        "`buffers.weight_bytes_per_unit` = {} is too small: one weight tile is \
                         po * (9 * in_channels + {PARAM_BYTES_PER_CHANNEL}) = {} * (9 * {} + {PARAM_BYTES_PER_CHANNEL}) = {} bytes, \
                         double buffered {} bytes; need at least {need_w}",
                        self.buffers.weight_bytes_per_unit,
                        self.array.po,
                        c.in_channels,
                        need_w / 2,
                        need_w
                    ),
                });
            }
            let need_f = crate::schedule::min_fmap_buffer_bytes(self, c);
            if self.buffers.fmap_bytes < need_f {
                return Err(SimError::DoesNotFit {
                    chip: self.name.clone(),
                    layer: l.name.clone(),
                    message: format!(
                        "`buffers.fmap_bytes` = {} is too small: a band of one output row needs \
                         {} input rows x {} x {} channels plus 1 output row x {} x {} channels, \
                         double buffered; need at least {need_f}",
                        self.buffers.fmap_bytes,
                        3.min(c.in_size),
                        c.in_size,
                        c.in_channels,
                        c.out_size,
                        c.out_channels.min(self.array.units * self.array.po),
                    ),
                });
            }
        }
        Ok(())
    }

    /// Peak MACs per cycle of the whole array.
    pub fn macs_per_cycle(&self) -> u64 {
        (self.array.units * 9 * self.array.pi * self.array.po) as u64
    }

    /// Peak throughput in GOPS (one MAC = two operations).
    pub fn peak_gops(&self) -> f64 {
        2.0 * self.macs_per_cycle() as f64 * self.array.clock_mhz / 1e3
    }

    /// DRAM bytes per chip clock cycle: GB/s * 1000 / MHz.
    pub fn dram_bytes_per_cycle(&self) -> f64 {
        self.dram.bandwidth_gb_per_s * 1e3 / self.array.clock_mhz
    }

    /// Total on-chip SRAM in bytes.
    pub fn sram_bytes(&self) -> u64 {
        self.buffers.weight_bytes_per_unit * self.array.units as u64 + self.buffers.fmap_bytes
    }

    /// Cycles of one DRAM transfer of `bytes`: latency + ceil(bytes / bytes_per_cycle).
    pub fn transfer_cycles(&self, bytes: u64) -> u64 {
        if bytes == 0 {
            0
        } else {
            self.dram.latency_cycles + (bytes as f64 / self.dram_bytes_per_cycle()).ceil() as u64
        }
    }
}

/// Bound on |bias| the datapath contract allows: a bias beyond the largest
/// possible product sum would saturate every output, so the quantizer clamps
/// it to that sum.
pub fn bias_bound(in_channels: usize) -> u64 {
    9 * in_channels as u64 * 127 * 255
}

/// Worst-case |accumulator|: 9 * I * 127 * 255 products plus the bias bound.
pub fn worst_case_accumulator(in_channels: usize) -> u64 {
    9 * in_channels as u64 * 127 * 255 + bias_bound(in_channels)
}

/// Signed accumulator width that holds [`worst_case_accumulator`].
pub fn accumulator_bits_needed(in_channels: usize) -> u32 {
    let m = worst_case_accumulator(in_channels);
    // Magnitude bits plus the sign bit.
    (64 - m.leading_zeros()) + 1
}

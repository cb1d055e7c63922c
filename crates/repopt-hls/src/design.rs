//! The kernel's dimensions, derived from a chip description, and the checks
//! that a chip and a network can be expressed by the templates. Everything
//! here runs before any file is written.

use repopt_sim::chip::PARAM_BYTES_PER_CHANNEL;
use repopt_sim::schedule::band_in_rows;
use repopt_sim::{ChipSpec, ComputeCycles, LayerSchedule, Workload};
use repopt_spec::ConvLayer;
use serde::Serialize;

use crate::HlsError;

/// Widest `ap_uint` the ap_types headers allow without `AP_INT_MAX_W`.
pub const AP_INT_MAX_W: usize = 1024;
/// Widest accumulator the templates express: requantisation takes the
/// contract's int32 accumulator (`docs/int8-datapath.md` §4, §6).
pub const MAX_ACC_BITS: u32 = 32;

/// The kernel's compile-time constants for one chip (`repopt_conv.h`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KernelDesign {
    pub chip: String,
    pub units: usize,
    pub pi: usize,
    pub po: usize,
    pub acc_bits: u32,
    pub pipeline_depth: u64,
    pub clock_mhz: f64,
    /// Depth of a unit's weight tile in PI-channel groups: the tile uses half
    /// of `weight_bytes_per_unit` (the simulator's double buffer), less the
    /// per-channel parameters.
    pub w_groups_max: usize,
    /// Words of PI bytes in each of the nine band-buffer banks: half of
    /// `fmap_bytes` (the other half is the ping-pong copy).
    pub band_bank_words: usize,
    /// m_axi data width bursts may be widened to.
    pub axi_bits: usize,
    /// Signed width of one 3x3 x PI dot product of 9-bit x 8-bit products.
    pub sum_bits: u32,
}

/// One layer as the kernel runs it: the descriptor fields and the simulator's
/// prediction of its compute cycles.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HlsLayer {
    pub index: usize,
    pub name: String,
    pub conv: ConvLayer,
    pub schedule: LayerSchedule,
    /// Byte offset of the layer's OHWI weights in the weight arena.
    pub weight_offset: u64,
    /// Word offset of the layer's `[O][bias, M0, shift]` in the parameter arena.
    pub param_offset: u64,
    /// Byte offsets of the input and output maps in the feature-map arena.
    pub in_offset: u64,
    pub out_offset: u64,
    /// `repopt_sim::compute_cycles` for this layer and chip.
    pub compute: ComputeCycles,
    /// Words each band-buffer bank needs for this layer's largest band.
    pub band_bank_words_needed: u64,
}

impl HlsLayer {
    /// Iterations of the pipelined loop for a full band: R * E * G.
    pub fn full_band_iterations(&self) -> u64 {
        let s = &self.schedule;
        (s.band_rows * self.conv.out_size * s.ic_groups) as u64
    }
}

fn bits_for_magnitude(m: u64) -> u32 {
    64 - m.leading_zeros() + 1
}

impl KernelDesign {
    /// The kernel of `chip`, or an error naming what the templates cannot express.
    pub fn new(chip: &ChipSpec) -> Result<Self, HlsError> {
        chip.validate()?;
        let a = &chip.array;
        let unsupported = |message: String| {
            Err(HlsError::Unsupported {
                chip: chip.name.clone(),
                message,
            })
        };
        if a.accumulator_bits > MAX_ACC_BITS {
            return unsupported(format!(
                "`array.accumulator_bits` = {} is wider than {MAX_ACC_BITS}: the requantisation of the \
                 INT8 contract (docs/int8-datapath.md §6) takes an int32 accumulator",
                a.accumulator_bits
            ));
        }
        for (field, v) in [("array.pi", a.pi), ("array.po", a.po)] {
            if 8 * v > AP_INT_MAX_W {
                return unsupported(format!(
                    "`{field}` = {v}: a word of {v} activations is {} bits, wider than ap_uint's \
                     {AP_INT_MAX_W}-bit limit (at most {} channels)",
                    8 * v,
                    AP_INT_MAX_W / 8
                ));
            }
        }
        let tile_bytes = chip.buffers.weight_bytes_per_unit / 2;
        let per_channel = tile_bytes / a.po as u64;
        let w_groups_max = per_channel.saturating_sub(PARAM_BYTES_PER_CHANNEL) / (9 * a.pi as u64);
        if w_groups_max == 0 {
            return unsupported(format!(
                "`buffers.weight_bytes_per_unit` = {} cannot hold one double-buffered weight tile of \
                 one input-channel group: po * (9 * pi + {PARAM_BYTES_PER_CHANNEL}) * 2 = {} bytes",
                chip.buffers.weight_bytes_per_unit,
                2 * a.po as u64 * (9 * a.pi as u64 + PARAM_BYTES_PER_CHANNEL)
            ));
        }
        let band_bank_words = chip.buffers.fmap_bytes / 2 / (9 * a.pi as u64);
        if band_bank_words == 0 {
            return unsupported(format!(
                "`buffers.fmap_bytes` = {} cannot hold one band word in each of the nine banks \
                 (need at least 2 * 9 * pi = {} bytes)",
                chip.buffers.fmap_bytes,
                18 * a.pi
            ));
        }
        let bpc = chip.dram_bytes_per_cycle().ceil().max(1.0) as usize;
        let axi_bits = (bpc.next_power_of_two() * 8).clamp(32, 1024);
        let sum_bits = bits_for_magnitude(9 * a.pi as u64 * 255 * 127);
        Ok(Self {
            chip: chip.name.clone(),
            units: a.units,
            pi: a.pi,
            po: a.po,
            acc_bits: a.accumulator_bits,
            pipeline_depth: a.pipeline_depth,
            clock_mhz: a.clock_mhz,
            w_groups_max: w_groups_max as usize,
            band_bank_words: band_bank_words as usize,
            axi_bits,
            sum_bits,
        })
    }

    /// Widest layer input the weight tile holds.
    pub fn max_in_channels(&self) -> usize {
        self.w_groups_max * self.pi
    }

    /// MAC lanes of the array: U * 9 * PI * PO.
    pub fn mac_lanes(&self) -> usize {
        self.units * 9 * self.pi * self.po
    }

    /// Words one bank needs for the largest band of `l` under schedule `s`.
    fn band_words_needed(&self, l: &ConvLayer, s: &LayerSchedule) -> u64 {
        let rows = band_in_rows(s.band_rows, l.stride, l.in_size);
        (rows.div_ceil(3) * l.in_size.div_ceil(3) * s.ic_groups) as u64
    }

    /// Checks every layer of `w` against the simulator's buffer rules and
    /// the kernel's buffers, and lays out the DRAM arenas. `w` must be a chain
    /// (each layer reads the previous layer's output).
    pub fn plan(&self, chip: &ChipSpec, w: &Workload) -> Result<Vec<HlsLayer>, HlsError> {
        chip.validate_buffers_for(w)?;
        let mut layers = Vec::with_capacity(w.layers.len());
        let (mut weight_offset, mut param_offset) = (0u64, 0u64);
        let mut in_offset = 0u64;
        let mut out_offset = w
            .layers
            .first()
            .map(|l| (l.conv.in_size * l.conv.in_size * l.conv.in_channels) as u64)
            .unwrap_or(0);
        for (index, wl) in w.layers.iter().enumerate() {
            let l = &wl.conv;
            let does_not_fit = |message: String| {
                Err(HlsError::DoesNotFit {
                    chip: chip.name.clone(),
                    layer: format!("{index} ({})", wl.name),
                    message,
                })
            };
            let s = LayerSchedule::new(chip, l);
            if s.ic_groups > self.w_groups_max {
                let need = 2
                    * self.po as u64
                    * (9 * (s.ic_groups * self.pi) as u64 + PARAM_BYTES_PER_CHANNEL);
                return does_not_fit(format!(
                    "{} input channels are {} groups of {}, the weight tile holds {} groups \
                     (at most {} input channels); `buffers.weight_bytes_per_unit` needs at least {need}",
                    l.in_channels,
                    s.ic_groups,
                    self.pi,
                    self.w_groups_max,
                    self.max_in_channels()
                ));
            }
            let need = self.band_words_needed(l, &s);
            if need > self.band_bank_words as u64 {
                return does_not_fit(format!(
                    "its band of {} output rows needs {} input rows x {} columns x {} groups of {} \
                     channels, {need} words in each of the nine band-buffer banks (rows and columns \
                     rounded up to the banks, channels to PI); the kernel's banks hold {} words \
                     (half of `buffers.fmap_bytes` = {}); `buffers.fmap_bytes` needs at least {}",
                    s.band_rows,
                    band_in_rows(s.band_rows, l.stride, l.in_size),
                    l.in_size,
                    s.ic_groups,
                    self.pi,
                    self.band_bank_words,
                    chip.buffers.fmap_bytes,
                    need * 2 * 9 * self.pi as u64
                ));
            }
            let out_bytes = (l.out_size * l.out_size * l.out_channels) as u64;
            layers.push(HlsLayer {
                index,
                name: wl.name.clone(),
                conv: *l,
                schedule: s,
                weight_offset,
                param_offset,
                in_offset,
                out_offset,
                compute: s.compute_cycles(chip),
                band_bank_words_needed: need,
            });
            weight_offset += l.weight_count() as u64;
            param_offset += 3 * l.out_channels as u64;
            in_offset = out_offset;
            out_offset += out_bytes;
        }
        if [weight_offset, param_offset, out_offset]
            .iter()
            .any(|&v| v > u32::MAX as u64)
        {
            return Err(HlsError::Unsupported {
                chip: chip.name.clone(),
                message: format!(
                    "network `{}` needs DRAM arenas of {weight_offset} weight bytes, {param_offset} \
                     parameter words and {out_offset} feature-map bytes; the descriptor's offsets are 32-bit",
                    w.name
                ),
            });
        }
        Ok(layers)
    }
}

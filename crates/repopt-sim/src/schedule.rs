//! The schedule: how one conv layer is tiled onto the array. The HLS
//! generator implements this same schedule literally; `docs/simulator.md`
//! gives the formulas.
//!
//! For a layer with I input channels, O output channels, input map H x H,
//! output map E x E (E = floor((H - 1) / s) + 1) and stride s, on U units of
//! PI x PO channels:
//!
//! * output channels: a *pass* computes U * PO output channels, unit u taking
//!   channels `p * U * PO + u * PO ..+ PO`; `passes = ceil(O / (U * PO))`;
//! * input channels: each unit walks `G = ceil(I / PI)` groups of PI input
//!   channels, accumulating in PO accumulators per output pixel;
//! * rows: a *band* is R output rows (full width) needing
//!   `min((R - 1) * s + 3, H)` input rows (2-row halo for the 3x3 window,
//!   stride aware); R is the largest value whose double-buffered input and
//!   output bands fit the feature-map buffer, then balanced over the bands;
//! * loop order: `for pass { for band { load(in band); compute; store(out band) } }`
//!   with the next pass's weights, the next band's input and the previous
//!   band's output moving through DRAM while a band computes (double buffers).
//!   When one band covers the whole map the input stays on chip across passes.
//! * per tile (pass, band) every unit runs one pipelined loop of
//!   `R * E * G` iterations (II = 1) plus `pipeline_depth` cycles of fill/drain.

use repopt_spec::ConvLayer;
use serde::Serialize;

use crate::chip::{ChipSpec, PARAM_BYTES_PER_CHANNEL};

fn div_ceil(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}

/// The tiling of one layer on one chip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LayerSchedule {
    pub layer: ConvLayer,
    /// G = ceil(I / PI): input-channel groups each unit walks per output pixel.
    pub ic_groups: usize,
    /// U * PO: output channels computed together in one pass.
    pub oc_per_pass: usize,
    /// ceil(O / (U * PO)).
    pub passes: usize,
    /// R: output rows per band (the last band may be shorter).
    pub band_rows: usize,
    /// ceil(E / R).
    pub bands: usize,
    /// One band covers the map: the input is loaded once for all passes.
    pub input_resident: bool,
}

/// One tile: one band of one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Tile {
    pub pass: usize,
    pub band: usize,
    /// First output row and number of output rows.
    pub out_row0: usize,
    pub out_rows: usize,
    /// First input row and number of input rows (halo included, clipped to the map).
    pub in_row0: usize,
    pub in_rows: usize,
    /// First output channel of the pass and channels actually computed.
    pub oc0: usize,
    pub oc: usize,
    /// Weight bytes loaded before this tile (the pass's weights, first band only).
    pub weight_bytes: u64,
    /// Input bytes loaded for this tile (0 when the input is resident).
    pub in_bytes: u64,
    /// Output bytes stored after this tile.
    pub out_bytes: u64,
    /// Pipelined-loop iterations of each unit: out_rows * E * G.
    pub iterations: u64,
}

/// Per-layer compute cycles: the trip counts of the pipelined loops (what the
/// HLS kernel's loops must match) and the fill/drain they add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ComputeCycles {
    /// Sum over tiles of the pipelined-loop trip count: passes * E * E * G.
    pub iterations: u64,
    /// passes * bands * pipeline_depth.
    pub fill_drain: u64,
    /// passes * bands.
    pub tiles: u64,
}

impl ComputeCycles {
    pub fn total(&self) -> u64 {
        self.iterations + self.fill_drain
    }
}

/// Input rows a band of `r` output rows needs at stride `s` (2-row halo),
/// clipped to the map height `h`.
pub fn band_in_rows(r: usize, s: usize, h: usize) -> usize {
    ((r - 1) * s + 3).min(h)
}

/// Feature-map buffer bytes a band of `r` output rows needs: two input bands
/// and two output bands (double buffering).
pub fn fmap_bytes_for_band(chip: &ChipSpec, l: &ConvLayer, r: usize) -> u64 {
    let oc = l.out_channels.min(chip.array.units * chip.array.po);
    let inb = band_in_rows(r, l.stride, l.in_size) * l.in_size * l.in_channels;
    let outb = r * l.out_size * oc;
    2 * (inb + outb) as u64
}

/// Smallest feature-map buffer that runs `l`: bands of one output row.
pub fn min_fmap_buffer_bytes(chip: &ChipSpec, l: &ConvLayer) -> u64 {
    fmap_bytes_for_band(chip, l, 1)
}

/// Bytes of one unit's weight tile: PO * (9 * I + parameter bytes).
pub fn weight_tile_bytes(chip: &ChipSpec, l: &ConvLayer) -> u64 {
    (chip.array.po as u64) * (9 * l.in_channels as u64 + PARAM_BYTES_PER_CHANNEL)
}

/// Smallest per-unit weight buffer that runs `l`: two tiles (double buffering).
pub fn min_weight_buffer_bytes(chip: &ChipSpec, l: &ConvLayer) -> u64 {
    2 * weight_tile_bytes(chip, l)
}

impl LayerSchedule {
    /// The schedule of `l` on `chip`. The chip must have been validated for
    /// the layer (`ChipSpec::validate_for`); a buffer too small for one band
    /// still yields bands of one row.
    pub fn new(chip: &ChipSpec, l: &ConvLayer) -> Self {
        let a = &chip.array;
        let ic_groups = div_ceil(l.in_channels, a.pi);
        let oc_per_pass = a.units * a.po;
        let passes = div_ceil(l.out_channels, oc_per_pass);
        let e = l.out_size;
        // Largest R in 1..=E whose double-buffered bands fit (monotone in R).
        let (mut lo, mut hi) = (1usize, e);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if fmap_bytes_for_band(chip, l, mid) <= chip.buffers.fmap_bytes {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let bands = div_ceil(e, lo);
        // Balance: same number of bands, rows spread evenly.
        let band_rows = div_ceil(e, bands);
        LayerSchedule {
            layer: *l,
            ic_groups,
            oc_per_pass,
            passes,
            band_rows,
            bands,
            input_resident: bands == 1,
        }
    }

    /// Number of tiles (passes * bands).
    pub fn tile_count(&self) -> usize {
        self.passes * self.bands
    }

    /// Tile `k` in execution order (pass-major, band-minor).
    pub fn tile(&self, chip: &ChipSpec, k: usize) -> Tile {
        let l = &self.layer;
        let (pass, band) = (k / self.bands, k % self.bands);
        let out_row0 = band * self.band_rows;
        let out_rows = self.band_rows.min(l.out_size - out_row0);
        let s = l.stride;
        let first = (out_row0 * s).saturating_sub(1);
        let last = ((out_row0 + out_rows - 1) * s + 1).min(l.in_size - 1);
        let in_rows = last + 1 - first;
        let oc0 = pass * self.oc_per_pass;
        let oc = self.oc_per_pass.min(l.out_channels - oc0);
        let weight_bytes = if band == 0 {
            oc as u64 * (9 * l.in_channels as u64 + PARAM_BYTES_PER_CHANNEL)
        } else {
            0
        };
        let in_bytes = if self.input_resident && pass > 0 {
            0
        } else {
            (in_rows * l.in_size * l.in_channels) as u64
        };
        let out_bytes = (out_rows * l.out_size * oc) as u64;
        let iterations = (out_rows * l.out_size * self.ic_groups) as u64;
        let _ = chip;
        Tile {
            pass,
            band,
            out_row0,
            out_rows,
            in_row0: first,
            in_rows,
            oc0,
            oc,
            weight_bytes,
            in_bytes,
            out_bytes,
            iterations,
        }
    }

    /// Every tile in execution order.
    pub fn tiles(&self, chip: &ChipSpec) -> Vec<Tile> {
        (0..self.tile_count()).map(|k| self.tile(chip, k)).collect()
    }

    pub fn compute_cycles(&self, chip: &ChipSpec) -> ComputeCycles {
        let l = &self.layer;
        let tiles = self.tile_count() as u64;
        ComputeCycles {
            iterations: (self.passes * l.out_size * l.out_size * self.ic_groups) as u64,
            fill_drain: tiles * chip.array.pipeline_depth,
            tiles,
        }
    }
}

/// The per-layer compute-cycle prediction the HLS trip counts are checked
/// against: `passes * E * E * ceil(I / PI)` pipelined iterations per unit,
/// plus `passes * bands * pipeline_depth` fill/drain cycles.
pub fn compute_cycles(chip: &ChipSpec, l: &ConvLayer) -> ComputeCycles {
    LayerSchedule::new(chip, l).compute_cycles(chip)
}

/// One layer's plan as the HLS generator needs it: the schedule, the bytes of
/// a tile, and the compute-cycle prediction its loop trip counts must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerPlan {
    pub name: String,
    pub schedule: LayerSchedule,
    /// Pipelined-loop trip count of a full band: band_rows * E * G.
    pub full_band_iterations: u64,
    /// Trip count of the last (possibly shorter) band.
    pub last_band_iterations: u64,
    pub weight_tile_bytes_per_unit: u64,
    pub fmap_bytes_used: u64,
    pub compute: ComputeCycles,
}

/// The plan of every layer of `w` on `chip` (the chip should be validated for `w`).
pub fn network_plan(chip: &ChipSpec, w: &crate::Workload) -> Vec<LayerPlan> {
    w.layers
        .iter()
        .map(|wl| {
            let s = LayerSchedule::new(chip, &wl.conv);
            let e = wl.conv.out_size as u64;
            let last_rows = (wl.conv.out_size - (s.bands - 1) * s.band_rows) as u64;
            LayerPlan {
                name: wl.name.clone(),
                schedule: s,
                full_band_iterations: s.band_rows as u64 * e * s.ic_groups as u64,
                last_band_iterations: last_rows * e * s.ic_groups as u64,
                weight_tile_bytes_per_unit: weight_tile_bytes(chip, &wl.conv),
                fmap_bytes_used: fmap_bytes_for_band(chip, &wl.conv, s.band_rows),
                compute: s.compute_cycles(chip),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use repopt_spec::preset;

    #[test]
    fn tiles_cover_every_row_and_channel_once() {
        let chip = ChipSpec::preset("edge-fpga").unwrap();
        for name in ["tiny", "B1"] {
            for l in preset(name).unwrap().conv_layers() {
                let s = LayerSchedule::new(&chip, &l);
                let tiles = s.tiles(&chip);
                let rows: usize = tiles.iter().map(|t| t.out_rows * t.oc).sum();
                assert_eq!(rows, l.out_size * l.out_channels, "{}", l.name());
                let iters: u64 = tiles.iter().map(|t| t.iterations).sum();
                assert_eq!(iters, s.compute_cycles(&chip).iterations);
                for t in &tiles {
                    // The band's input rows cover its windows' taps.
                    let lo = (t.out_row0 * l.stride) as isize - 1;
                    let hi = ((t.out_row0 + t.out_rows - 1) * l.stride + 1) as isize;
                    assert!(t.in_row0 as isize <= lo.max(0));
                    assert!((t.in_row0 + t.in_rows) as isize > hi.min(l.in_size as isize - 1));
                    assert!(fmap_bytes_for_band(&chip, &l, t.out_rows) <= chip.buffers.fmap_bytes);
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn tiles_partition_the_layer_on_random_chips(
            in_ch in 1usize..40, out_ch in 1usize..70, size in 1usize..40, stride in 1usize..3,
            units in 1usize..6, pi in 1usize..17, po in 1usize..17, extra in 0u64..5000,
        ) {
            let mut chip = ChipSpec::preset("edge-fpga").unwrap();
            chip.array.units = units;
            chip.array.pi = pi;
            chip.array.po = po;
            let l = ConvLayer {
                index: 0, stage: 0, block: 0, in_channels: in_ch, out_channels: out_ch,
                stride, in_size: size, out_size: repopt_spec::conv_out_size(size, stride),
                has_identity: false,
            };
            chip.buffers.fmap_bytes = min_fmap_buffer_bytes(&chip, &l) + extra;
            let s = LayerSchedule::new(&chip, &l);
            let mut covered = vec![0u32; l.out_size * l.out_channels];
            let mut iters = 0;
            for t in s.tiles(&chip) {
                proptest::prop_assert!(t.out_rows >= 1 && t.oc >= 1);
                proptest::prop_assert!(
                    fmap_bytes_for_band(&chip, &l, t.out_rows) <= chip.buffers.fmap_bytes
                );
                let lo = (t.out_row0 * stride).saturating_sub(1);
                let hi = ((t.out_row0 + t.out_rows - 1) * stride + 1).min(size - 1);
                proptest::prop_assert_eq!((t.in_row0, t.in_rows), (lo, hi + 1 - lo));
                for y in t.out_row0..t.out_row0 + t.out_rows {
                    for o in t.oc0..t.oc0 + t.oc {
                        covered[y * out_ch + o] += 1;
                    }
                }
                iters += t.iterations;
            }
            proptest::prop_assert!(covered.iter().all(|&c| c == 1));
            proptest::prop_assert_eq!(iters, s.compute_cycles(&chip).iterations);
            let (r, _) = crate::report::layer_dram_bytes(&s);
            let loaded: u64 = s.tiles(&chip).iter().map(|t| t.in_bytes + t.weight_bytes).sum();
            proptest::prop_assert_eq!(r, loaded);
        }
    }
}

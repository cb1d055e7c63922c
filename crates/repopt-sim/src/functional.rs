//! Functional execution: an INT8 network run the way the array tiles it
//! (`docs/simulator.md` §2), bit-exact to the golden engine of
//! `repopt-int8` (`docs/int8-datapath.md`).
//!
//! Per layer, every tile (pass, band) copies its input band into a band
//! buffer (rows outside the map read 0, contract §3), then every unit walks
//! its output pixels and, per cycle, adds one group of PI input channels x
//! 3x3 taps into its PO accumulators, which start at the bias. After every
//! cycle each accumulator is checked against the chip's `accumulator_bits`:
//! a partial sum that does not fit is an overflow error naming the layer, the
//! output position and channel, the value, the width, and where in the
//! schedule it happened (contract §4 allows this conservative partial-sum
//! check; a value different from the exact sum is never produced). Then the
//! accumulators are requantised (contract §6). Tiles run in parallel (rayon).
//! Pooling and the head run on the host with the golden functions (§7, §8).

use rayon::prelude::*;
use repopt_int8::arith::{fits_bits, requantize_u8};
use repopt_int8::golden::{self, Activation};
use repopt_int8::{Int8Error, Int8Layer, Int8Model, LayerGeometry, Outputs};
use repopt_spec::ConvLayer;

use crate::chip::ChipSpec;
use crate::schedule::{LayerSchedule, Tile};
use crate::workload::{Workload, WorkloadLayer};
use crate::SimError;

/// Errors of the functional path.
#[derive(Debug, thiserror::Error)]
pub enum FunctionalError {
    #[error(
        "layer {layer} ({name}): accumulator overflow at output (y {y}, x {x}, channel {channel}): \
         partial sum {value} does not fit the chip's {bits}-bit accumulator \
         (pass {pass}, band {band}, unit {unit}, input-channel group {group} of {groups})"
    )]
    AccumulatorOverflow {
        layer: usize,
        name: String,
        y: usize,
        x: usize,
        channel: usize,
        value: i64,
        bits: u32,
        pass: usize,
        band: usize,
        unit: usize,
        group: usize,
        groups: usize,
    },
    #[error(transparent)]
    Chip(#[from] SimError),
    #[error(transparent)]
    Int8(#[from] Int8Error),
    #[error("layer {layer} ({name}): input has {found} values, expected {expected}")]
    InputLength {
        layer: usize,
        name: String,
        found: usize,
        expected: usize,
    },
}

fn conv_of(g: &LayerGeometry) -> ConvLayer {
    ConvLayer {
        index: g.index,
        stage: 0,
        block: g.index,
        in_channels: g.in_channels,
        out_channels: g.out_channels,
        stride: g.stride,
        in_size: g.in_size,
        out_size: g.out_size,
        has_identity: g.in_channels == g.out_channels && g.stride == 1,
    }
}

/// The workload of an INT8 model (layer names from the model).
pub fn workload_of(model: &Int8Model) -> Workload {
    Workload {
        name: model.name.clone(),
        layers: model
            .layers
            .iter()
            .map(|l| WorkloadLayer {
                name: l.geometry.name.clone(),
                conv: conv_of(&l.geometry),
            })
            .collect(),
    }
}

/// One tile's output: `out_rows x E x oc` HWC (channels of the pass only).
fn run_tile<T: Activation + Default + Send + Sync>(
    chip: &ChipSpec,
    layer: &Int8Layer,
    s: &LayerSchedule,
    t: &Tile,
    input: &[T],
) -> Result<Vec<u8>, FunctionalError> {
    let g = &layer.geometry;
    let (h, ci, e, st) = (g.in_size, g.in_channels, g.out_size, g.stride);
    let (pi, po, units) = (chip.array.pi, chip.array.po, chip.array.units);
    let bits = chip.array.accumulator_bits;
    // The band buffer: `in_rows` rows of the map (HWC), as loaded from DRAM.
    let band = &input[t.in_row0 * h * ci..(t.in_row0 + t.in_rows) * h * ci];
    let groups = s.ic_groups;
    let mut out = vec![0u8; t.out_rows * e * t.oc];
    let mut acc = vec![0i64; po];
    for unit in 0..units {
        let c0 = unit * po; // first channel of this unit, relative to the pass
        if c0 >= t.oc {
            break; // idle unit in the last pass
        }
        let nc = po.min(t.oc - c0);
        for ry in 0..t.out_rows {
            let y = t.out_row0 + ry;
            for x in 0..e {
                for (k, a) in acc[..nc].iter_mut().enumerate() {
                    *a = layer.bias[t.oc0 + c0 + k] as i64;
                }
                // One pipelined iteration per group: 3x3 x PI x PO MACs.
                for grp in 0..groups {
                    let i0 = grp * pi;
                    let i1 = (i0 + pi).min(ci);
                    for ky in 0..3 {
                        let iy = (y * st + ky) as isize - 1;
                        if iy < 0 || iy >= h as isize {
                            continue; // padding row: reads 0
                        }
                        let row = iy as usize - t.in_row0;
                        for kx in 0..3 {
                            let ix = (x * st + kx) as isize - 1;
                            if ix < 0 || ix >= h as isize {
                                continue; // padding column: reads 0
                            }
                            let px = &band[(row * h + ix as usize) * ci..][i0..i1];
                            for (k, a) in acc[..nc].iter_mut().enumerate() {
                                let o = t.oc0 + c0 + k;
                                let w0 = ((o * 3 + ky) * 3 + kx) * ci;
                                let w = &layer.weights[w0 + i0..w0 + i1];
                                let mut sum = 0i64;
                                for (&wv, &xv) in w.iter().zip(px) {
                                    sum += wv as i64 * xv.widen();
                                }
                                *a += sum;
                            }
                        }
                    }
                    for (k, &a) in acc[..nc].iter().enumerate() {
                        if !fits_bits(a, bits) {
                            return Err(FunctionalError::AccumulatorOverflow {
                                layer: g.index,
                                name: g.name.clone(),
                                y,
                                x,
                                channel: t.oc0 + c0 + k,
                                value: a,
                                bits,
                                pass: t.pass,
                                band: t.band,
                                unit,
                                group: grp,
                                groups,
                            });
                        }
                    }
                }
                for (k, &a) in acc[..nc].iter().enumerate() {
                    let o = t.oc0 + c0 + k;
                    // Fits `bits` <= 64; requantisation takes the contract's
                    // int32 accumulator (wider chips still hold int32 sums,
                    // as the model's bounds guarantee; checked here).
                    let a32 =
                        i32::try_from(a).map_err(|_| FunctionalError::AccumulatorOverflow {
                            layer: g.index,
                            name: g.name.clone(),
                            y,
                            x,
                            channel: o,
                            value: a,
                            bits: 32,
                            pass: t.pass,
                            band: t.band,
                            unit,
                            group: groups - 1,
                            groups,
                        })?;
                    out[(ry * e + x) * t.oc + c0 + k] =
                        requantize_u8(a32, layer.multiplier[o], layer.shift[o]);
                }
            }
        }
    }
    Ok(out)
}

/// One conv layer on the chip: HWC input (i8 for layer 0, u8 after), HWC u8 output.
pub fn run_layer<T: Activation + Default + Send + Sync>(
    chip: &ChipSpec,
    layer: &Int8Layer,
    input: &[T],
) -> Result<Vec<u8>, FunctionalError> {
    let g = &layer.geometry;
    if input.len() != g.input_len() {
        return Err(FunctionalError::InputLength {
            layer: g.index,
            name: g.name.clone(),
            found: input.len(),
            expected: g.input_len(),
        });
    }
    let conv = conv_of(g);
    let w = Workload {
        name: g.name.clone(),
        layers: vec![WorkloadLayer {
            name: g.name.clone(),
            conv,
        }],
    };
    chip.validate_buffers_for(&w)?;
    let s = LayerSchedule::new(chip, &conv);
    let tiles = s.tiles(chip);
    let results: Vec<Result<Vec<u8>, FunctionalError>> = tiles
        .par_iter()
        .map(|t| run_tile(chip, layer, &s, t, input))
        .collect();
    // Assemble the tiles' outputs; the first error in schedule order wins.
    let (e, co) = (g.out_size, g.out_channels);
    let mut out = vec![0u8; e * e * co];
    for (t, r) in tiles.iter().zip(results) {
        let part = r?;
        for ry in 0..t.out_rows {
            for x in 0..e {
                let dst = ((t.out_row0 + ry) * e + x) * co + t.oc0;
                let src = (ry * e + x) * t.oc;
                out[dst..dst + t.oc].copy_from_slice(&part[src..src + t.oc]);
            }
        }
    }
    Ok(out)
}

/// A forward pass from an already quantised int8 input: conv layers on the
/// chip, pooling and head on the host (golden functions).
pub fn run_network_quantized(
    chip: &ChipSpec,
    model: &Int8Model,
    input: Vec<i8>,
) -> Result<Outputs, FunctionalError> {
    model.validate()?;
    chip.validate_buffers_for(&workload_of(model))?;
    let mut per_layer: Vec<Vec<u8>> = Vec::with_capacity(model.layers.len());
    for (i, layer) in model.layers.iter().enumerate() {
        let out = if i == 0 {
            run_layer(chip, layer, &input)?
        } else {
            run_layer(chip, layer, &per_layer[i - 1])?
        };
        per_layer.push(out);
    }
    let pooled = match (model.layers.last(), per_layer.last()) {
        (Some(l), Some(fm)) => {
            golden::global_avg_pool(fm, l.geometry.out_size, l.geometry.out_channels)
        }
        _ => Vec::new(),
    };
    let logits = golden::run_head(&model.head, &pooled)?;
    Ok(Outputs {
        input,
        per_layer,
        pooled,
        logits,
    })
}

/// A forward pass from an HWC uint8 image (quantised with the model's LUT).
pub fn run_network(
    chip: &ChipSpec,
    model: &Int8Model,
    image: &[u8],
) -> Result<Outputs, FunctionalError> {
    let input = golden::quantize_input(model, image)?;
    run_network_quantized(chip, model, input)
}

/// Layer-by-layer comparison with the golden engine: `Ok(layers compared)`
/// when every layer output, the pooled features and the logits are equal;
/// otherwise an error naming the first layer that differs and where.
pub fn check_against_golden(
    chip: &ChipSpec,
    model: &Int8Model,
    image: &[u8],
) -> Result<usize, String> {
    let gold = golden::run_network(model, image).map_err(|e| format!("golden engine: {e}"))?;
    let sim = run_network(chip, model, image).map_err(|e| format!("simulator: {e}"))?;
    for (i, (a, b)) in sim.per_layer.iter().zip(&gold.per_layer).enumerate() {
        if let Some(k) = a.iter().zip(b).position(|(x, y)| x != y) {
            let g = &model.layers[i].geometry;
            let c = g.out_channels;
            return Err(format!(
                "layer {i} ({}) differs first at (y {}, x {}, channel {}): simulator {} golden {}",
                g.name,
                k / c / g.out_size,
                k / c % g.out_size,
                k % c,
                a[k],
                b[k]
            ));
        }
    }
    if sim.pooled != gold.pooled || sim.logits != gold.logits {
        return Err("pooled features or logits differ".into());
    }
    Ok(sim.per_layer.len())
}

pub use repopt_int8::Int8Model as Model;

/// Loads an INT8 model file set (`repopt-int8` format).
pub fn load_model(dir: &std::path::Path) -> Result<Int8Model, FunctionalError> {
    Ok(Int8Model::load(dir)?)
}

/// Runs `images` random images (deterministic in `seed`) through the chip
/// and the golden engine; `Ok(layers compared per image)` when all agree.
pub fn check_random_images(
    chip: &ChipSpec,
    model: &Int8Model,
    images: usize,
    seed: u64,
) -> Result<usize, String> {
    let mut layers = 0;
    for k in 0..images {
        let image = repopt_int8::testutil::random_image(seed.wrapping_add(k as u64), model);
        layers =
            check_against_golden(chip, model, &image).map_err(|e| format!("image {k}: {e}"))?;
    }
    Ok(layers)
}

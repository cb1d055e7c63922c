//! A first-order resource estimate of the generated kernel (DSP, BRAM, URAM,
//! LUT) against the chip's FPGA part. It counts what the templates
//! instantiate (partitioned banks, unrolled multipliers); it is a sizing
//! guide, not a synthesis result (`docs/hls.md` gives the rules and their
//! accuracy).

use serde::Serialize;

use crate::design::KernelDesign;

/// URAM blocks of parts the presets name (the chip format has no URAM field).
const KNOWN_URAM: [(&str, u64); 5] = [
    ("xczu7ev", 96),
    ("xcu250", 1280),
    ("xcu200", 960),
    ("xcu280", 960),
    ("xcu55c", 960),
];

/// Bits up to which a weight bank always goes to LUT RAM.
const LUTRAM_MAX_BITS: u64 = 2048;

/// One resource: the estimate, what the part has, and the share.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resource {
    pub name: String,
    pub estimate: u64,
    /// What the part has; `None` when the chip names no part (or, for URAM,
    /// a part this table does not know).
    pub available: Option<u64>,
    pub utilisation: Option<f64>,
    /// What the estimate is made of.
    pub breakdown: String,
}

/// The estimate for a kernel on its chip's part.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceEstimate {
    pub part: Option<String>,
    pub resources: Vec<Resource>,
    /// `Some(false)` when a resource exceeds the part; `None` without a part.
    pub fits: Option<bool>,
    pub warnings: Vec<String>,
    /// Where the band buffer is bound (`uram` when the part has URAM).
    pub band_impl: String,
    /// Where the weight banks are bound (`lutram` when they are tiny).
    pub weight_impl: String,
}

/// BRAM18 blocks for one bank of `depth` words of `width` bits, the best of
/// the block's aspect ratios (16K x 1 .. 512 x 36).
fn bram18_for(width: u64, depth: u64) -> u64 {
    [
        (16384, 1),
        (8192, 2),
        (4096, 4),
        (2048, 9),
        (1024, 18),
        (512, 36),
    ]
    .iter()
    .map(|&(d, w)| width.div_ceil(w) * depth.div_ceil(d))
    .min()
    .unwrap_or(0)
}

/// URAM288 blocks (4K x 72) for one bank.
fn uram_for(width: u64, depth: u64) -> u64 {
    width.div_ceil(72) * depth.div_ceil(4096)
}

/// LUTs of a LUT-RAM bank (64 x 1 per LUT, dual port: two).
fn lutram_for(width: u64, depth: u64) -> u64 {
    2 * width * depth.div_ceil(64)
}

fn uram_of_part(part: &str) -> Option<u64> {
    KNOWN_URAM
        .iter()
        .find(|(p, _)| part.starts_with(p))
        .map(|&(_, n)| n)
}

/// Estimates the kernel's resources on `part` (the chip's `[fpga]` table).
pub fn estimate(k: &KernelDesign, part: Option<&repopt_sim::chip::FpgaPart>) -> ResourceEstimate {
    let (u, pi, po) = (k.units as u64, k.pi as u64, k.po as u64);
    let lanes = k.mac_lanes() as u64;
    let channels = u * po;
    let word = 8 * pi;

    // DSP: two int8 MACs per DSP48E2 (the usual packing of two products that
    // share one operand), and a 32 x 32 requantisation product per channel
    // (2 x 2 DSPs of 27 x 18).
    let dsp_mac = lanes.div_ceil(2);
    let dsp_requant = 4 * channels;

    // Weight tiles, ping-pong (x2): U * PO * 9 banks of W_GROUPS_MAX words of PI bytes.
    let w_banks = 2 * channels * 9;
    let w_depth = k.w_groups_max as u64;
    let tiny = word * w_depth <= LUTRAM_MAX_BITS;
    // Band buffer: 9 banks, ping-pong (x2).
    let b_depth = k.band_bank_words as u64;
    let uram_avail = part.and_then(|p| uram_of_part(&p.name));
    let band_in_uram = uram_avail.is_some_and(|n| n > 0);
    let (bram_band, uram_band) = if band_in_uram {
        (0, 2 * 9 * uram_for(word, b_depth))
    } else {
        (2 * 9 * bram18_for(word, b_depth), 0)
    };

    // LUT: adder trees after the DSPs (~10 LUTs per MAC lane), requantisation
    // rounding, shift and clamp (~6 LUTs per accumulator bit per channel),
    // LUT RAM banks, four m_axi adapters and the control (~2500 each).
    let lut_mac = 10 * lanes;
    let lut_requant = 6 * k.acc_bits as u64 * channels;
    let lut_io = 5 * 2500;
    let lut_logic = lut_mac + lut_requant + lut_io;

    // The weight banks go to BRAM unless they are tiny, or unless the part's
    // BRAM cannot hold them and its LUTs can (each bank is read every cycle,
    // so shallow banks waste most of a block RAM).
    let bram_w = w_banks * bram18_for(word, w_depth);
    let lut_w = w_banks * lutram_for(word, w_depth);
    let weights_in_lutram =
        tiny || part.is_some_and(|p| bram_w + bram_band > p.bram_18k && lut_logic + lut_w <= p.lut);
    let (bram_weights, lut_ram) = if weights_in_lutram {
        (0, lut_w)
    } else {
        (bram_w, 0)
    };

    let dsp = dsp_mac + dsp_requant;
    let bram = bram_weights + bram_band;
    let lut = lut_logic + lut_ram;
    let mk = |name: &str, estimate: u64, available: Option<u64>, breakdown: String| Resource {
        name: name.into(),
        estimate,
        available,
        utilisation: available
            .filter(|&a| a > 0)
            .map(|a| estimate as f64 / a as f64),
        breakdown,
    };
    let resources = vec![
        mk(
            "DSP",
            dsp,
            part.map(|p| p.dsp),
            format!(
                "{dsp_mac} for {lanes} MAC lanes (2 per DSP) + {dsp_requant} for {channels} requantisers"
            ),
        ),
        mk(
            "BRAM_18K",
            bram,
            part.map(|p| p.bram_18k),
            format!(
                "{bram_weights} weight tiles (2 x {} banks of {w_depth} x {word} bits, ping-pong) + {bram_band} band buffer",
                w_banks / 2
            ),
        ),
        mk(
            "URAM",
            uram_band,
            uram_avail,
            format!("band buffer: 2 x 9 banks of {b_depth} x {word} bits (ping-pong)"),
        ),
        mk(
            "LUT",
            lut,
            part.map(|p| p.lut),
            format!(
                "{lut_mac} adder trees + {lut_requant} requantisation + {lut_ram} LUT RAM + {lut_io} AXI and control"
            ),
        ),
    ];
    let mut warnings = Vec::new();
    match part {
        None => warnings.push(
            "the chip names no FPGA part: estimate only, not checked against a part".to_string(),
        ),
        Some(p) => {
            for r in &resources {
                match (r.available, r.utilisation) {
                    (Some(a), Some(f)) if f > 1.0 => warnings.push(format!(
                        "DOES NOT FIT {}: {} needs {} {} but the part has {a} ({:.0}%)",
                        p.name,
                        r.name,
                        r.estimate,
                        r.name,
                        100.0 * f
                    )),
                    (Some(_), Some(f)) if f > 0.85 => warnings.push(format!(
                        "{} at {:.0}% of {}: placement and routing may fail",
                        r.name,
                        100.0 * f,
                        p.name
                    )),
                    (None, _) if r.estimate > 0 => warnings.push(format!(
                        "{}: {} blocks needed, the part's count is unknown here",
                        r.name, r.estimate
                    )),
                    _ => {}
                }
            }
        }
    }
    let fits = part.map(|_| {
        resources
            .iter()
            .all(|r| r.utilisation.is_none_or(|f| f <= 1.0))
    });
    ResourceEstimate {
        part: part.map(|p| p.name.clone()),
        resources,
        fits,
        warnings,
        band_impl: if band_in_uram { "uram" } else { "bram" }.into(),
        weight_impl: if weights_in_lutram { "lutram" } else { "bram" }.into(),
    }
}

impl ResourceEstimate {
    /// A plain-text table with the warnings below it.
    pub fn table(&self) -> String {
        let mut s = format!(
            "resource estimate for {}\n{:<9} {:>10} {:>10} {:>6}\n",
            self.part.as_deref().unwrap_or("(no FPGA part)"),
            "resource",
            "estimate",
            "part",
            "use"
        );
        for r in &self.resources {
            s += &format!(
                "{:<9} {:>10} {:>10} {:>6}\n",
                r.name,
                r.estimate,
                r.available.map_or("-".into(), |a| a.to_string()),
                r.utilisation
                    .map_or("-".into(), |f| format!("{:.0}%", 100.0 * f))
            );
        }
        for w in &self.warnings {
            s += &format!("warning: {w}\n");
        }
        s
    }
}

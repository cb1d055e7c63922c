//! Cross-checks of INT8 implementations against the golden engine, layer by
//! layer, as a list of *rungs*: the golden engine is the reference, every
//! other rung (Candle INT8 here; the simulator and HLS C simulation are
//! appended by their crates) runs the same images and is compared on every
//! byte of every layer, then the pooled features and the logits.

use std::time::Instant;

use repopt_int8::{golden, Int8Model, Outputs};
use serde::Serialize;

use crate::engine::CandleInt8;
use crate::error::{QuantError, Result};

/// One implementation of the INT8 contract that can be checked.
pub trait Rung {
    /// Short name for reports (`candle-cpu`, `sim`, `hls-csim`, ...).
    fn name(&self) -> String;
    /// Every intermediate result of each image (HWC uint8), in order.
    fn run(&mut self, model: &Int8Model, images: &[Vec<u8>]) -> Result<Vec<Outputs>>;
}

/// The golden engine as a rung (the reference; also usable as a sanity rung).
pub struct GoldenRung;

impl Rung for GoldenRung {
    fn name(&self) -> String {
        "golden".into()
    }
    fn run(&mut self, model: &Int8Model, images: &[Vec<u8>]) -> Result<Vec<Outputs>> {
        images
            .iter()
            .enumerate()
            .map(|(i, img)| {
                golden::run_network(model, img)
                    .map_err(|source| QuantError::Engine { image: i, source })
            })
            .collect()
    }
}

/// The Candle INT8 engine as a rung (batched).
pub struct CandleRung {
    pub engine: CandleInt8,
    pub batch_size: usize,
}

impl CandleRung {
    pub fn new(model: &Int8Model, dev: &candle_core::Device) -> Result<Self> {
        Ok(Self {
            engine: CandleInt8::new(model, dev)?,
            batch_size: 32,
        })
    }
}

impl Rung for CandleRung {
    fn name(&self) -> String {
        let dev = if self.engine.device().is_cpu() {
            "cpu"
        } else {
            "cuda"
        };
        format!("candle-{dev}")
    }
    fn run(&mut self, _model: &Int8Model, images: &[Vec<u8>]) -> Result<Vec<Outputs>> {
        let mut all = Vec::with_capacity(images.len());
        let mut start = 0;
        for chunk in images.chunks(self.batch_size.max(1)) {
            let pixels: Vec<u8> = chunk.iter().flatten().copied().collect();
            let out = self.engine.run(&pixels, chunk.len(), true, start)?;
            for i in 0..chunk.len() {
                all.push(out.outputs(i)?);
            }
            start += chunk.len();
        }
        Ok(all)
    }
}

/// Where two implementations first differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub image: usize,
    /// `input`, a layer name with its index (`layer 3 (stage1.1)`), `pooled` or `logits`.
    pub stage: String,
    /// `(y, x, channel)` for maps, `(0, 0, k)` for vectors.
    pub position: (usize, usize, usize),
    pub golden: i64,
    pub other: i64,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (y, x, c) = self.position;
        write!(
            f,
            "image {}, {} at (y={y}, x={x}, channel={c}): golden {} vs {}",
            self.image, self.stage, self.golden, self.other
        )
    }
}

fn first_diff<T: Copy + Into<i64> + PartialEq>(a: &[T], b: &[T]) -> Option<(usize, i64, i64)> {
    if a.len() != b.len() {
        return Some((a.len().min(b.len()), a.len() as i64, b.len() as i64));
    }
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .map(|k| (k, a[k].into(), b[k].into()))
}

/// The first difference between the golden outputs and another rung's for
/// one image, in pipeline order (input, layer 0.., pooled, logits).
pub fn first_mismatch(
    model: &Int8Model,
    image: usize,
    golden: &Outputs,
    other: &Outputs,
) -> Option<Mismatch> {
    let at = |stage: String, k: usize, size: usize, ch: usize, g: i64, o: i64| {
        let ch = ch.max(1);
        let pix = k / ch;
        Mismatch {
            image,
            stage,
            position: (pix / size.max(1), pix % size.max(1), k % ch),
            golden: g,
            other: o,
        }
    };
    let inp = &model.input;
    if let Some((k, g, o)) = first_diff(&golden.input, &other.input) {
        return Some(at("input".into(), k, inp.size, inp.channels, g, o));
    }
    if golden.per_layer.len() != other.per_layer.len() {
        return Some(Mismatch {
            image,
            stage: "layer count".into(),
            position: (0, 0, 0),
            golden: golden.per_layer.len() as i64,
            other: other.per_layer.len() as i64,
        });
    }
    for (l, (a, b)) in golden.per_layer.iter().zip(&other.per_layer).enumerate() {
        if let Some((k, g, o)) = first_diff(a, b) {
            let geo = &model.layers[l].geometry;
            return Some(at(
                format!("layer {l} ({})", geo.name),
                k,
                geo.out_size,
                geo.out_channels,
                g,
                o,
            ));
        }
    }
    if let Some((k, g, o)) = first_diff(&golden.pooled, &other.pooled) {
        return Some(at("pooled".into(), k, 1, usize::MAX, g, o));
    }
    if let Some((k, g, o)) = first_diff(&golden.logits, &other.logits) {
        return Some(at("logits".into(), k, 1, usize::MAX, g, o));
    }
    None
}

/// The verdict of one rung.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RungResult {
    pub rung: String,
    pub seconds: f64,
    /// `None`: every image matched on every layer.
    pub mismatch: Option<Mismatch>,
    /// The rung failed to run (its error message).
    pub error: Option<String>,
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    pub images: usize,
    pub layers: usize,
    pub golden_seconds: f64,
    pub rungs: Vec<RungResult>,
}

impl VerifyReport {
    pub fn all_match(&self) -> bool {
        self.rungs
            .iter()
            .all(|r| r.mismatch.is_none() && r.error.is_none())
    }

    /// One line per rung.
    pub fn lines(&self) -> Vec<String> {
        self.rungs
            .iter()
            .map(|r| match (&r.error, &r.mismatch) {
                (Some(e), _) => format!("{}: ERROR: {e}", r.rung),
                (None, Some(m)) => format!("{}: MISMATCH: first difference at {m}", r.rung),
                (None, None) => format!(
                    "{}: all {} images match on all {} layers (and pooled features, logits) [{:.3}s vs golden {:.3}s]",
                    r.rung, self.images, self.layers, r.seconds, self.golden_seconds
                ),
            })
            .collect()
    }
}

/// Runs the golden engine on `images`, then every rung, and compares.
/// A golden error (e.g. accumulator overflow) is returned as an error: there
/// is no reference to compare against.
pub fn verify(
    model: &Int8Model,
    images: &[Vec<u8>],
    rungs: &mut [Box<dyn Rung>],
) -> Result<VerifyReport> {
    let t = Instant::now();
    let reference = GoldenRung.run(model, images)?;
    let golden_seconds = t.elapsed().as_secs_f64();
    let mut results = Vec::new();
    for rung in rungs.iter_mut() {
        let t = Instant::now();
        let (mismatch, error) = match rung.run(model, images) {
            Err(e) => (None, Some(e.to_string())),
            Ok(out) if out.len() != reference.len() => (
                None,
                Some(format!(
                    "returned {} results for {} images",
                    out.len(),
                    reference.len()
                )),
            ),
            Ok(out) => (
                reference
                    .iter()
                    .zip(&out)
                    .enumerate()
                    .find_map(|(i, (g, o))| first_mismatch(model, i, g, o)),
                None,
            ),
        };
        results.push(RungResult {
            rung: rung.name(),
            seconds: t.elapsed().as_secs_f64(),
            mismatch,
            error,
        });
    }
    Ok(VerifyReport {
        images: images.len(),
        layers: model.layers.len(),
        golden_seconds,
        rungs: results,
    })
}

//! C simulation of a generated project with plain g++ and the open-source
//! `ap_types` headers (no Vitis): compile the kernel and the testbench, run
//! the network layer after layer, and read back the loop trip counts. This
//! is the last rung of the verification ladder (simulator functional path ►
//! HLS C simulation).

use std::path::{Path, PathBuf};
use std::process::Command;

use repopt_int8::{golden, Int8Model, Outputs};
use repopt_sim::ChipSpec;
use serde::Serialize;

use crate::HlsError;

/// What a test or rung prints when the headers are missing.
pub const SKIP_MESSAGE: &str = "SKIPPED: ap_types headers not found; run scripts/fetch_ap_types.sh";

/// Flags every generated source compiles with (`docs/hls.md`):
/// * `-Wno-unknown-pragmas`: g++ does not know `#pragma HLS` (Vitis's own C
///   simulation passes the same);
/// * `-Wno-unused-label`: loops carry the labels Vitis reports them by;
/// * `-Wno-maybe-uninitialized`: the ap_types default constructor reads its
///   own uninitialised storage to clear unused bits; GCC 12 reports this at
///   the header's line after inlining, where `-isystem` does not silence it.
pub const CXX_FLAGS: [&str; 8] = [
    "-std=c++14",
    "-O1",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-unknown-pragmas",
    "-Wno-unused-label",
    "-Wno-maybe-uninitialized",
];

/// The ap_types headers: `$REPOPT_AP_TYPES`, else `~/.cache/repopt/ap_types`
/// (where `scripts/fetch_ap_types.sh` puts them); `None` when absent.
pub fn ap_types_dir() -> Option<PathBuf> {
    let has = |d: &Path| d.join("ap_int.h").is_file() && d.join("hls_stream.h").is_file();
    if let Some(d) = std::env::var_os("REPOPT_AP_TYPES").map(PathBuf::from) {
        return has(&d).then_some(d);
    }
    let d = PathBuf::from(std::env::var_os("HOME")?).join(".cache/repopt/ap_types");
    has(&d).then_some(d)
}

/// One layer's trip counts from `csim_loops.csv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CsimLayer {
    pub layer: usize,
    pub name: String,
    /// Iterations of the pipelined compute loop (all tiles).
    pub compute_iterations: u64,
    pub tiles: u64,
    pub weight_words: u64,
    pub band_words: u64,
    pub store_pixels: u64,
    /// compute_iterations + tiles * pipeline_depth.
    pub hls_compute_cycles: u64,
    /// The simulator's prediction (`repopt_sim::compute_cycles`).
    pub sim_iterations: u64,
    pub sim_compute_cycles: u64,
}

/// The outcome of a passing C simulation.
#[derive(Debug, Clone, Serialize)]
pub struct CsimReport {
    pub project: PathBuf,
    pub layers: Vec<CsimLayer>,
    /// The testbench's output.
    pub log: String,
}

impl CsimReport {
    /// One line for a verification ladder.
    pub fn summary(&self) -> String {
        format!(
            "HLS C simulation: {} layers bit-exact with the simulator; compute-loop trip counts \
             equal the simulator's iterations on every layer ({} iterations in all)",
            self.layers.len(),
            self.layers
                .iter()
                .map(|l| l.compute_iterations)
                .sum::<u64>()
        )
    }
}

fn parse_loops(text: &str) -> Option<Vec<CsimLayer>> {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 10 {
                return None;
            }
            let n = |i: usize| f[i].trim().parse::<u64>().ok();
            Some(CsimLayer {
                layer: n(0)? as usize,
                name: f[1].to_string(),
                compute_iterations: n(2)?,
                tiles: n(3)?,
                weight_words: n(4)?,
                band_words: n(5)?,
                store_pixels: n(6)?,
                hls_compute_cycles: n(7)?,
                sim_iterations: n(8)?,
                sim_compute_cycles: n(9)?,
            })
        })
        .collect()
}

/// Compiles the project's kernel and testbench into `build/csim` under the
/// project folder with g++ (or `$REPOPT_CXX`), [`CXX_FLAGS`], and the headers
/// as `-isystem` so that their own warnings do not fail the build.
pub fn compile(project: &Path, ap_types: &Path) -> Result<PathBuf, HlsError> {
    let build = project.join("build");
    std::fs::create_dir_all(&build).map_err(|e| HlsError::Io {
        path: build.display().to_string(),
        message: e.to_string(),
    })?;
    let exe = build.join("csim");
    // `REPOPT_CXX`, not `CXX`: the flags above are GCC's.
    let out = Command::new(std::env::var("REPOPT_CXX").unwrap_or_else(|_| "g++".into()))
        .args(CXX_FLAGS)
        .arg("-isystem")
        .arg(ap_types)
        .arg("-I")
        .arg(project)
        .arg(project.join("repopt_conv.cpp"))
        .arg(project.join("tb.cpp"))
        .arg("-o")
        .arg(&exe)
        .output()
        .map_err(|e| HlsError::Csim(format!("cannot run g++: {e}")))?;
    if !out.status.success() {
        return Err(HlsError::Csim(format!(
            "g++ failed on {}:\n{}",
            project.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(exe)
}

/// Runs a compiled testbench on a project's `data/`; the report when every
/// layer is bit-exact and every loop count agrees, else an error with the
/// testbench's output (it names the layer, position and values).
pub fn run(exe: &Path, project: &Path) -> Result<CsimReport, HlsError> {
    run_with_outputs(exe, project, None)
}

/// [`run`], also writing each layer's output map into `outputs` (`layer_<i>.bin`).
pub fn run_with_outputs(
    exe: &Path,
    project: &Path,
    outputs: Option<&Path>,
) -> Result<CsimReport, HlsError> {
    let loops = project.join("csim_loops.csv");
    let mut cmd = Command::new(exe);
    cmd.arg(project.join("data")).arg(&loops);
    if let Some(o) = outputs {
        cmd.arg(o);
    }
    let out = cmd
        .output()
        .map_err(|e| HlsError::Csim(format!("cannot run {}: {e}", exe.display())))?;
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(HlsError::Csim(format!(
            "C simulation of {} failed ({}):\n{log}",
            project.display(),
            out.status
        )));
    }
    let text = std::fs::read_to_string(&loops).map_err(|e| HlsError::Io {
        path: loops.display().to_string(),
        message: e.to_string(),
    })?;
    let layers = parse_loops(&text)
        .ok_or_else(|| HlsError::Csim(format!("{} is malformed", loops.display())))?;
    Ok(CsimReport {
        project: project.to_path_buf(),
        layers,
        log,
    })
}

/// Compiles and runs the C simulation of a generated project folder.
/// `Err(HlsError::ApTypesMissing)` when the headers are not installed (a
/// caller may treat that as "skipped").
pub fn run_csim(project: &Path) -> Result<CsimReport, HlsError> {
    let ap = ap_types_dir().ok_or(HlsError::ApTypesMissing)?;
    let exe = compile(project, &ap)?;
    run(&exe, project)
}

/// The verification rung in one call: generates the project of `chip` and
/// `model` (image of `seed`) in a temporary folder and C-simulates it.
pub fn verify_model(chip: &ChipSpec, model: &Int8Model, seed: u64) -> Result<CsimReport, HlsError> {
    let ap = ap_types_dir().ok_or(HlsError::ApTypesMissing)?;
    let dir = tempfile::tempdir().map_err(|e| HlsError::Io {
        path: std::env::temp_dir().display().to_string(),
        message: e.to_string(),
    })?;
    let project = dir.path().join("hls");
    crate::project::generate(chip, model, seed, &project)?;
    let exe = compile(&project, &ap)?;
    run(&exe, &project)
}

/// The C simulation as a rung of the verification ladder: generates the
/// project once, compiles it once, and runs every image (HWC uint8) through
/// the kernel; returns each image's outputs (conv layers from the kernel,
/// pooling and head on the host as in the reference deployment, contract §7,
/// §8). Fails when the kernel differs from the simulator's functional path on
/// any layer or a loop count disagrees.
pub fn run_images(
    chip: &ChipSpec,
    model: &Int8Model,
    images: &[Vec<u8>],
) -> Result<Vec<Outputs>, HlsError> {
    let ap = ap_types_dir().ok_or(HlsError::ApTypesMissing)?;
    let Some(first) = images.first() else {
        return Ok(Vec::new());
    };
    let io = |p: &Path, e: std::io::Error| HlsError::Io {
        path: p.display().to_string(),
        message: e.to_string(),
    };
    let dir = tempfile::tempdir().map_err(|e| io(&std::env::temp_dir(), e))?;
    let project = dir.path().join("hls");
    crate::project::render_project_for_image(chip, model, first)?.write(&project)?;
    let exe = compile(&project, &ap)?;
    let mut all = Vec::with_capacity(images.len());
    for (k, image) in images.iter().enumerate() {
        if k > 0 {
            for (name, bytes) in crate::project::image_data(chip, model, image)? {
                let p = project.join("data").join(name);
                std::fs::write(&p, bytes).map_err(|e| io(&p, e))?;
            }
        }
        let out = project.join(format!("out_{k}"));
        std::fs::create_dir_all(&out).map_err(|e| io(&out, e))?;
        run_with_outputs(&exe, &project, Some(&out))
            .map_err(|e| HlsError::Csim(format!("image {k}: {e}")))?;
        let mut per_layer = Vec::with_capacity(model.layers.len());
        for i in 0..model.layers.len() {
            let p = out.join(format!("layer_{i}.bin"));
            per_layer.push(std::fs::read(&p).map_err(|e| io(&p, e))?);
        }
        let input = golden::quantize_input(model, image)?;
        let pooled = match (model.layers.last(), per_layer.last()) {
            (Some(l), Some(fm)) => {
                golden::global_avg_pool(fm, l.geometry.out_size, l.geometry.out_channels)
            }
            _ => Vec::new(),
        };
        let logits = golden::run_head(&model.head, &pooled)?;
        all.push(Outputs {
            input,
            per_layer,
            pooled,
            logits,
        });
    }
    Ok(all)
}

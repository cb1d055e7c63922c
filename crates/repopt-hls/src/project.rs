//! The generated project folder: templates rendered with the kernel's
//! constants, the testbench's data files (the simulator's outputs), build
//! scripts and the resource report. Everything is rendered in memory and
//! checked first; the folder is then written as a whole (temporary sibling,
//! then renamed into place), so a failed generation never leaves a
//! half-written project behind.

use std::path::{Path, PathBuf};

use askama::Template;
use repopt_int8::{golden, testutil, Int8Model};
use repopt_sim::functional;
use repopt_sim::ChipSpec;
use serde::Serialize;

use crate::design::{HlsLayer, KernelDesign};
use crate::resources::{estimate, ResourceEstimate};
use crate::HlsError;

/// Format line of `data/network.txt`; the testbench rejects other versions.
pub const DATA_FORMAT: &str = "repopt-hls-data";
pub const DATA_VERSION: u32 = 1;

/// Part used in the build scripts when the chip names none.
pub const DEFAULT_PART: &str = "xcu250-figd2104-2L-e";

/// The text files every project has (rendered from `hls_templates/`).
pub const TEXT_FILES: [&str; 7] = [
    "repopt_conv.h",
    "repopt_conv.cpp",
    "tb.cpp",
    "run_hls.tcl",
    "hls_config.cfg",
    "README.md",
    "report.json",
];

/// One row of the README's resource table.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceRow {
    pub name: String,
    pub estimate: String,
    pub available: String,
    /// Estimate / available, in percent.
    pub share: String,
}

/// Every value the templates read.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateVars {
    pub generator: String,
    /// g++ flags of the C simulation (`csim::CXX_FLAGS`).
    pub cxx_flags: String,
    pub chip_name: String,
    pub chip_ident: String,
    pub units: usize,
    pub pi: usize,
    pub po: usize,
    pub mac_lanes: usize,
    pub acc_bits: u32,
    pub sum_bits: u32,
    pub pipeline_depth: u64,
    pub clock_mhz: String,
    pub clock_period_ns: String,
    pub weight_bytes_per_unit: u64,
    pub fmap_bytes: u64,
    pub w_groups_max: usize,
    pub max_in_channels: usize,
    pub band_bank_words: usize,
    pub dram_bytes_per_cycle: String,
    pub axi_bits: usize,
    pub band_impl: String,
    pub weight_impl: String,
    pub has_fpga: bool,
    pub part: String,
    pub network_name: String,
    pub layer_count: usize,
    pub max_band_iterations: u64,
    pub cosim_weight_depth: u64,
    pub cosim_param_depth: u64,
    pub cosim_fmap_depth: u64,
    pub resources: Vec<ResourceRow>,
    pub warnings: Vec<String>,
}

#[derive(Template)]
#[template(path = "repopt_conv.h", escape = "none")]
struct HeaderTpl<'a> {
    p: &'a TemplateVars,
}

#[derive(Template)]
#[template(path = "repopt_conv.cpp", escape = "none")]
struct KernelTpl<'a> {
    p: &'a TemplateVars,
}

#[derive(Template)]
#[template(path = "tb.cpp", escape = "none")]
struct TestbenchTpl<'a> {
    p: &'a TemplateVars,
}

#[derive(Template)]
#[template(path = "run_hls.tcl", escape = "none")]
struct TclTpl<'a> {
    p: &'a TemplateVars,
}

#[derive(Template)]
#[template(path = "hls_config.cfg", escape = "none")]
struct CfgTpl<'a> {
    p: &'a TemplateVars,
}

#[derive(Template)]
#[template(path = "README.md", escape = "none")]
struct ReadmeTpl<'a> {
    p: &'a TemplateVars,
}

/// `report.json`: the kernel, the estimate, and per layer the schedule and
/// the simulator's compute-cycle prediction.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectReport {
    pub format: String,
    pub format_version: u32,
    pub chip: String,
    pub network: String,
    pub kernel: KernelDesign,
    pub resources: ResourceEstimate,
    pub layers: Vec<HlsLayer>,
}

/// A rendered project, not yet on disk.
#[derive(Debug, Clone)]
pub struct Project {
    /// (relative path, contents), text files first, then `data/`.
    pub files: Vec<(String, Vec<u8>)>,
    pub report: ProjectReport,
}

/// The network a project runs when no INT8 model is given: odd channel
/// counts and sizes, stride 1 and 2, deterministic in `seed`.
pub fn demo_model(seed: u64) -> Int8Model {
    let geometry = testutil::chain_geometry(3, 19, &[(13, 1), (21, 2), (10, 1), (7, 2)]);
    let mut m = testutil::random_model_with(seed, &geometry, 5);
    m.name = format!("demo-{seed}");
    m
}

/// A name the testbench reads with `%63s`: no whitespace, at most 63 bytes.
fn token(name: &str) -> String {
    let t: String = name
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(63)
        .collect();
    if t.is_empty() {
        "_".into()
    } else {
        t
    }
}

fn ident(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn network_txt(layers: &[HlsLayer], sizes: [u64; 4]) -> String {
    let mut s = format!(
        "{DATA_FORMAT} {DATA_VERSION}\nsizes {} {} {} {} layers {}\n",
        sizes[0],
        sizes[1],
        sizes[2],
        sizes[3],
        layers.len()
    );
    s += "# layer name I O H E stride input_signed G passes bands band_rows \
          weight_offset param_offset in_offset out_offset sim_iterations sim_fill_drain sim_tiles\n";
    for l in layers {
        let (c, sc) = (&l.conv, &l.schedule);
        s += &format!(
            "layer {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {}\n",
            token(&l.name),
            c.in_channels,
            c.out_channels,
            c.in_size,
            c.out_size,
            c.stride,
            u8::from(l.index == 0),
            sc.ic_groups,
            sc.passes,
            sc.bands,
            sc.band_rows,
            l.weight_offset,
            l.param_offset,
            l.in_offset,
            l.out_offset,
            l.compute.iterations,
            l.compute.fill_drain,
            l.compute.tiles
        );
    }
    s
}

fn render<T: Template>(name: &str, t: &T) -> Result<Vec<u8>, HlsError> {
    t.render()
        .map(String::into_bytes)
        .map_err(|e| HlsError::Render {
            template: name.into(),
            message: e.to_string(),
        })
}

/// The image-dependent test data of `data/`: the quantised input
/// (`input.bin`, through the model's LUT) and every layer's output from the
/// simulator's functional path (`expected_<i>.bin`).
pub fn image_data(
    chip: &ChipSpec,
    model: &Int8Model,
    image: &[u8],
) -> Result<Vec<(String, Vec<u8>)>, HlsError> {
    let input = golden::quantize_input(model, image)?;
    let mut files = vec![(
        "input.bin".to_string(),
        input.iter().map(|&v| v as u8).collect(),
    )];
    let outputs = functional::run_network_quantized(chip, model, input)?;
    for (i, out) in outputs.per_layer.into_iter().enumerate() {
        files.push((format!("expected_{i}.bin"), out));
    }
    Ok(files)
}

/// Renders the project of `chip` running `model` on the random image of
/// `seed` (`repopt_int8::testutil::random_image`).
pub fn render_project(chip: &ChipSpec, model: &Int8Model, seed: u64) -> Result<Project, HlsError> {
    render_project_for_image(chip, model, &testutil::random_image(seed, model))
}

/// Renders the project of `chip` running `model` on `image` (HWC uint8; the
/// expected outputs come from the simulator's functional path). Every check
/// runs here; nothing is written.
pub fn render_project_for_image(
    chip: &ChipSpec,
    model: &Int8Model,
    image: &[u8],
) -> Result<Project, HlsError> {
    model.validate()?;
    let k = KernelDesign::new(chip)?;
    let w = functional::workload_of(model);
    let layers = k.plan(chip, &w)?;
    let res = estimate(&k, chip.fpga.as_ref());
    let data = image_data(chip, model, image)?;
    let input_bytes = data[0].1.len() as u64;

    let weight_bytes: u64 = model.layers.iter().map(|l| l.weights.len() as u64).sum();
    let param_words: u64 = model.layers.iter().map(|l| 3 * l.bias.len() as u64).sum();
    let fmap_bytes = layers.last().map_or(input_bytes, |l| {
        l.out_offset + (l.conv.out_size * l.conv.out_size * l.conv.out_channels) as u64
    });
    let mut weights = Vec::with_capacity(weight_bytes as usize);
    let mut params = Vec::with_capacity(4 * param_words as usize);
    for l in &model.layers {
        weights.extend(l.weights.iter().map(|&v| v as u8));
        for o in 0..l.bias.len() {
            for v in [l.bias[o], l.multiplier[o], l.shift[o]] {
                params.extend_from_slice(&v.to_le_bytes());
            }
        }
    }

    let (part, has_fpga) = match &chip.fpga {
        Some(f) => (f.name.clone(), true),
        None => (DEFAULT_PART.to_string(), false),
    };
    let vars = TemplateVars {
        generator: format!("repopt-hls {}", env!("CARGO_PKG_VERSION")),
        cxx_flags: crate::csim::CXX_FLAGS.join(" "),
        chip_name: chip.name.clone(),
        chip_ident: ident(&chip.name),
        units: k.units,
        pi: k.pi,
        po: k.po,
        mac_lanes: k.mac_lanes(),
        acc_bits: k.acc_bits,
        sum_bits: k.sum_bits,
        pipeline_depth: k.pipeline_depth,
        clock_mhz: format!("{}", k.clock_mhz),
        clock_period_ns: format!("{:.3}", 1000.0 / k.clock_mhz),
        weight_bytes_per_unit: chip.buffers.weight_bytes_per_unit,
        fmap_bytes: chip.buffers.fmap_bytes,
        w_groups_max: k.w_groups_max,
        max_in_channels: k.max_in_channels(),
        band_bank_words: k.band_bank_words,
        dram_bytes_per_cycle: format!("{:.1} bytes", chip.dram_bytes_per_cycle()),
        axi_bits: k.axi_bits,
        band_impl: res.band_impl.clone(),
        weight_impl: res.weight_impl.clone(),
        has_fpga,
        part,
        network_name: model.name.clone(),
        layer_count: layers.len(),
        max_band_iterations: layers
            .iter()
            .map(HlsLayer::full_band_iterations)
            .max()
            .unwrap_or(1),
        cosim_weight_depth: weight_bytes.max(1),
        cosim_param_depth: param_words.max(1),
        cosim_fmap_depth: fmap_bytes.max(1),
        resources: res
            .resources
            .iter()
            .map(|r| ResourceRow {
                name: r.name.clone(),
                estimate: r.estimate.to_string(),
                available: r.available.map_or("-".into(), |a| a.to_string()),
                share: r
                    .utilisation
                    .map_or("-".into(), |f| format!("{:.0}%", 100.0 * f)),
            })
            .collect(),
        warnings: res.warnings.clone(),
    };
    let report = ProjectReport {
        format: "repopt-hls-report".into(),
        format_version: 1,
        chip: chip.name.clone(),
        network: model.name.clone(),
        kernel: k,
        resources: res,
        layers: layers.clone(),
    };
    let mut json = serde_json::to_string_pretty(&report).map_err(|e| HlsError::Render {
        template: "report.json".into(),
        message: e.to_string(),
    })?;
    json.push('\n');

    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "repopt_conv.h".into(),
            render("repopt_conv.h", &HeaderTpl { p: &vars })?,
        ),
        (
            "repopt_conv.cpp".into(),
            render("repopt_conv.cpp", &KernelTpl { p: &vars })?,
        ),
        (
            "tb.cpp".into(),
            render("tb.cpp", &TestbenchTpl { p: &vars })?,
        ),
        (
            "run_hls.tcl".into(),
            render("run_hls.tcl", &TclTpl { p: &vars })?,
        ),
        (
            "hls_config.cfg".into(),
            render("hls_config.cfg", &CfgTpl { p: &vars })?,
        ),
        (
            "README.md".into(),
            render("README.md", &ReadmeTpl { p: &vars })?,
        ),
        ("report.json".into(), json.into_bytes()),
        (
            "data/network.txt".into(),
            network_txt(
                &layers,
                [weight_bytes, param_words, fmap_bytes, input_bytes],
            )
            .into_bytes(),
        ),
        ("data/weights.bin".into(), weights),
        ("data/params.bin".into(), params),
    ];
    files.extend(data.into_iter().map(|(n, b)| (format!("data/{n}"), b)));
    Ok(Project { files, report })
}

impl Project {
    /// Writes the project to `out` as a whole: into a temporary sibling
    /// folder first, then renamed into place (an existing `out` is replaced
    /// only once the new one is complete).
    pub fn write(&self, out: &Path) -> Result<(), HlsError> {
        let io = |path: &Path, e: std::io::Error| HlsError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let name = out
            .file_name()
            .ok_or_else(|| HlsError::Io {
                path: out.display().to_string(),
                message: "not a folder name".into(),
            })?
            .to_string_lossy()
            .into_owned();
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}.new-"))
            .tempdir_in(&parent)
            .map_err(|e| io(&parent, e))?;
        for (rel, bytes) in &self.files {
            let p = tmp.path().join(rel);
            if let Some(d) = p.parent() {
                std::fs::create_dir_all(d).map_err(|e| io(d, e))?;
            }
            std::fs::write(&p, bytes).map_err(|e| io(&p, e))?;
        }
        // Swap: move the old folder aside, the new one in, then drop the old.
        let old = tempfile::Builder::new()
            .prefix(&format!(".{name}.old-"))
            .tempdir_in(&parent)
            .map_err(|e| io(&parent, e))?;
        let aside = old.path().join(&name);
        let had_old = out.exists();
        if had_old {
            std::fs::rename(out, &aside).map_err(|e| io(out, e))?;
        }
        let staged = tmp.keep();
        if let Err(e) = std::fs::rename(&staged, out) {
            if had_old {
                let _ = std::fs::rename(&aside, out);
            }
            let _ = std::fs::remove_dir_all(&staged);
            return Err(io(out, e));
        }
        Ok(())
    }
}

/// Renders and writes the project of `chip` and `model` into `out`.
pub fn generate(
    chip: &ChipSpec,
    model: &Int8Model,
    seed: u64,
    out: &Path,
) -> Result<Project, HlsError> {
    let p = render_project(chip, model, seed)?;
    p.write(out)?;
    Ok(p)
}

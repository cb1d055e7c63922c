//! The INT8 model file set (contract, "Files"): a directory holding
//! `manifest.json` (versioned metadata, geometry, scalar scales, tensor names)
//! and `model.safetensors` (I8, I32 and F32 tensors).
//!
//! [`Int8Model::save`] writes each file to a temporary name and renames it into place
//! (safetensors first, manifest last). [`Int8Model::load`] validates everything and
//! never panics on bad input.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use repopt_spec::ModelSpec;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::error::Int8Error;
use crate::model::{
    ActDtype, InputQuant, Int8Head, Int8Layer, Int8Model, LayerGeometry, CONTRACT, FORMAT_NAME,
    FORMAT_VERSION,
};

pub const MANIFEST_FILE: &str = "manifest.json";
pub const TENSORS_FILE: &str = "model.safetensors";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: String,
    format_version: u32,
    contract: String,
    name: String,
    calibration: String,
    #[serde(default)]
    spec: Option<ModelSpec>,
    layouts: Layouts,
    input: ManifestInput,
    layers: Vec<ManifestLayer>,
    head: ManifestHead,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layouts {
    activations: String,
    conv_weight: String,
    head_weight: String,
    input_lut: String,
}

impl Layouts {
    fn contract() -> Self {
        Self {
            activations: "HWC".into(),
            conv_weight: "OHWI".into(),
            head_weight: "KF".into(),
            input_lut: "C,256".into(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestInput {
    channels: usize,
    size: usize,
    mean: Vec<f32>,
    std: Vec<f32>,
    scale: f32,
    dtype: ActDtype,
    lut: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestLayer {
    index: usize,
    name: String,
    in_channels: usize,
    out_channels: usize,
    stride: usize,
    in_size: usize,
    out_size: usize,
    input_dtype: ActDtype,
    input_scale: f32,
    output_scale: f32,
    tensors: LayerTensors,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerTensors {
    weight: String,
    bias: String,
    multiplier: String,
    shift: String,
    weight_scale: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestHead {
    in_features: usize,
    classes: usize,
    input_scale: f32,
    weight_scale: f32,
    logit_scale: f32,
    tensors: HeadTensors,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadTensors {
    weight: String,
    bias: String,
}

/// Tensor names of layer `i` (contract, "Files").
pub fn layer_tensor_name(i: usize, what: &str) -> String {
    format!("layers.{i}.{what}")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Int8Error + '_ {
    move |source| Int8Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, synced, then renamed over `path`.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Int8Error> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{file_name}.tmp-{}-{n}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn le_bytes_i32(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
fn le_bytes_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
fn bytes_i8(v: &[i8]) -> Vec<u8> {
    v.iter().map(|&x| x as u8).collect()
}

impl Int8Model {
    /// Saves the file set into `dir` (created if needed). The model is
    /// validated first: an invalid model is never written.
    pub fn save(&self, dir: &Path) -> Result<(), Int8Error> {
        self.validate()?;
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let tensors_path = dir.join(TENSORS_FILE);

        // name -> (dtype, shape, bytes)
        let mut data: BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)> = BTreeMap::new();
        let inp = &self.input;
        data.insert(
            "input.lut".into(),
            (Dtype::I8, vec![inp.channels, 256], bytes_i8(&inp.lut)),
        );
        let mut layers = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            let g = &l.geometry;
            let o = g.out_channels;
            let names = LayerTensors {
                weight: layer_tensor_name(i, "weight"),
                bias: layer_tensor_name(i, "bias"),
                multiplier: layer_tensor_name(i, "multiplier"),
                shift: layer_tensor_name(i, "shift"),
                weight_scale: layer_tensor_name(i, "weight_scale"),
            };
            data.insert(
                names.weight.clone(),
                (Dtype::I8, g.weight_shape(), bytes_i8(&l.weights)),
            );
            data.insert(
                names.bias.clone(),
                (Dtype::I32, vec![o], le_bytes_i32(&l.bias)),
            );
            data.insert(
                names.multiplier.clone(),
                (Dtype::I32, vec![o], le_bytes_i32(&l.multiplier)),
            );
            data.insert(
                names.shift.clone(),
                (Dtype::I32, vec![o], le_bytes_i32(&l.shift)),
            );
            data.insert(
                names.weight_scale.clone(),
                (Dtype::F32, vec![o], le_bytes_f32(&l.weight_scales)),
            );
            layers.push(ManifestLayer {
                index: g.index,
                name: g.name.clone(),
                in_channels: g.in_channels,
                out_channels: o,
                stride: g.stride,
                in_size: g.in_size,
                out_size: g.out_size,
                input_dtype: g.input_dtype(),
                input_scale: l.input_scale,
                output_scale: l.output_scale,
                tensors: names,
            });
        }
        let h = &self.head;
        data.insert(
            "head.weight".into(),
            (
                Dtype::I8,
                vec![h.classes, h.in_features],
                bytes_i8(&h.weights),
            ),
        );
        data.insert(
            "head.bias".into(),
            (Dtype::I32, vec![h.classes], le_bytes_i32(&h.bias)),
        );

        let views = data
            .iter()
            .map(|(name, (dt, shape, bytes))| {
                TensorView::new(*dt, shape.clone(), bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| Int8Error::SafeTensors {
                        path: tensors_path.display().to_string(),
                        message: format!("tensor `{name}`: {e}"),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let meta = HashMap::from([
            ("format".to_string(), FORMAT_NAME.to_string()),
            ("format_version".to_string(), FORMAT_VERSION.to_string()),
        ]);
        let bytes =
            safetensors::serialize(views, Some(meta)).map_err(|e| Int8Error::SafeTensors {
                path: tensors_path.display().to_string(),
                message: e.to_string(),
            })?;

        let manifest = Manifest {
            format: FORMAT_NAME.into(),
            format_version: self.format_version,
            contract: CONTRACT.into(),
            name: self.name.clone(),
            calibration: self.calibration.clone(),
            spec: self.spec.clone(),
            layouts: Layouts::contract(),
            input: ManifestInput {
                channels: inp.channels,
                size: inp.size,
                mean: inp.mean.clone(),
                std: inp.std.clone(),
                scale: inp.scale,
                dtype: ActDtype::I8,
                lut: "input.lut".into(),
            },
            layers,
            head: ManifestHead {
                in_features: h.in_features,
                classes: h.classes,
                input_scale: h.input_scale,
                weight_scale: h.weight_scale,
                logit_scale: h.logit_scale(),
                tensors: HeadTensors {
                    weight: "head.weight".into(),
                    bias: "head.bias".into(),
                },
            },
        };
        let json =
            serde_json::to_string_pretty(&manifest).map_err(|e| Int8Error::ManifestParse {
                path: dir.join(MANIFEST_FILE).display().to_string(),
                message: e.to_string(),
            })?;
        write_atomic(&tensors_path, &bytes)?;
        write_atomic(&dir.join(MANIFEST_FILE), json.as_bytes())
    }

    /// Loads and validates a file set written by [`Int8Model::save`].
    pub fn load(dir: &Path) -> Result<Self, Int8Error> {
        let mpath = dir.join(MANIFEST_FILE);
        let mp = mpath.display().to_string();
        let text = std::fs::read_to_string(&mpath).map_err(io(&mpath))?;
        let manifest = parse_manifest(&mp, &text)?;
        let tpath = dir.join(TENSORS_FILE);
        let tp = tpath.display().to_string();
        let bytes = std::fs::read(&tpath).map_err(io(&tpath))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| Int8Error::SafeTensors {
            path: tp.clone(),
            message: e.to_string(),
        })?;
        let mut reader = Reader {
            path: tp.clone(),
            st: &st,
            used: Vec::new(),
        };
        let model = build(&mp, &manifest, &mut reader)?;
        let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
        names.sort();
        if let Some(extra) = names.into_iter().find(|n| !reader.used.contains(n)) {
            return Err(Int8Error::UnexpectedTensor {
                path: tp,
                tensor: extra,
            });
        }
        model.validate_as(&mp)?;
        // a derived field, checked once the scales it derives from are valid
        if model.head.logit_scale() != manifest.head.logit_scale {
            return Err(Int8Error::Invalid {
                path: mp,
                field: "head.logit_scale".into(),
                message: format!(
                    "is {}, expected input_scale * weight_scale = {}",
                    manifest.head.logit_scale,
                    model.head.logit_scale()
                ),
            });
        }
        Ok(model)
    }
}

fn parse_manifest(path: &str, text: &str) -> Result<Manifest, Int8Error> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Int8Error::ManifestParse {
            path: path.into(),
            message: e.to_string(),
        })?;
    let format = value.get("format").and_then(|v| v.as_str());
    if format != Some(FORMAT_NAME) {
        return Err(Int8Error::WrongFormat {
            path: path.into(),
            found: value.get("format").map(|v| v.to_string()),
            expected: FORMAT_NAME,
        });
    }
    let version = value.get("format_version").and_then(|v| v.as_u64());
    if version != Some(FORMAT_VERSION as u64) {
        return Err(Int8Error::UnsupportedVersion {
            path: path.into(),
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    serde_json::from_value(value).map_err(|e| Int8Error::ManifestParse {
        path: path.into(),
        message: e.to_string(),
    })
}

struct Reader<'a, 'd> {
    path: String,
    st: &'a SafeTensors<'d>,
    used: Vec<String>,
}

impl Reader<'_, '_> {
    fn view(&mut self, name: &str, dtype: Dtype, shape: &[usize]) -> Result<Vec<u8>, Int8Error> {
        let v = self.st.tensor(name).map_err(|_| Int8Error::MissingTensor {
            path: self.path.clone(),
            tensor: name.into(),
        })?;
        if v.dtype() != dtype {
            return Err(Int8Error::WrongDtype {
                path: self.path.clone(),
                tensor: name.into(),
                expected: format!("{dtype:?}"),
                found: format!("{:?}", v.dtype()),
            });
        }
        if v.shape() != shape {
            return Err(Int8Error::WrongShape {
                path: self.path.clone(),
                tensor: name.into(),
                expected: shape.to_vec(),
                found: v.shape().to_vec(),
            });
        }
        self.used.push(name.to_string());
        Ok(v.data().to_vec())
    }

    fn i8(&mut self, name: &str, shape: &[usize]) -> Result<Vec<i8>, Int8Error> {
        Ok(self
            .view(name, Dtype::I8, shape)?
            .into_iter()
            .map(|b| b as i8)
            .collect())
    }

    fn i32(&mut self, name: &str, shape: &[usize]) -> Result<Vec<i32>, Int8Error> {
        let b = self.view(name, Dtype::I32, shape)?;
        Ok(b.chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    fn f32(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, Int8Error> {
        let b = self.view(name, Dtype::F32, shape)?;
        Ok(b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

fn build(mp: &str, m: &Manifest, r: &mut Reader) -> Result<Int8Model, Int8Error> {
    let bad = |field: String, message: String| Int8Error::Invalid {
        path: mp.into(),
        field,
        message,
    };
    let want = Layouts::contract();
    for (field, found, expected) in [
        (
            "layouts.activations",
            &m.layouts.activations,
            &want.activations,
        ),
        (
            "layouts.conv_weight",
            &m.layouts.conv_weight,
            &want.conv_weight,
        ),
        (
            "layouts.head_weight",
            &m.layouts.head_weight,
            &want.head_weight,
        ),
        ("layouts.input_lut", &m.layouts.input_lut, &want.input_lut),
    ] {
        if found != expected {
            return Err(bad(
                field.into(),
                format!("is {found:?}, expected {expected:?}"),
            ));
        }
    }
    if m.input.dtype != ActDtype::I8 {
        return Err(bad(
            "input.dtype".into(),
            format!("is {:?}, expected I8", m.input.dtype),
        ));
    }
    let lut = r.i8(&m.input.lut, &[m.input.channels, 256])?;
    let input = InputQuant {
        channels: m.input.channels,
        size: m.input.size,
        mean: m.input.mean.clone(),
        std: m.input.std.clone(),
        scale: m.input.scale,
        lut,
    };
    let mut layers = Vec::with_capacity(m.layers.len());
    for (i, ml) in m.layers.iter().enumerate() {
        let geometry = LayerGeometry {
            index: ml.index,
            name: ml.name.clone(),
            in_channels: ml.in_channels,
            out_channels: ml.out_channels,
            stride: ml.stride,
            in_size: ml.in_size,
            out_size: ml.out_size,
        };
        if ml.input_dtype != geometry.input_dtype() {
            return Err(bad(
                format!("layers.{i}.input_dtype"),
                format!(
                    "is {:?}, expected {:?}",
                    ml.input_dtype,
                    geometry.input_dtype()
                ),
            ));
        }
        let o = ml.out_channels;
        let t = &ml.tensors;
        layers.push(Int8Layer {
            weights: r.i8(&t.weight, &geometry.weight_shape())?,
            bias: r.i32(&t.bias, &[o])?,
            multiplier: r.i32(&t.multiplier, &[o])?,
            shift: r.i32(&t.shift, &[o])?,
            weight_scales: r.f32(&t.weight_scale, &[o])?,
            geometry,
            input_scale: ml.input_scale,
            output_scale: ml.output_scale,
        });
    }
    let mh = &m.head;
    let head = Int8Head {
        in_features: mh.in_features,
        classes: mh.classes,
        input_scale: mh.input_scale,
        weight_scale: mh.weight_scale,
        weights: r.i8(&mh.tensors.weight, &[mh.classes, mh.in_features])?,
        bias: r.i32(&mh.tensors.bias, &[mh.classes])?,
    };
    Ok(Int8Model {
        format_version: m.format_version,
        name: m.name.clone(),
        calibration: m.calibration.clone(),
        spec: m.spec.clone(),
        input,
        layers,
        head,
    })
}

//! Errors of the crate. Every message names the file (or `<memory>`), the
//! tensor or field, and what was expected.

use crate::model::ActDtype;

#[derive(Debug, thiserror::Error)]
pub enum Int8Error {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid INT8 manifest: {message}")]
    ManifestParse { path: String, message: String },
    #[error("{path}: `format` is {found:?}, expected \"{expected}\"")]
    WrongFormat {
        path: String,
        found: Option<String>,
        expected: &'static str,
    },
    #[error("{path}: `format_version` is {}, expected {expected} (this build reads version {expected} only)",
        found.map(|v| v.to_string()).unwrap_or_else(|| "missing".into()))]
    UnsupportedVersion {
        path: String,
        found: Option<u64>,
        expected: u32,
    },
    #[error("{path}: not a valid safetensors file: {message}")]
    SafeTensors { path: String, message: String },
    #[error("{path}: tensor `{tensor}` is missing")]
    MissingTensor { path: String, tensor: String },
    #[error("{path}: tensor `{tensor}` is not referenced by the manifest (unexpected tensor)")]
    UnexpectedTensor { path: String, tensor: String },
    #[error("{path}: tensor `{tensor}` has dtype {found}, expected {expected}")]
    WrongDtype {
        path: String,
        tensor: String,
        expected: String,
        found: String,
    },
    #[error("{path}: tensor `{tensor}` has shape {found:?}, expected {expected:?}")]
    WrongShape {
        path: String,
        tensor: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("{path}: `{field}`: {message}")]
    Invalid {
        path: String,
        field: String,
        message: String,
    },
    #[error("layer {layer} ({name}): {what} has {found} values, expected {expected}")]
    InputLength {
        layer: usize,
        name: String,
        what: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("layer {layer} ({name}): input dtype {found:?}, expected {expected:?} (contract: layer 0 reads int8, later layers uint8)")]
    InputDtype {
        layer: usize,
        name: String,
        expected: ActDtype,
        found: ActDtype,
    },
    #[error("layer {layer} ({name}): accumulator overflow at output (y={y}, x={x}, channel={channel}): exact sum {value} does not fit a {bits}-bit accumulator")]
    AccumulatorOverflow {
        layer: usize,
        name: String,
        y: usize,
        x: usize,
        channel: usize,
        value: i64,
        bits: u32,
    },
    #[error("head: accumulator overflow for class {class}: exact sum {value} does not fit a {bits}-bit accumulator")]
    HeadOverflow { class: usize, value: i64, bits: u32 },
    #[error("accumulator width {bits} bits: these layers could overflow (worst case): {layers}")]
    AccumulatorMayOverflow { bits: u32, layers: String },
}

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::geometry::{conv_out_size, ConvLayer};

/// Version of the JSON spec-file format; files of another version are rejected.
pub const SPEC_FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("unknown preset `{name}`; known presets: {known}")]
    UnknownPreset { name: String, known: String },
    #[error("cannot read model spec file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("model spec file {path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("model spec `{name}`: {message}")]
    Invalid { name: String, message: String },
}

/// One stage: `blocks` conv blocks of `width` output channels; the first block
/// of the stage has stride `stride`, the others stride 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageSpec {
    pub blocks: usize,
    pub width: usize,
    pub stride: usize,
}

/// A complete plain 3x3 network description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSpec {
    #[serde(default = "default_version")]
    pub format_version: u32,
    pub name: String,
    pub stages: Vec<StageSpec>,
    pub classes: usize,
    pub in_channels: usize,
    pub image_size: usize,
}

fn default_version() -> u32 {
    SPEC_FORMAT_VERSION
}

impl ModelSpec {
    /// Reads a JSON spec file and validates it.
    pub fn from_file(path: &Path) -> Result<Self, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text).map_err(|e| match e {
            SpecError::Parse { message, .. } => SpecError::Parse {
                path: path.display().to_string(),
                message,
            },
            SpecError::Invalid { name, message } => SpecError::Parse {
                path: path.display().to_string(),
                message: format!("model `{name}`: {message}"),
            },
            other => other,
        })
    }

    pub fn from_json(text: &str) -> Result<Self, SpecError> {
        let spec: ModelSpec = serde_json::from_str(text).map_err(|e| SpecError::Parse {
            path: "<inline>".into(),
            message: e.to_string(),
        })?;
        spec.validate()?;
        Ok(spec)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("ModelSpec serialises")
    }

    /// Looks `name_or_path` up as a preset first, then as a JSON spec file.
    pub fn resolve(name_or_path: &str) -> Result<Self, SpecError> {
        if let Some(spec) = crate::preset(name_or_path) {
            return Ok(spec);
        }
        let path = Path::new(name_or_path);
        if path.exists() {
            return Self::from_file(path);
        }
        Err(SpecError::UnknownPreset {
            name: name_or_path.to_string(),
            known: format!(
                "{} (or a path to a JSON spec file)",
                crate::preset_names().join(", ")
            ),
        })
    }

    /// Same network with another head and input (e.g. 10 classes, 28x28 grey).
    pub fn with_io(mut self, classes: usize, in_channels: usize, image_size: usize) -> Self {
        self.classes = classes;
        self.in_channels = in_channels;
        self.image_size = image_size;
        self
    }

    pub fn validate(&self) -> Result<(), SpecError> {
        let invalid = |message: String| SpecError::Invalid {
            name: self.name.clone(),
            message,
        };
        if self.format_version != SPEC_FORMAT_VERSION {
            return Err(invalid(format!(
                "format_version {} is not supported (expected {SPEC_FORMAT_VERSION})",
                self.format_version
            )));
        }
        if self.stages.is_empty() {
            return Err(invalid(
                "`stages` is empty; at least one stage is needed".into(),
            ));
        }
        for (i, s) in self.stages.iter().enumerate() {
            if s.blocks == 0 || s.width == 0 {
                return Err(invalid(format!(
                    "stage {i}: blocks ({}) and width ({}) must be at least 1",
                    s.blocks, s.width
                )));
            }
            if s.stride != 1 && s.stride != 2 {
                return Err(invalid(format!(
                    "stage {i}: stride {} must be 1 or 2",
                    s.stride
                )));
            }
        }
        if self.classes == 0 || self.in_channels == 0 || self.image_size == 0 {
            return Err(invalid(format!(
                "classes ({}), in_channels ({}) and image_size ({}) must be at least 1",
                self.classes, self.in_channels, self.image_size
            )));
        }
        Ok(())
    }

    /// Width of the last stage, i.e. the feature size the linear head sees.
    pub fn feature_width(&self) -> usize {
        self.stages
            .last()
            .map(|s| s.width)
            .unwrap_or(self.in_channels)
    }

    /// Every conv layer in order, with its geometry at this spec's image size.
    pub fn conv_layers(&self) -> Vec<ConvLayer> {
        let mut layers = Vec::new();
        let mut in_ch = self.in_channels;
        let mut size = self.image_size;
        for (stage, st) in self.stages.iter().enumerate() {
            for block in 0..st.blocks {
                let stride = if block == 0 { st.stride } else { 1 };
                let out = conv_out_size(size, stride);
                layers.push(ConvLayer {
                    index: layers.len(),
                    stage,
                    block,
                    in_channels: in_ch,
                    out_channels: st.width,
                    stride,
                    in_size: size,
                    out_size: out,
                    has_identity: in_ch == st.width && stride == 1,
                });
                in_ch = st.width;
                size = out;
            }
        }
        layers
    }

    /// Multiply-accumulates of one forward pass (conv layers and head).
    pub fn macs(&self) -> u64 {
        let conv: u64 = self.conv_layers().iter().map(|l| l.macs()).sum();
        conv + (self.feature_width() * self.classes) as u64
    }
}

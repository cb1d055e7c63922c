//! The one error type of the crate. Messages name the layer, file, tensor or
//! data set that is wrong and what was expected.

use repopt_int8::Int8Error;

#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    #[error(transparent)]
    Train(#[from] repopt_train::Error),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Int8(#[from] Int8Error),
    #[error(transparent)]
    Data(#[from] repopt_data::DataError),
    /// An engine error (overflow, bad input) while running image `image`.
    #[error("image {image}: {source}")]
    Engine {
        image: usize,
        #[source]
        source: Int8Error,
    },
    /// Data or model that does not fit the network (image size, channels, ...).
    #[error("{what}: {message}")]
    Mismatch { what: String, message: String },
    /// A quantisation step that cannot be represented (multiplier, bias).
    #[error("{field}: {message}")]
    Quantize { field: String, message: String },
    #[error("{0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, QuantError>;

impl QuantError {
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        QuantError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

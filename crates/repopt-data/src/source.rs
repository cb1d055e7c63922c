//! Choosing a dataset from a command-line string.
//!
//! One `--data` argument (`embedded`, `fashion-mnist[:DIR]`, `cifar10:DIR`,
//! `cifar100:DIR`) names both the dataset and where it lives; the same string
//! is stored in checkpoint metadata (serde uses the string form).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::cifar::{load_cifar10, load_cifar100};
use crate::dataset::Split;
use crate::embedded::embedded_fashion_mnist;
use crate::error::DataError;
use crate::fashion::{load_fashion_mnist, DEFAULT_FASHION_MNIST_DIR};
use crate::normalize::Normalization;

/// Where to load a dataset from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DataSource {
    /// The Fashion-MNIST subset compiled into this crate (5 000 / 1 000).
    Embedded,
    /// Full Fashion-MNIST from a directory of IDX files (gzipped or not).
    FashionMnist(PathBuf),
    /// CIFAR-10 binary version, directory of `data_batch_*.bin`, `test_batch.bin`.
    Cifar10(PathBuf),
    /// CIFAR-100 binary version (fine labels), directory of `train.bin`, `test.bin`.
    Cifar100(PathBuf),
}

impl DataSource {
    /// Full Fashion-MNIST from Debian's install location.
    pub fn default_fashion_mnist() -> Self {
        DataSource::FashionMnist(PathBuf::from(DEFAULT_FASHION_MNIST_DIR))
    }

    /// Loads the train and test halves.
    pub fn load(&self) -> Result<Split, DataError> {
        match self {
            DataSource::Embedded => embedded_fashion_mnist(),
            DataSource::FashionMnist(dir) => load_fashion_mnist(dir),
            DataSource::Cifar10(dir) => load_cifar10(dir),
            DataSource::Cifar100(dir) => load_cifar100(dir),
        }
    }

    /// Number of classes, known without loading (to size the classifier).
    pub fn classes(&self) -> usize {
        match self {
            DataSource::Embedded | DataSource::FashionMnist(_) | DataSource::Cifar10(_) => 10,
            DataSource::Cifar100(_) => 100,
        }
    }

    /// `[height, width, channels]` of the images, known without loading.
    pub fn image_shape(&self) -> [usize; 3] {
        match self {
            DataSource::Embedded | DataSource::FashionMnist(_) => [28, 28, 1],
            DataSource::Cifar10(_) | DataSource::Cifar100(_) => [32, 32, 3],
        }
    }

    /// The published full-training-set statistics of this dataset. The
    /// embedded subset uses Fashion-MNIST's, so a model trained on it can be
    /// evaluated on the full set with the same input scaling.
    pub fn known_normalization(&self) -> Normalization {
        match self {
            DataSource::Embedded | DataSource::FashionMnist(_) => Normalization::fashion_mnist(),
            DataSource::Cifar10(_) => Normalization::cifar10(),
            DataSource::Cifar100(_) => Normalization::cifar100(),
        }
    }
}

impl FromStr for DataSource {
    type Err = DataError;

    /// Parses `embedded`, `fashion-mnist`, `fashion-mnist:DIR`,
    /// `cifar10:DIR`, `cifar100:DIR` (names case-insensitive; `fmnist`,
    /// `fashion_mnist`, `cifar-10`, `cifar-100` also accepted).
    fn from_str(s: &str) -> Result<Self, DataError> {
        let bad = |reason: &str| DataError::BadSource {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        let (name, dir) = match s.split_once(':') {
            Some((n, d)) => (n, Some(d)),
            None => (s, None),
        };
        if dir == Some("") {
            return Err(bad("empty directory after ':'"));
        }
        let dir = dir.map(PathBuf::from);
        match name.trim().to_ascii_lowercase().as_str() {
            "embedded" => match dir {
                None => Ok(DataSource::Embedded),
                Some(_) => Err(bad("'embedded' takes no directory")),
            },
            "fashion-mnist" | "fashion_mnist" | "fashionmnist" | "fmnist" => Ok(
                DataSource::FashionMnist(dir.unwrap_or_else(|| DEFAULT_FASHION_MNIST_DIR.into())),
            ),
            "cifar10" | "cifar-10" => dir.map(DataSource::Cifar10).ok_or_else(|| {
                bad("cifar10 needs a directory, e.g. cifar10:/data/cifar-10-batches-bin")
            }),
            "cifar100" | "cifar-100" => dir.map(DataSource::Cifar100).ok_or_else(|| {
                bad("cifar100 needs a directory, e.g. cifar100:/data/cifar-100-binary")
            }),
            "" => Err(bad("empty dataset name")),
            other => Err(bad(&format!("unknown dataset {other:?}"))),
        }
    }
}

impl fmt::Display for DataSource {
    /// The canonical string form, which [`FromStr`] parses back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSource::Embedded => write!(f, "embedded"),
            DataSource::FashionMnist(d) => write!(f, "fashion-mnist:{}", d.display()),
            DataSource::Cifar10(d) => write!(f, "cifar10:{}", d.display()),
            DataSource::Cifar100(d) => write!(f, "cifar100:{}", d.display()),
        }
    }
}

impl Serialize for DataSource {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DataSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_accepted_forms() {
        assert_eq!(
            "embedded".parse::<DataSource>().unwrap(),
            DataSource::Embedded
        );
        assert_eq!(
            "fashion-mnist".parse::<DataSource>().unwrap(),
            DataSource::default_fashion_mnist()
        );
        assert_eq!(
            "Fashion-MNIST:/x/y".parse::<DataSource>().unwrap(),
            DataSource::FashionMnist("/x/y".into())
        );
        assert_eq!(
            "cifar10:/c10".parse::<DataSource>().unwrap(),
            DataSource::Cifar10("/c10".into())
        );
        assert_eq!(
            "cifar-100:rel/dir".parse::<DataSource>().unwrap(),
            DataSource::Cifar100("rel/dir".into())
        );
    }

    #[test]
    fn display_round_trips_and_serde_uses_strings() {
        for s in ["embedded", "fashion-mnist:/a", "cifar10:/b", "cifar100:c"] {
            let src: DataSource = s.parse().unwrap();
            assert_eq!(src.to_string(), s);
            let json = serde_json::to_string(&src).unwrap();
            assert_eq!(json, format!("{s:?}"));
            assert_eq!(serde_json::from_str::<DataSource>(&json).unwrap(), src);
        }
    }

    #[test]
    fn errors_list_accepted_forms() {
        for s in [
            "mnist",
            "cifar10",
            "cifar100",
            "embedded:/x",
            "fashion-mnist:",
            "",
        ] {
            let err = s.parse::<DataSource>().unwrap_err();
            assert!(matches!(err, DataError::BadSource { .. }), "{s}: {err}");
            let msg = err.to_string();
            for form in [
                "embedded",
                "fashion-mnist[:DIR]",
                "cifar10:DIR",
                "cifar100:DIR",
            ] {
                assert!(msg.contains(form), "{msg}");
            }
        }
    }
}

//! The IDX file format (MNIST / Fashion-MNIST), plain or gzipped.
//!
//! An IDX file is a big-endian header — two zero bytes, a type code (`0x08` =
//! unsigned byte, the only type used here), the number of dimensions, then
//! one `u32` per dimension — followed by the row-major data. Image files are
//! `[N, H, W]` (magic `0x00000803`), label files `[N]` (magic `0x00000801`).
//! The embedded subset is stored in this same format, so one parser serves
//! both the Debian files and the compiled-in data.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::dataset::Dataset;
use crate::error::DataError;

/// IDX type code for unsigned bytes.
pub const IDX_TYPE_U8: u8 = 0x08;
/// Magic of a u8 1-D IDX array (label files).
pub const IDX_MAGIC_LABELS: u32 = 0x0000_0801;
/// Magic of a u8 3-D IDX array (image files).
pub const IDX_MAGIC_IMAGES: u32 = 0x0000_0803;

/// A decoded u8 IDX array: its shape and row-major data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// `dims.iter().product()` bytes, row-major.
    pub data: Vec<u8>,
}

/// Returns `bytes`, gunzipped if they start with the gzip magic `1f 8b`.
///
/// Detecting by content rather than by file name lets callers hand in
/// `foo.gz`, an already decompressed `foo`, or embedded bytes alike.
pub fn maybe_gunzip(bytes: Vec<u8>, path: &Path) -> Result<Vec<u8>, DataError> {
    if bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b {
        let mut out = Vec::with_capacity(bytes.len() * 4);
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(|source| DataError::Gzip {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

/// Reads a whole file, gunzipping it if it is gzip.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    maybe_gunzip(bytes, path)
}

/// Parses a decompressed u8 IDX array with `expected_ndims` dimensions.
///
/// `path` is only used in error messages. `what` describes the expected
/// contents ("image array", "label array") for the same purpose.
pub fn parse_idx(
    bytes: &[u8],
    expected_ndims: u8,
    path: &Path,
    what: &str,
) -> Result<IdxArray, DataError> {
    let expected_magic = u32::from(IDX_TYPE_U8) << 8 | u32::from(expected_ndims);
    let what_magic = format!("unsigned-byte {expected_ndims}-D IDX {what}");
    if bytes.len() < 4 {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: format!("IDX magic of {what}"),
            expected: 4,
            found: bytes.len(),
        });
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if magic != expected_magic {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            what: what_magic,
            expected: expected_magic,
            found: magic,
        });
    }
    let header = 4 + 4 * usize::from(expected_ndims);
    if bytes.len() < header {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: format!("IDX header of {what}"),
            expected: header,
            found: bytes.len(),
        });
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let payload = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|p| p.checked_add(header))
        .ok_or_else(|| DataError::BadDims {
            path: path.to_path_buf(),
            expected: format!("an {what} that fits in memory"),
            found: format_dims(&dims),
        })?;
    let what_data = format!("{what} of shape {}", format_dims(&dims));
    if bytes.len() < payload {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: what_data,
            expected: payload,
            found: bytes.len(),
        });
    }
    if bytes.len() > payload {
        return Err(DataError::TrailingData {
            path: path.to_path_buf(),
            what: what_data,
            expected: payload,
            found: bytes.len(),
        });
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Reads and parses a (possibly gzipped) u8 IDX file.
pub fn read_idx(path: &Path, expected_ndims: u8, what: &str) -> Result<IdxArray, DataError> {
    let bytes = read_maybe_gz(path)?;
    parse_idx(&bytes, expected_ndims, path, what)
}

/// Encodes a u8 IDX array (header + data). Panics if `data.len()` does not
/// match `dims` or a dimension exceeds `u32` — it is for writing files we
/// generate ourselves (the embedded subset, test fixtures).
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    assert_eq!(dims.iter().product::<usize>(), data.len(), "IDX data size");
    let ndims = u8::try_from(dims.len()).expect("at most 255 IDX dimensions");
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend_from_slice(&[0, 0, IDX_TYPE_U8, ndims]);
    for &d in dims {
        let d = u32::try_from(d).expect("IDX dimension fits u32");
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Gzips `bytes` at the given level (0-9).
pub fn gzip(bytes: &[u8], level: u32) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    enc.write_all(bytes).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

/// Builds a dataset from decoded IDX image bytes (`[N, H, W]`) and label
/// bytes (`[N]`), checking that counts agree and labels are `< classes`.
///
/// Paths are only used in error messages.
pub fn dataset_from_idx_bytes(
    name: &str,
    images_bytes: &[u8],
    images_path: &Path,
    labels_bytes: &[u8],
    labels_path: &Path,
    classes: usize,
) -> Result<Dataset, DataError> {
    let images = parse_idx(images_bytes, 3, images_path, "image array")?;
    let labels = parse_idx(labels_bytes, 1, labels_path, "label array")?;
    let (n, h, w) = (images.dims[0], images.dims[1], images.dims[2]);
    if h == 0 || w == 0 {
        return Err(DataError::BadDims {
            path: images_path.to_path_buf(),
            expected: "[N, H, W] with H, W > 0".into(),
            found: format_dims(&images.dims),
        });
    }
    if labels.dims[0] != n {
        return Err(DataError::CountMismatch {
            images_path: images_path.to_path_buf(),
            images: n,
            labels_path: labels_path.to_path_buf(),
            labels: labels.dims[0],
        });
    }
    check_labels(&labels.data, classes, labels_path)?;
    Ok(Dataset {
        name: name.to_string(),
        images: images.data,
        labels: labels.data,
        height: h,
        width: w,
        channels: 1,
        classes,
    })
}

/// Reads an IDX image file and its label file (each gzipped or not) into a
/// single-channel dataset.
pub fn load_idx_pair(
    name: &str,
    images_path: &Path,
    labels_path: &Path,
    classes: usize,
) -> Result<Dataset, DataError> {
    let images = read_maybe_gz(images_path)?;
    let labels = read_maybe_gz(labels_path)?;
    dataset_from_idx_bytes(name, &images, images_path, &labels, labels_path, classes)
}

/// Finds `dir/stem.gz` or `dir/stem`, preferring the gzipped one; the error
/// names both so the user sees what was looked for.
pub fn find_maybe_gz(dir: &Path, stem: &str, what: &str) -> Result<PathBuf, DataError> {
    let gz = dir.join(format!("{stem}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    let plain = dir.join(stem);
    if plain.is_file() {
        return Ok(plain);
    }
    Err(DataError::Missing {
        path: gz,
        expected: format!("{what}; also tried {}", plain.display()),
    })
}

pub(crate) fn check_labels(labels: &[u8], classes: usize, path: &Path) -> Result<(), DataError> {
    match labels
        .iter()
        .enumerate()
        .find(|(_, &l)| usize::from(l) >= classes)
    {
        Some((index, &label)) => Err(DataError::LabelOutOfRange {
            path: path.to_path_buf(),
            index,
            label,
            classes,
        }),
        None => Ok(()),
    }
}

fn format_dims(dims: &[usize]) -> String {
    let parts: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_bytes() {
        let data: Vec<u8> = (0..24).collect();
        let enc = encode_idx(&[2, 3, 4], &data);
        assert_eq!(&enc[..4], &[0, 0, 8, 3]);
        let arr = parse_idx(&enc, 3, Path::new("x"), "image array").unwrap();
        assert_eq!(arr.dims, vec![2, 3, 4]);
        assert_eq!(arr.data, data);
        let gz = gzip(&enc, 9);
        assert_eq!(maybe_gunzip(gz, Path::new("x")).unwrap(), enc);
    }

    #[test]
    fn header_overflow_is_an_error_not_a_panic() {
        let mut enc = vec![0, 0, 8, 3];
        for _ in 0..3 {
            enc.extend_from_slice(&u32::MAX.to_be_bytes());
        }
        let err = parse_idx(&enc, 3, Path::new("big"), "image array").unwrap_err();
        assert!(
            matches!(err, DataError::BadDims { .. } | DataError::Truncated { .. }),
            "{err}"
        );
    }
}

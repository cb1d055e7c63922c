//! Save/load round trips and every bad-input case of the file set.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::format::{MANIFEST_FILE, TENSORS_FILE};
use crate::model::*;
use crate::testutil::{chain_geometry, random_model, random_model_with};
use crate::Int8Error;

type Tensors = BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>;

fn read_tensors(dir: &Path) -> Tensors {
    let bytes = std::fs::read(dir.join(TENSORS_FILE)).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, v)| (n, (v.dtype(), v.shape().to_vec(), v.data().to_vec())))
        .collect()
}

fn write_tensors(dir: &Path, t: &Tensors) {
    let views: Vec<(String, TensorView)> = t
        .iter()
        .map(|(n, (d, s, b))| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(
        dir.join(TENSORS_FILE),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
}

fn edit_manifest(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join(MANIFEST_FILE);
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn saved() -> (tempfile::TempDir, Int8Model) {
    let dir = tempfile::tempdir().unwrap();
    let m = random_model_with(11, &chain_geometry(3, 8, &[(4, 2), (5, 1), (6, 2)]), 3);
    m.save(dir.path()).unwrap();
    (dir, m)
}

fn i32_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn spec_model_round_trips_and_manifest_is_readable() {
    let dir = tempfile::tempdir().unwrap();
    let spec = repopt_spec::ModelSpec::resolve("A0")
        .unwrap()
        .with_io(10, 3, 32);
    let m = random_model(5, &spec);
    m.save(dir.path()).unwrap();
    assert_eq!(Int8Model::load(dir.path()).unwrap(), m);
    let text = std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["format"], "repopt-int8");
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["layouts"]["conv_weight"], "OHWI");
    assert_eq!(v["layers"][0]["tensors"]["weight"], "layers.0.weight");
    assert_eq!(v["layers"][0]["input_dtype"], "I8");
    assert_eq!(v["layers"][1]["input_dtype"], "U8");
    assert_eq!(v["layers"][0]["name"], "stage0");
    // no temporary files left behind
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // saving again over an existing set works (rename replaces)
    m.save(dir.path()).unwrap();
    assert_eq!(Int8Model::load(dir.path()).unwrap(), m);
}

#[test]
fn invalid_models_are_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut m) = saved();
    m.layers[1].shift[0] = 99;
    assert!(matches!(m.save(dir.path()), Err(Int8Error::Invalid { .. })));
    assert!(!dir.path().join(MANIFEST_FILE).exists());
}

fn load_err(dir: &Path) -> Int8Error {
    Int8Model::load(dir).unwrap_err()
}

#[test]
fn version_and_format_are_checked() {
    let (dir, _) = saved();
    edit_manifest(dir.path(), |v| v["format_version"] = 2.into());
    let e = load_err(dir.path());
    assert!(
        matches!(
            e,
            Int8Error::UnsupportedVersion {
                found: Some(2),
                expected: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("manifest.json") && e.to_string().contains("format_version"));
    edit_manifest(dir.path(), |v| {
        v.as_object_mut().unwrap().remove("format_version");
    });
    let e = load_err(dir.path());
    assert!(
        matches!(e, Int8Error::UnsupportedVersion { found: None, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("missing"), "{e}");
    edit_manifest(dir.path(), |v| v["format"] = "something-else".into());
    assert!(matches!(
        load_err(dir.path()),
        Int8Error::WrongFormat { .. }
    ));
}

#[test]
fn unreadable_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(load_err(dir.path()), Int8Error::Io { .. }));
    let (dir, _) = saved();
    std::fs::write(dir.path().join(TENSORS_FILE), b"not a safetensors file").unwrap();
    let e = load_err(dir.path());
    assert!(
        matches!(e, Int8Error::SafeTensors { .. }) && e.to_string().contains("model.safetensors"),
        "{e}"
    );
    std::fs::write(dir.path().join(MANIFEST_FILE), b"{ broken").unwrap();
    assert!(matches!(
        load_err(dir.path()),
        Int8Error::ManifestParse { .. }
    ));
    let (dir, _) = saved();
    edit_manifest(dir.path(), |v| v["surprise"] = 1.into());
    let e = load_err(dir.path());
    assert!(
        matches!(e, Int8Error::ManifestParse { .. }) && e.to_string().contains("surprise"),
        "{e}"
    );
    let (dir, _) = saved();
    edit_manifest(dir.path(), |v| {
        v["layers"][0].as_object_mut().unwrap().remove("stride");
    });
    let e = load_err(dir.path());
    assert!(e.to_string().contains("stride"), "{e}");
}

#[test]
fn missing_unexpected_wrong_dtype_and_shape() {
    let (dir, _) = saved();
    let mut t = read_tensors(dir.path());
    t.remove("layers.1.bias");
    write_tensors(dir.path(), &t);
    let e = load_err(dir.path());
    assert!(
        matches!(&e, Int8Error::MissingTensor { tensor, .. } if tensor == "layers.1.bias"),
        "{e}"
    );

    let (dir, _) = saved();
    let mut t = read_tensors(dir.path());
    t.insert("extra".into(), (Dtype::I8, vec![1], vec![0]));
    write_tensors(dir.path(), &t);
    assert!(
        matches!(load_err(dir.path()), Int8Error::UnexpectedTensor { tensor, .. } if tensor == "extra")
    );

    let (dir, _) = saved();
    let mut t = read_tensors(dir.path());
    let (_, shape, bytes) = t["layers.0.weight"].clone();
    let f32s: Vec<u8> = bytes
        .iter()
        .flat_map(|&b| (b as i8 as f32).to_le_bytes())
        .collect();
    t.insert("layers.0.weight".into(), (Dtype::F32, shape, f32s));
    write_tensors(dir.path(), &t);
    let e = load_err(dir.path());
    assert!(
        matches!(&e, Int8Error::WrongDtype { tensor, expected, found, .. } if tensor == "layers.0.weight" && expected == "I8" && found == "F32"),
        "{e}"
    );
    assert!(e.to_string().contains("layers.0.weight") && e.to_string().contains("F32"));

    let (dir, _) = saved();
    let mut t = read_tensors(dir.path());
    let (d, shape, bytes) = t["layers.2.weight"].clone();
    let flipped = vec![shape[3], 3, 3, shape[0]]; // OIHW-ish mistake
    t.insert("layers.2.weight".into(), (d, flipped.clone(), bytes));
    write_tensors(dir.path(), &t);
    let e = load_err(dir.path());
    assert!(
        matches!(&e, Int8Error::WrongShape { tensor, found, .. } if tensor == "layers.2.weight" && *found == flipped),
        "{e}"
    );

    let (dir, _) = saved();
    let mut t = read_tensors(dir.path());
    t.insert(
        "head.bias".into(),
        (Dtype::I32, vec![2], i32_bytes(&[1, 2])),
    );
    write_tensors(dir.path(), &t);
    assert!(
        matches!(load_err(dir.path()), Int8Error::WrongShape { tensor, .. } if tensor == "head.bias")
    );
}

fn field_of(e: &Int8Error) -> String {
    match e {
        Int8Error::Invalid { field, .. } => field.clone(),
        other => panic!("expected Invalid, got {other}"),
    }
}

#[test]
fn range_checks_name_the_element() {
    let (dir, m) = saved();
    let mut t = read_tensors(dir.path());
    let mut shift = m.layers[1].shift.clone();
    shift[2] = 32;
    t.insert(
        "layers.1.shift".into(),
        (Dtype::I32, vec![shift.len()], i32_bytes(&shift)),
    );
    write_tensors(dir.path(), &t);
    let e = load_err(dir.path());
    assert_eq!(field_of(&e), "layers.1.shift[2]");
    assert!(e.to_string().contains("-30..=31"), "{e}");

    let (dir, m) = saved();
    let mut t = read_tensors(dir.path());
    let mut mult = m.layers[2].multiplier.clone();
    mult[0] = 12345;
    t.insert(
        "layers.2.multiplier".into(),
        (Dtype::I32, vec![mult.len()], i32_bytes(&mult)),
    );
    write_tensors(dir.path(), &t);
    assert_eq!(field_of(&load_err(dir.path())), "layers.2.multiplier[0]");

    let (dir, m) = saved();
    let mut t = read_tensors(dir.path());
    mult = m.layers[2].multiplier.clone();
    mult[1] = -(1 << 30);
    t.insert(
        "layers.2.multiplier".into(),
        (Dtype::I32, vec![mult.len()], i32_bytes(&mult)),
    );
    write_tensors(dir.path(), &t);
    assert_eq!(field_of(&load_err(dir.path())), "layers.2.multiplier[1]");

    let (dir, _) = saved();
    let mut t = read_tensors(dir.path());
    t.get_mut("layers.0.weight").unwrap().2[5] = 0x80; // -128
    write_tensors(dir.path(), &t);
    let e = load_err(dir.path());
    assert_eq!(field_of(&e), "layers.0.weight[5]");
    assert!(e.to_string().contains("-128"));
}

#[test]
fn chain_inconsistencies_are_reported() {
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "layers.1.in_size",
            Box::new(|v| v["layers"][1]["in_size"] = 5.into()),
        ),
        (
            "layers.1.out_size",
            Box::new(|v| v["layers"][1]["out_size"] = 3.into()),
        ),
        (
            "layers.2.stride",
            Box::new(|v| v["layers"][2]["stride"] = 3.into()),
        ),
        (
            "layers.1.index",
            Box::new(|v| v["layers"][1]["index"] = 7.into()),
        ),
        (
            "layers.2.input_scale",
            Box::new(|v| v["layers"][2]["input_scale"] = 0.5.into()),
        ),
        (
            "head.input_scale",
            Box::new(|v| v["head"]["input_scale"] = 0.5.into()),
        ),
        (
            "input.std",
            Box::new(|v| v["input"]["std"] = serde_json::json!([1.0])),
        ),
        (
            "input.scale",
            Box::new(|v| v["input"]["scale"] = (-1.0).into()),
        ),
        (
            "layers.1.input_dtype",
            Box::new(|v| v["layers"][1]["input_dtype"] = "I8".into()),
        ),
        (
            "layouts.conv_weight",
            Box::new(|v| v["layouts"]["conv_weight"] = "OIHW".into()),
        ),
        (
            "head.logit_scale",
            Box::new(|v| v["head"]["logit_scale"] = 3.0.into()),
        ),
        (
            "layers.0.output_scale",
            Box::new(|v| {
                v["layers"][0]["output_scale"] = 0.0.into();
                v["layers"][1]["input_scale"] = 0.0.into();
            }),
        ),
    ];
    for (field, edit) in cases {
        let (dir, _) = saved();
        edit_manifest(dir.path(), edit);
        let e = load_err(dir.path());
        assert_eq!(field_of(&e), field, "{e}");
        assert!(e.to_string().contains("manifest.json"), "{e}");
    }
    // channel mismatch between layers: the next layer's weight no longer matches
    let (dir, _) = saved();
    edit_manifest(dir.path(), |v| v["layers"][1]["in_channels"] = 9.into());
    assert!(
        matches!(load_err(dir.path()), Int8Error::WrongShape { tensor, .. } if tensor == "layers.1.weight")
    );
    // consistent tensors but a broken chain: layer 1 claims 4 -> 5, layer 0 made 4 -> 9 channels
    let (dir, m) = saved();
    let mut bad = m.clone();
    bad.layers[1].geometry.in_channels = 9;
    bad.layers[1].weights = vec![0; bad.layers[1].geometry.weight_len()];
    let e = bad.validate().unwrap_err();
    assert_eq!(field_of(&e), "layers.1.in_channels");
    assert!(e.to_string().contains("expected 4"), "{e}");
    drop(dir);
}

#[test]
fn spec_mismatch_is_reported() {
    let spec = repopt_spec::ModelSpec::resolve("A0")
        .unwrap()
        .with_io(10, 3, 32);
    let mut m = random_model(5, &spec);
    m.spec = Some(spec.clone().with_io(10, 3, 64));
    assert!(m.validate().is_err());
    m.spec = Some(spec.with_io(5, 3, 32));
    assert_eq!(field_of(&m.validate().unwrap_err()), "head.classes");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_models_round_trip(seed in any::<u64>(), size in 1usize..10, cin in 1usize..4,
                                layers in proptest::collection::vec((1usize..6, 1usize..=2), 1..5), classes in 1usize..6) {
        let dir = tempfile::tempdir().unwrap();
        let m = random_model_with(seed, &chain_geometry(cin, size, &layers), classes);
        m.save(dir.path()).unwrap();
        let back = Int8Model::load(dir.path()).unwrap();
        prop_assert_eq!(back, m);
    }

    /// Arbitrary bytes in either file give an error, never a panic.
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), which in 0usize..2, cut in 0usize..4000) {
        let (dir, _) = saved();
        let name = if which == 0 { MANIFEST_FILE } else { TENSORS_FILE };
        let p = dir.path().join(name);
        let mut orig = std::fs::read(&p).unwrap();
        orig.truncate(cut.min(orig.len()));
        orig.extend(bytes);
        std::fs::write(&p, orig).unwrap();
        let _ = Int8Model::load(dir.path());
    }
}

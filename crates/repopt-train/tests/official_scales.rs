//! The authors' Hyper-Search scales (`../shared/data/official-scales/`, outside
//! the project tree) load through Candle's PyTorch reader, fit their presets,
//! and give multipliers that follow the formula element by element.

use std::path::PathBuf;

use repopt_spec::preset;
use repopt_train::scales::multiplier_oihw;
use repopt_train::Scales;

fn official(name: &str) -> Option<PathBuf> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/official-scales");
    let path = dir.join(format!("RepOpt-VGG-{name}-scales.pth"));
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: {} is absent (the shared folder is not next to the checkout)",
            path.display()
        );
        None
    }
}

#[test]
fn b1_archive_has_28_layers_23_with_identity_and_exact_multipliers() {
    let Some(path) = official("B1") else { return };
    let scales = Scales::load(&path).unwrap();
    assert_eq!(scales.layers.len(), 28);
    assert_eq!(
        scales
            .layers
            .iter()
            .filter(|l| l.identity.is_some())
            .count(),
        23
    );
    let spec = preset("B1").unwrap();
    scales.validate(&spec, &path).unwrap();
    assert!(
        scales
            .layers
            .iter()
            .any(|l| l.conv.iter().any(|&v| v < 0.0)),
        "the archive has negative scales"
    );
    for (layer, s) in spec.conv_layers().iter().zip(&scales.layers) {
        let m = multiplier_oihw(layer, s);
        let (o_n, i_n) = (layer.out_channels, layer.in_channels);
        for o in 0..o_n {
            let s2 = (s.conv[o] as f64).powi(2);
            let t2 = (s.one_by_one[o] as f64).powi(2);
            for i in 0..i_n {
                for p in 0..3 {
                    for q in 0..3 {
                        let centre = p == 1 && q == 1;
                        let expected = s2
                            + if centre { t2 } else { 0.0 }
                            + if centre && layer.has_identity && o == i {
                                1.0
                            } else {
                                0.0
                            };
                        assert_eq!(
                            m[((o * i_n + i) * 3 + p) * 3 + q],
                            expected,
                            "{} [{o},{i},{p},{q}]",
                            s.name
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn every_official_archive_fits_its_preset_and_no_other() {
    for (name, layers) in [("B1", 28), ("B2", 28), ("L1", 48), ("L2", 48)] {
        let Some(path) = official(name) else { return };
        let scales = Scales::load(&path).unwrap();
        assert_eq!(scales.layers.len(), layers, "{name}");
        scales.validate(&preset(name).unwrap(), &path).unwrap();
    }
    let Some(b1) = official("B1") else { return };
    let scales = Scales::load(&b1).unwrap();
    // Same depth, other widths: the channel check must name the mismatch.
    let err = scales
        .validate(&preset("B2").unwrap(), &b1)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("RepOpt-VGG-B1-scales.pth") && err.contains("channels"),
        "{err}"
    );
    // Other depth: the layer count check.
    let err = scales
        .validate(&preset("L1").unwrap(), &b1)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("28 conv layers") && err.contains("48"),
        "{err}"
    );
}

#[test]
fn our_scales_files_round_trip() {
    let spec = preset("A0").unwrap();
    let mut scales = Scales::initial(&spec);
    scales.layers[3].conv[0] = -0.25;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scales.safetensors");
    scales.save(&path).unwrap();
    let back = Scales::load(&path).unwrap();
    assert_eq!(back, scales);
    back.validate(&spec, &path).unwrap();
}

#[test]
fn unreadable_scales_files_are_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pth");
    assert!(Scales::load(&missing)
        .unwrap_err()
        .to_string()
        .contains("nope.pth"));
    let corrupt = dir.path().join("corrupt.pth");
    std::fs::write(&corrupt, b"not a zip archive").unwrap();
    let err = Scales::load(&corrupt).unwrap_err().to_string();
    assert!(
        err.contains("corrupt.pth") && err.contains("PyTorch"),
        "{err}"
    );
    let corrupt = dir.path().join("corrupt.safetensors");
    std::fs::write(&corrupt, [1u8, 2, 3]).unwrap();
    let err = Scales::load(&corrupt).unwrap_err().to_string();
    assert!(
        err.contains("corrupt.safetensors") && err.contains("safetensors"),
        "{err}"
    );
}

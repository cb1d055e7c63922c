//! `repopt hls` through the built binary: a project for an INT8 model file
//! set, its C simulation (when the ap_types headers are installed), and a
//! chip the templates cannot express refused before anything is written.

use std::process::Command;

fn repopt(args: &[&str], out: &std::path::Path) -> (bool, String) {
    let r = Command::new(env!("CARGO_BIN_EXE_repopt"))
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
    (r.status.success(), text)
}

#[test]
fn hls_generates_and_csimulates_an_int8_model() {
    let dir = tempfile::tempdir().unwrap();
    // A random INT8 model of the tiny preset at 28x28 (odd channel counts
    // are covered by the crate's tests), saved as a file set.
    let spec = repopt_spec::preset("tiny").unwrap();
    let model = repopt_int8::testutil::random_model(7, &spec);
    let model_dir = dir.path().join("int8");
    model.save(&model_dir).unwrap();
    let out = dir.path().join("hls");
    let with_csim = repopt_hls::csim::ap_types_dir().is_some();
    let mut args = vec!["hls", "--chip", "edge-fpga", "--int8"];
    let m = model_dir.to_str().unwrap();
    args.push(m);
    if with_csim {
        args.push("--csim");
    } else {
        eprintln!("{}", repopt_hls::csim::SKIP_MESSAGE);
    }
    let (ok, text) = repopt(&args, &out);
    assert!(ok, "{text}");
    assert!(text.contains("resource estimate for xczu7ev"), "{text}");
    for f in [
        "repopt_conv.h",
        "repopt_conv.cpp",
        "tb.cpp",
        "run_hls.tcl",
        "hls_config.cfg",
        "README.md",
        "report.json",
        "data/network.txt",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    for i in 0..model.layers.len() {
        assert!(out.join(format!("data/expected_{i}.bin")).is_file());
    }
    if with_csim {
        assert!(text.contains("PASS: 7 layers bit-exact"), "{text}");
    }
}

#[test]
fn hls_refuses_a_chip_it_cannot_express() {
    let dir = tempfile::tempdir().unwrap();
    let chip = dir.path().join("wide.toml");
    let text = repopt_sim::ChipSpec::preset("edge-fpga")
        .unwrap()
        .to_toml()
        .replace("accumulator_bits = 32", "accumulator_bits = 48");
    std::fs::write(&chip, text).unwrap();
    let out = dir.path().join("hls");
    let (ok, text) = repopt(&["hls", "--chip", chip.to_str().unwrap()], &out);
    assert!(!ok);
    assert!(
        text.contains("cannot be expressed by the HLS templates") && text.contains("48"),
        "{text}"
    );
    assert!(!out.exists());
}

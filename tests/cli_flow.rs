//! `repopt flow` end to end through the built binary, with a small budget on
//! the embedded data: it finishes, writes the report folder, and every rung
//! of the verification ladder matches the golden engine.

use std::process::Command;

#[test]
fn flow_runs_end_to_end_and_the_ladder_passes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("flow");
    let result = Command::new(env!("CARGO_BIN_EXE_repopt"))
        .args([
            "flow",
            "--epochs",
            "1",
            "--train-limit",
            "1000",
            "--test-limit",
            "200",
            "--verify-images",
            "4",
            "--quiet",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "flow failed:\n{stdout}\n{stderr}");
    for f in [
        "index.html",
        "summary.json",
        "summary.csv",
        "layers.csv",
        "verify.json",
        "quantization.json",
    ] {
        assert!(out.join("report").join(f).exists(), "report/{f} missing");
    }
    for d in [
        "hs/scales.safetensors",
        "train/checkpoint.json",
        "int8/manifest.json",
        "sim/roofline.svg",
        "hls/README.md",
    ] {
        assert!(out.join(d).exists(), "{d} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["ladder_passed"], true);
    let ladder = summary["ladder"].as_array().unwrap();
    let status = |name: &str| {
        ladder
            .iter()
            .find(|l| l["rung"].as_str().unwrap().starts_with(name))
            .map(|l| l["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status("candle").as_deref(), Some("match"));
    assert_eq!(status("sim").as_deref(), Some("match"));
    match status("hls").as_deref() {
        Some("match") => {}
        Some("skipped") => {
            eprintln!("SKIPPED: HLS C simulation rung (g++ or ap_types headers missing)")
        }
        other => panic!("HLS rung: {other:?}"),
    }
    let html = std::fs::read_to_string(out.join("report/index.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("Verification ladder"));
    assert!(
        stdout.contains("INT8") && stdout.contains("frames/s"),
        "{stdout}"
    );
}

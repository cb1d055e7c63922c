//! End-to-end tests of the training commands through the built `repopt` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repopt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_repopt"))
        .args(args)
        .output()
        .expect("repopt runs")
}

fn ok(args: &[&str]) -> String {
    let out = repopt(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "repopt {args:?} failed:\n{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command that must fail; returns its error output.
fn fails(args: &[&str]) -> String {
    let out = repopt(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "repopt {args:?} should fail");
    assert!(
        stderr.starts_with("error: "),
        "clear error expected, got:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn official_b1() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/official-scales/RepOpt-VGG-B1-scales.pth");
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIPPED: {} is absent", p.display());
        None
    }
}

const QUICK: [&str; 6] = [
    "--train-limit",
    "256",
    "--test-limit",
    "100",
    "--quiet",
    "--epochs",
];

#[test]
fn train_writes_checkpoint_and_metrics_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    let mut args = vec!["train"];
    args.extend(QUICK);
    args.extend(["2", "--stop-after", "1", "--out", out_s]);
    let stdout = ok(&args);
    assert!(
        stdout.contains("test accuracy") && stdout.contains("after 1/2 epochs"),
        "{stdout}"
    );
    for f in [
        "checkpoint.json",
        "model.safetensors",
        "metrics.jsonl",
        "metrics.csv",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let stdout = ok(&[
        "train",
        "--train-limit",
        "256",
        "--test-limit",
        "100",
        "--quiet",
        "--resume",
        out_s,
    ]);
    assert!(stdout.contains("after 2/2 epochs"), "{stdout}");
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "header + two epochs:\n{csv}");
    // Resuming with another model is refused, naming the checkpoint.
    let err = fails(&["train", "--model", "small", "--resume", out_s]);
    assert!(err.contains(out_s) && err.contains("tiny"), "{err}");
}

#[test]
fn hs_writes_scales_that_train_and_multipliers_accept() {
    let dir = tempfile::tempdir().unwrap();
    let hs = dir.path().join("hs");
    let mut args = vec!["hs"];
    args.extend(QUICK);
    args.extend(["1", "--out", hs.to_str().unwrap()]);
    ok(&args);
    let scales = hs.join("scales.safetensors");
    assert!(scales.exists());
    let table = ok(&["multipliers", scales.to_str().unwrap()]);
    assert!(
        table.contains("model `tiny`") && table.contains("stage4.0"),
        "{table}"
    );
    let mut args = vec!["train"];
    args.extend(QUICK);
    let run = dir.path().join("t");
    args.extend([
        "1",
        "--scales",
        scales.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(ok(&args).contains("RepOpt-SGD, scales"));
}

#[test]
fn multipliers_of_the_official_b1_scales() {
    let Some(b1) = official_b1() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.safetensors");
    let json = ok(&[
        "multipliers",
        b1.to_str().unwrap(),
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let layers = v.as_array().unwrap();
    assert_eq!(layers.len(), 28);
    assert_eq!(layers.iter().filter(|l| l["identity"] == true).count(), 23);
    assert!(out.exists());
}

#[test]
fn bad_input_gives_clear_errors() {
    let err = fails(&["train", "--model", "B7"]);
    assert!(
        err.contains("unknown preset `B7`") && err.contains("tiny"),
        "{err}"
    );
    let err = fails(&["train", "--data", "cifar10:/definitely/not/here"]);
    assert!(err.contains("/definitely/not/here"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("train-images-idx3-ubyte.gz");
    std::fs::write(&bad, b"\x1f\x8b not really gzip").unwrap();
    let err = fails(&[
        "train",
        "--data",
        &format!("fashion-mnist:{}", dir.path().display()),
    ]);
    assert!(err.contains(dir.path().to_str().unwrap()), "{err}");
    let err = fails(&["train", "--resume", dir.path().to_str().unwrap()]);
    assert!(err.contains("checkpoint.json"), "{err}");
    if let Some(b1) = official_b1() {
        // B1's scales on the tiny model: wrong layer count.
        let err = fails(&["train", "--scales", b1.to_str().unwrap()]);
        assert!(
            err.contains("RepOpt-VGG-B1-scales.pth") && err.contains("28 conv layers"),
            "{err}"
        );
        // Same depth, other widths (B2): the channel mismatch is named.
        let err = fails(&[
            "train",
            "--model",
            "B2",
            "--scales",
            b1.to_str().unwrap(),
            "--epochs",
            "1",
        ]);
        assert!(err.contains("channels"), "{err}");
    }
}

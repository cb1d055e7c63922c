//! Chip descriptions: presets, parsing, and the validation messages.

use repopt_sim::chip::{accumulator_bits_needed, worst_case_accumulator};
use repopt_sim::{analytic, ChipSpec, Workload};
use repopt_spec::preset;

fn edge_text() -> String {
    ChipSpec::preset("edge-fpga").unwrap().to_toml()
}

fn err_of(text: &str) -> String {
    ChipSpec::from_toml_str(text, "test.toml")
        .unwrap_err()
        .to_string()
}

#[test]
fn presets_parse_and_round_trip() {
    assert_eq!(ChipSpec::preset_names(), ["edge-fpga", "dc-fpga", "asic"]);
    for name in ChipSpec::preset_names() {
        let c = ChipSpec::preset(name).unwrap();
        let back = ChipSpec::from_toml_str(&c.to_toml(), "rt").unwrap();
        assert_eq!(back, c);
        assert!(c.peak_gops() > 0.0);
    }
    assert!(ChipSpec::preset("EDGE-FPGA").is_some());
    assert!(ChipSpec::preset("edge-fpga").unwrap().fpga.is_some());
}

#[test]
fn resolve_accepts_a_path_and_names_presets_when_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mine.toml");
    std::fs::write(&p, edge_text().replace("units = 4", "units = 3")).unwrap();
    let c = ChipSpec::resolve(p.to_str().unwrap()).unwrap();
    assert_eq!(c.array.units, 3);
    let e = ChipSpec::resolve("nope").unwrap_err().to_string();
    assert!(e.contains("edge-fpga") && e.contains("asic"), "{e}");
}

#[test]
fn zero_negative_and_missing_fields_are_named() {
    let t = edge_text();
    for (from, to, needle) in [
        ("units = 4", "units = 0", "array.units"),
        ("pi = 8", "pi = 0", "array.pi"),
        ("po = 8", "po = 0", "array.po"),
        (
            "fmap_bytes = 1048576",
            "fmap_bytes = 0",
            "buffers.fmap_bytes",
        ),
        ("clock_mhz = 200.0", "clock_mhz = -5.0", "array.clock_mhz"),
        (
            "bandwidth_gb_per_s = 16.0",
            "bandwidth_gb_per_s = 0.0",
            "dram.bandwidth_gb_per_s",
        ),
        ("mac_pj = 1.5", "mac_pj = -1.0", "energy.mac_pj"),
        ("units = 4", "units = -4", "units"),
        (
            "accumulator_bits = 32",
            "accumulator_bits = 0",
            "accumulator_bits",
        ),
    ] {
        assert!(t.contains(from), "{from}");
        let e = err_of(&t.replace(from, to));
        assert!(e.contains(needle), "{to}: {e}");
        assert!(e.contains("test.toml"), "{e}");
    }
    let e = err_of(&t.replace("latency_cycles = 60", ""));
    assert!(e.contains("latency_cycles"), "{e}");
    let e = err_of(&t.replace("latency_cycles = 60", "latency_cycles = 60\nturbo = true"));
    assert!(e.contains("turbo"), "{e}");
}

#[test]
fn wrong_version_is_rejected_clearly() {
    let e = err_of(&edge_text().replace("format_version = 1", "format_version = 2"));
    assert!(e.contains("format_version 2 is not supported"), "{e}");
    let e = err_of(&edge_text().replace("format_version = 1", ""));
    assert!(e.contains("missing `format_version`"), "{e}");
}

#[test]
fn buffers_too_small_say_the_minimum() {
    let w = Workload::from_spec(&preset("B1").unwrap());
    let mut c = ChipSpec::preset("edge-fpga").unwrap();
    c.buffers.weight_bytes_per_unit = 1000;
    let e = c.validate_for(&w).unwrap_err().to_string();
    // First layer: 8 * (9 * 3 + 8) = 280 bytes, 560 double buffered: fits;
    // stage1.0 with 64 inputs needs 2 * 8 * (9 * 64 + 8) = 9344.
    assert!(e.contains("stage1.0"), "{e}");
    assert!(e.contains("weight_bytes_per_unit"), "{e}");
    assert!(e.contains("need at least 9344"), "{e}");

    let mut c = ChipSpec::preset("edge-fpga").unwrap();
    c.buffers.fmap_bytes = 4096;
    let e = c.validate_for(&w).unwrap_err().to_string();
    // stage0: 2 * (3 * 224 * 3 + 112 * 32) = 11200.
    assert!(e.contains("stage0") && e.contains("fmap_bytes"), "{e}");
    assert!(e.contains("need at least 11200"), "{e}");
    assert!(analytic::simulate(&c, &w).is_err());
}

#[test]
fn narrow_accumulators_are_rejected_with_the_bound() {
    assert_eq!(worst_case_accumulator(1), 2 * 9 * 127 * 255);
    // 9 * 512 * 127 * 255 * 2 = 298,475,520 < 2^29: 30 bits signed.
    assert_eq!(accumulator_bits_needed(512), 30);
    assert!(accumulator_bits_needed(768) <= 32);
    let w = Workload::from_spec(&preset("B1").unwrap());
    let mut c = ChipSpec::preset("edge-fpga").unwrap();
    c.array.accumulator_bits = 24;
    let e = c.validate_for(&w).unwrap_err().to_string();
    assert!(e.contains("accumulator_bits") && e.contains("24"), "{e}");
    assert!(e.contains("stage1.0"), "{e}");
    c.array.accumulator_bits = 30;
    assert!(c.validate_for(&w).is_ok());
}

#[test]
fn every_preset_network_fits_every_chip_preset() {
    for chip in ChipSpec::preset_names() {
        let c = ChipSpec::preset(chip).unwrap();
        for m in repopt_spec::PRESETS {
            c.validate_for(&Workload::from_spec(&preset(m).unwrap()))
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

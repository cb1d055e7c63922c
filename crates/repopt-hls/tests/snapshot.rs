//! Snapshot of a rendered project for one small chip: a change to a template
//! or to the values the generator computes shows up as a reviewable diff of
//! `tests/snapshots/`. Regenerate with `UPDATE_SNAPSHOTS=1 cargo test -p
//! repopt-hls --test snapshot`. Binary data files are summarised by size and
//! an FNV-1a hash in `data.txt`.

use std::fmt::Write;
use std::path::PathBuf;

use repopt_hls::{demo_model, render_project};
use repopt_sim::ChipSpec;

const SMALL_CHIP: &str = r#"
format_version = 1
name = "snap-small"
description = "Snapshot chip: 2 units of 4x4 channels on a small part"

[array]
units = 2
pi = 4
po = 4
clock_mhz = 250.0
accumulator_bits = 24
pipeline_depth = 6

[buffers]
weight_bytes_per_unit = 4096
fmap_bytes = 8500

[dram]
bandwidth_gb_per_s = 4.0
latency_cycles = 40

[energy]
mac_pj = 1.0
sram_byte_pj = 1.0
dram_byte_pj = 100.0

[fpga]
name = "xczu3eg-sbva484-1-e"
dsp = 360
bram_18k = 432
lut = 70560
"#;

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn rendered_project_matches_the_snapshot() {
    let chip = ChipSpec::from_toml_str(SMALL_CHIP, "snapshot chip").unwrap();
    let project = render_project(&chip, &demo_model(3), 1).unwrap();
    let mut expected: Vec<(String, Vec<u8>)> = Vec::new();
    let mut data = String::new();
    for (name, bytes) in &project.files {
        if name.ends_with(".bin") {
            writeln!(
                data,
                "{name} {} bytes fnv1a {:016x}",
                bytes.len(),
                fnv1a(bytes)
            )
            .unwrap();
        } else {
            expected.push((name.replace('/', "__"), bytes.clone()));
        }
    }
    expected.push(("data.txt".into(), data.into_bytes()));
    // The small chip's schedule has several passes and bands.
    assert!(project.report.layers.iter().any(|l| l.schedule.passes > 1));
    assert!(project.report.layers.iter().any(|l| l.schedule.bands > 1));

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &expected {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        return;
    }
    for (name, bytes) in &expected {
        let want = std::fs::read(dir.join(name)).unwrap_or_else(|_| {
            panic!("missing snapshot {name}; run with UPDATE_SNAPSHOTS=1 and review the diff")
        });
        assert!(
            want == *bytes,
            "{name} differs from tests/snapshots/{name}; if the change is intended, run \
             UPDATE_SNAPSHOTS=1 cargo test -p repopt-hls --test snapshot and review the diff"
        );
    }
}

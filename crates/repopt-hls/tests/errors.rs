//! Bad input: chips the templates cannot express and networks the kernel's
//! buffers cannot hold are refused with a clear error before any file is
//! written; generation into an existing folder replaces it as a whole.

use std::path::Path;

use repopt_hls::{demo_model, generate, HlsError, KernelDesign};
use repopt_int8::testutil::{chain_geometry, random_model_with};
use repopt_sim::ChipSpec;

fn edge() -> ChipSpec {
    ChipSpec::preset("edge-fpga").unwrap()
}

/// Names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Generation fails with an error containing every `needles`, and neither
/// the existing project folder nor its parent changes.
fn refused(chip: &ChipSpec, model: &repopt_int8::Int8Model, needles: &[&str]) -> HlsError {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("project");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "old project").unwrap();
    let before = listing(tmp.path());
    let err = generate(chip, model, 0, &out).unwrap_err();
    let msg = err.to_string();
    for n in needles {
        assert!(msg.contains(n), "`{n}` not in: {msg}");
    }
    assert_eq!(
        listing(tmp.path()),
        before,
        "nothing new beside the project"
    );
    assert_eq!(listing(&out), vec!["keep.txt".to_string()]);
    err
}

#[test]
fn wide_accumulators_are_refused() {
    let mut chip = edge();
    chip.array.accumulator_bits = 40;
    let e = refused(&chip, &demo_model(0), &["accumulator_bits", "40", "int32"]);
    assert!(matches!(e, HlsError::Unsupported { .. }));
}

#[test]
fn words_wider_than_ap_uint_are_refused() {
    let mut chip = edge();
    chip.array.pi = 200;
    chip.buffers.fmap_bytes = 1 << 30;
    chip.buffers.weight_bytes_per_unit = 1 << 24;
    let e = refused(&chip, &demo_model(0), &["array.pi", "1600 bits", "1024"]);
    assert!(matches!(e, HlsError::Unsupported { .. }));
}

#[test]
fn a_weight_buffer_without_room_for_one_group_is_refused() {
    // Enough for the simulator's rule with 3 input channels (2 * (27 + 8)),
    // not for one group of PI = 8 channels.
    let mut chip = edge();
    chip.array.po = 1;
    chip.buffers.weight_bytes_per_unit = 70;
    let geometry = chain_geometry(3, 9, &[(5, 1)]);
    let model = random_model_with(1, &geometry, 2);
    let e = refused(
        &chip,
        &model,
        &["weight_bytes_per_unit", "one input-channel group"],
    );
    assert!(matches!(e, HlsError::Unsupported { .. }));
}

#[test]
fn a_band_the_kernels_banks_cannot_hold_is_refused_naming_the_layer() {
    // 3 input channels padded to PI = 8, 19 columns rounded to 21: the
    // simulator's one-row band fits 900 bytes, the kernel's banks do not.
    let mut chip = edge();
    chip.buffers.fmap_bytes = 900;
    let model = random_model_with(1, &chain_geometry(3, 19, &[(13, 1)]), 2);
    let e = refused(
        &chip,
        &model,
        &[
            "layer 0 (layers.0)",
            "band-buffer banks",
            "`buffers.fmap_bytes` needs at least 1008",
        ],
    );
    assert!(matches!(e, HlsError::DoesNotFit { .. }));
}

#[test]
fn too_many_input_channels_for_the_weight_tile_are_refused_naming_the_layer() {
    // 1000 channels pass the simulator's buffer rule at PI = 7 only when the
    // weight buffer is at its minimum; the kernel pads them to 143 groups of 7.
    let mut chip = edge();
    chip.array.pi = 7;
    chip.buffers.weight_bytes_per_unit = 2 * 8 * (9 * 1000 + 8);
    let geometry = chain_geometry(3, 5, &[(8, 1), (1000, 1), (4, 1)]);
    let model = random_model_with(1, &geometry, 2);
    let e = refused(
        &chip,
        &model,
        &[
            "layer 2 (layers.2)",
            "weight tile holds",
            "1000 input channels",
        ],
    );
    assert!(matches!(e, HlsError::DoesNotFit { .. }));
}

#[test]
fn the_simulators_buffer_rules_apply_first() {
    let mut chip = edge();
    chip.buffers.fmap_bytes = 500;
    let e = refused(
        &chip,
        &demo_model(0),
        &["fmap_bytes", "too small", "layers.0"],
    );
    assert!(matches!(e, HlsError::Sim(_)));
}

#[test]
fn generation_replaces_an_existing_project_as_a_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("project");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("stale.txt"), "from an older generation").unwrap();
    let p = generate(&edge(), &demo_model(0), 0, &out).unwrap();
    let mut want: Vec<String> = p
        .files
        .iter()
        .filter(|(n, _)| !n.starts_with("data/"))
        .map(|(n, _)| n.clone())
        .chain(["data".to_string()])
        .collect();
    want.sort();
    assert_eq!(listing(&out), want);
    assert_eq!(listing(tmp.path()), vec!["project".to_string()]);
    for (name, bytes) in &p.files {
        assert_eq!(&std::fs::read(out.join(name)).unwrap(), bytes, "{name}");
    }
}

#[test]
fn kernel_constants_follow_the_chip() {
    let k = KernelDesign::new(&edge()).unwrap();
    // 128 KiB per unit, half for the tile: (65536 / 8 - 8) / 72 groups.
    assert_eq!(k.w_groups_max, 113);
    // 1 MiB, half for the band, over 9 banks of 8-byte words.
    assert_eq!(k.band_bank_words, 7281);
    // 80 bytes per cycle -> 128-byte (1024-bit) bursts.
    assert_eq!(k.axi_bits, 1024);
    // 9 * 8 products of at most 255 * 127.
    assert_eq!(k.sum_bits, 23);
    assert_eq!(k.mac_lanes(), 2304);
}

#[test]
fn the_estimate_warns_when_the_part_is_too_small() {
    let mut chip = ChipSpec::preset("dc-fpga").unwrap();
    chip.fpga = edge().fpga; // a ZU7EV cannot hold 18432 MAC lanes
    let k = KernelDesign::new(&chip).unwrap();
    let est = repopt_hls::resources::estimate(&k, chip.fpga.as_ref());
    assert_eq!(est.fits, Some(false));
    assert!(
        est.warnings
            .iter()
            .any(|w| w.starts_with("DOES NOT FIT") && w.contains("DSP")),
        "{:?}",
        est.warnings
    );
    let ok =
        repopt_hls::resources::estimate(&KernelDesign::new(&edge()).unwrap(), edge().fpga.as_ref());
    assert_eq!(ok.fits, Some(true), "{}", ok.table());
    let asic = ChipSpec::preset("asic").unwrap();
    let none = repopt_hls::resources::estimate(&KernelDesign::new(&asic).unwrap(), None);
    assert_eq!(none.fits, None);
    assert!(none.warnings[0].contains("no FPGA part"));
}

//! C simulation of generated projects with g++ and the ap_types headers:
//! every chip preset compiles and runs bit-exact (an odd demo network and the
//! tiny preset at 28x28); random INT8 networks with
//! odd shapes on random chips (several passes, idle units, one-row bands,
//! PI and PO that divide nothing) run bit-exact with the simulator on every
//! layer; the compute loop's trip counts equal the simulator's prediction.
//! Skipped, with a message, when the headers are not installed.

use std::path::{Path, PathBuf};

use repopt_hls::csim::{self, CsimReport};
use repopt_hls::{demo_model, generate, HlsError};
use repopt_int8::testutil::{chain_geometry, random_model_with, SplitMix64};
use repopt_int8::Int8Model;
use repopt_sim::schedule::min_fmap_buffer_bytes;
use repopt_sim::{compute_cycles, functional, ChipSpec, LayerSchedule};

fn headers() -> Option<PathBuf> {
    let d = csim::ap_types_dir();
    if d.is_none() {
        eprintln!("{}", csim::SKIP_MESSAGE);
    }
    d
}

/// The co-design check, from Rust: every layer's counted trip counts against
/// `repopt_sim::compute_cycles` and the schedule's data movement.
fn check_loops(chip: &ChipSpec, model: &Int8Model, r: &CsimReport) {
    let w = functional::workload_of(model);
    assert_eq!(r.layers.len(), w.layers.len());
    for (got, wl) in r.layers.iter().zip(&w.layers) {
        let l = &wl.conv;
        let s = LayerSchedule::new(chip, l);
        let c = compute_cycles(chip, l);
        let e = l.out_size as u64;
        let g = s.ic_groups as u64;
        assert_eq!(got.compute_iterations, c.iterations, "{}", wl.name);
        assert_eq!(got.tiles, c.tiles, "{}", wl.name);
        assert_eq!(
            got.compute_iterations + got.tiles * chip.array.pipeline_depth,
            c.total(),
            "{}",
            wl.name
        );
        assert_eq!(got.hls_compute_cycles, got.sim_compute_cycles);
        // Every output pixel is stored once per pass, weights once per pass.
        assert_eq!(got.store_pixels, s.passes as u64 * e * e, "{}", wl.name);
        assert_eq!(
            got.weight_words,
            (s.passes * s.oc_per_pass * 9) as u64 * g,
            "{}",
            wl.name
        );
        // Input rows loaded: the tiles' rows, per pass.
        let rows: u64 = s.tiles(chip).iter().map(|t| t.in_rows as u64).sum();
        assert_eq!(got.band_words, rows * l.in_size as u64 * g, "{}", wl.name);
    }
}

fn run_project(dir: &Path, ap: &Path) -> Result<CsimReport, HlsError> {
    let exe = csim::compile(dir, ap)?;
    csim::run(&exe, dir)
}

#[test]
fn every_preset_compiles_and_runs_bit_exact() {
    let Some(ap) = headers() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let tiny = repopt_int8::testutil::random_model(3, &repopt_spec::preset("tiny").unwrap());
    for name in ChipSpec::preset_names() {
        let chip = ChipSpec::preset(name).unwrap();
        for model in [demo_model(11), tiny.clone()] {
            let dir = tmp.path().join(format!("{name}-{}", model.name));
            generate(&chip, &model, 5, &dir).unwrap();
            let r =
                run_project(&dir, &ap).unwrap_or_else(|e| panic!("{name}, {}: {e}", model.name));
            check_loops(&chip, &model, &r);
            println!("{name}, {}: {}", model.name, r.summary());
        }
    }
}

/// A random small chip and a random network with odd shapes that the chip
/// runs (the feature-map buffer starts near the one-row minimum).
fn random_case(seed: u64) -> (ChipSpec, Int8Model) {
    let mut rng = SplitMix64(seed);
    let mut chip = ChipSpec::preset("edge-fpga").unwrap();
    chip.name = format!("random-{seed}");
    chip.array.units = rng.range_i64(1, 4) as usize;
    chip.array.pi = rng.range_i64(1, 7) as usize;
    chip.array.po = rng.range_i64(1, 6) as usize;
    chip.array.pipeline_depth = rng.range_i64(1, 20) as u64;
    let in_ch = rng.range_i64(1, 5) as usize;
    let size = rng.range_i64(3, 17) as usize;
    let layers: Vec<(usize, usize)> = (0..rng.range_i64(1, 3))
        .map(|_| (rng.range_i64(1, 19) as usize, rng.range_i64(1, 2) as usize))
        .collect();
    let geometry = chain_geometry(in_ch, size, &layers);
    let model = random_model_with(seed, &geometry, 3);
    let w = functional::workload_of(&model);
    let min = w
        .layers
        .iter()
        .map(|l| min_fmap_buffer_bytes(&chip, &l.conv))
        .max()
        .unwrap();
    chip.buffers.fmap_bytes = min + rng.range_i64(0, 2 * min as i64) as u64;
    // Grow the buffer until the kernel's banks (channels padded to PI, rows
    // and columns rounded to the 3x3 banks) hold every layer's band.
    while let Err(HlsError::DoesNotFit { .. }) = repopt_hls::KernelDesign::new(&chip)
        .unwrap()
        .plan(&chip, &w)
    {
        chip.buffers.fmap_bytes += chip.buffers.fmap_bytes / 8 + 1;
    }
    (chip, model)
}

#[test]
fn random_networks_on_random_chips_are_bit_exact() {
    let Some(ap) = headers() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (mut multi_pass, mut multi_band) = (false, false);
    for seed in 0..8u64 {
        let (chip, model) = random_case(1000 + seed);
        let dir = tmp.path().join(format!("case{seed}"));
        generate(&chip, &model, seed, &dir).unwrap();
        let r = run_project(&dir, &ap).unwrap_or_else(|e| {
            panic!(
                "seed {seed}, chip {:?}, model {:?}: {e}",
                chip.array,
                functional::workload_of(&model)
            )
        });
        check_loops(&chip, &model, &r);
        for wl in functional::workload_of(&model).layers {
            let s = LayerSchedule::new(&chip, &wl.conv);
            multi_pass |= s.passes > 1;
            multi_band |= s.bands > 1;
        }
    }
    assert!(
        multi_pass && multi_band,
        "the cases cover several passes and bands"
    );
}

#[test]
fn the_testbench_names_the_first_mismatch() {
    let Some(ap) = headers() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let chip = ChipSpec::preset("edge-fpga").unwrap();
    let model = demo_model(2);
    let dir = tmp.path().join("p");
    generate(&chip, &model, 1, &dir).unwrap();
    // Flip one output value of layer 1 at (y 2, x 3, channel 4).
    let g = &model.layers[1].geometry;
    let k = (2 * g.out_size + 3) * g.out_channels + 4;
    let path = dir.join("data/expected_1.bin");
    let mut bytes = std::fs::read(&path).unwrap();
    let was = bytes[k];
    bytes[k] = was.wrapping_add(1);
    std::fs::write(&path, &bytes).unwrap();
    let err = run_project(&dir, &ap).unwrap_err().to_string();
    let want = format!(
        "MISMATCH layer 1 (layers.1) at (y 2, x 3, channel 4): hls {was} simulator {}",
        was.wrapping_add(1)
    );
    assert!(err.contains(&want), "{err}");
}

#[test]
fn run_images_returns_the_kernels_outputs() {
    if headers().is_none() {
        return;
    }
    let chip = ChipSpec::preset("dc-fpga").unwrap();
    let model = demo_model(4);
    let images: Vec<Vec<u8>> = (0..2)
        .map(|k| repopt_int8::testutil::random_image(k, &model))
        .collect();
    let outs = csim::run_images(&chip, &model, &images).unwrap();
    for (img, out) in images.iter().zip(&outs) {
        let gold = repopt_int8::golden::run_network(&model, img).unwrap();
        assert_eq!(&gold, out);
    }
}

#[test]
fn narrow_accumulators_are_refused_with_the_simulators_overflow() {
    let mut chip = ChipSpec::preset("edge-fpga").unwrap();
    chip.array.accumulator_bits = 12;
    let err = repopt_hls::render_project(&chip, &demo_model(3), 0).unwrap_err();
    assert!(
        matches!(err, HlsError::Functional(_)) && err.to_string().contains("overflow"),
        "{err}"
    );
}

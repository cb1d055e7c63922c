//! The Candle INT8 engine against the contract: exact requantisation over the
//! whole int32 x multiplier x shift range, and bit-exact agreement with the
//! golden engine on every layer of random models (odd sizes, stride 2, odd
//! channel counts), plus its error paths.

use candle_core::{Device, Tensor};
use proptest::prelude::*;
use repopt_int8::arith::{multiplier_is_valid, requantize, requantize_u8};
use repopt_int8::testutil::{chain_geometry, random_image, random_model, random_model_with};
use repopt_int8::{golden, Int8Error};
use repopt_quant::engine::{CandleInt8, Requant};
use repopt_quant::im2col::{im2col, im2col_generic};
use repopt_quant::verify::{first_mismatch, verify, CandleRung, GoldenRung, Rung};
use repopt_quant::QuantError;

fn requant_candle(acc: &[i32], m: &[i32], s: &[i32]) -> (Vec<i64>, Vec<u8>) {
    let dev = Device::Cpu;
    let o = m.len();
    let rq = Requant::new(m, s, &dev).unwrap();
    let t = Tensor::from_vec(
        acc.iter().map(|&a| a as f64).collect::<Vec<_>>(),
        (acc.len() / o, o),
        &dev,
    )
    .unwrap();
    let un: Vec<f64> = rq
        .apply_unclamped(&t)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let cl: Vec<f64> = rq
        .apply(&t)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    (
        un.iter().map(|&x| x as i64).collect(),
        cl.iter().map(|&x| x as u8).collect(),
    )
}

/// The contract's exact formula in i128 (no saturation).
fn exact(acc: i32, m: i32, s: i32) -> i128 {
    let n = 31 + s;
    (acc as i128 * m as i128 + (1i128 << (n - 1))) >> n
}

fn check_requant(acc: &[i32], pairs: &[(i32, i32)]) {
    let m: Vec<i32> = pairs.iter().map(|p| p.0).collect();
    let s: Vec<i32> = pairs.iter().map(|p| p.1).collect();
    let o = m.len();
    let (un, cl) = requant_candle(acc, &m, &s);
    for (k, &a) in acc.iter().enumerate() {
        let (mm, ss) = (m[k % o], s[k % o]);
        let want = exact(a, mm, ss);
        // exact where the result is representable (always for n >= 17)
        if want.abs() <= (1i128 << 53) {
            assert_eq!(un[k] as i128, want, "acc {a} M0 {mm} shift {ss}");
        }
        assert_eq!(
            cl[k],
            requantize_u8(a, mm, ss),
            "acc {a} M0 {mm} shift {ss}"
        );
        assert_eq!(
            cl[k] as i32,
            requantize(a, mm, ss).clamp(0, 255),
            "acc {a} M0 {mm} shift {ss}"
        );
    }
}

fn pair() -> impl Strategy<Value = (i32, i32)> {
    prop_oneof![
        (1i32 << 30..=i32::MAX, -30i32..=31),
        (1i32 << 30..=i32::MAX, 0i32..=31), // the realistic range
        Just((0, 0)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn requantisation_is_exact(
        acc in prop::collection::vec(prop_oneof![any::<i32>(), -100_000i32..100_000, -300i32..300], 1..40),
        pairs in prop::collection::vec(pair(), 1..5),
    ) {
        let o = pairs.len();
        let n = acc.len() / o * o;
        prop_assume!(n > 0);
        check_requant(&acc[..n], &pairs);
    }

    #[test]
    fn candle_equals_golden_on_every_layer(
        seed in any::<u64>(),
        channels in 1usize..4,
        size in 1usize..12,
        layers in prop::collection::vec((1usize..9, 1usize..3), 1..5),
        classes in 1usize..7,
    ) {
        let geometry = chain_geometry(channels, size, &layers);
        let model = random_model_with(seed, &geometry, classes);
        let engine = CandleInt8::new(&model, &Device::Cpu).unwrap();
        let images: Vec<Vec<u8>> = (0..3).map(|k| random_image(seed ^ k, &model)).collect();
        let pixels: Vec<u8> = images.iter().flatten().copied().collect();
        let out = engine.run(&pixels, images.len(), true, 0).unwrap();
        for (i, img) in images.iter().enumerate() {
            let g = golden::run_network(&model, img).unwrap();
            let c = out.outputs(i).unwrap();
            prop_assert_eq!(first_mismatch(&model, i, &g, &c), None);
            prop_assert_eq!(&g, &c);
        }
    }
}

#[test]
fn requantisation_edges() {
    let accs = [
        0,
        1,
        -1,
        2,
        -2,
        127,
        255,
        256,
        -256,
        65535,
        65536,
        -65536,
        -65537,
        1 << 30,
        -(1 << 30),
        i32::MAX,
        i32::MIN,
        i32::MIN + 1,
        i32::MAX - 1,
    ];
    let mut pairs = vec![(0, 0)];
    for s in -30..=31 {
        for m in [
            1 << 30,
            (1 << 30) + 1,
            (1 << 30) + 65535,
            i32::MAX,
            i32::MAX - 65536,
            1_500_000_000,
        ] {
            assert!(multiplier_is_valid(m, s));
            pairs.push((m, s));
        }
    }
    for &p in &pairs {
        check_requant(&accs, &[p]);
    }
    // exact ties: acc * M0 / 2^n = k + 1/2 rounds up (towards +inf)
    let m = 1 << 30; // real = 2^30 / 2^(31+shift)
    check_requant(&[1, 3, 5, -1, -3, -5, 511, 509], &[(m, 0)]); // x/2
    check_requant(&[1, 3, -1, -3, 6, 10], &[(m, 1)]); // x/4
}

#[test]
fn generic_im2col_equals_the_cpu_op() {
    for (n, h, c, s) in [
        (2, 5, 3, 1),
        (1, 7, 2, 2),
        (3, 6, 1, 2),
        (1, 1, 4, 1),
        (2, 2, 5, 2),
    ] {
        let len = n * h * h * c;
        let x = Tensor::from_vec(
            (0..len)
                .map(|k| (k as f64 * 0.37).sin())
                .collect::<Vec<_>>(),
            (n, h, h, c),
            &Device::Cpu,
        )
        .unwrap();
        let a: Vec<Vec<f64>> = im2col(&x, s).unwrap().to_vec2().unwrap();
        let b: Vec<Vec<f64>> = im2col_generic(&x, s).unwrap().to_vec2().unwrap();
        assert_eq!(a, b, "n {n} h {h} c {c} stride {s}");
    }
}

#[test]
fn candle_equals_golden_on_a_preset_spec() {
    let spec = repopt_spec::ModelSpec::resolve("tiny").unwrap();
    let model = random_model(11, &spec);
    let mut rungs: Vec<Box<dyn Rung>> = vec![
        Box::new(CandleRung::new(&model, &Device::Cpu).unwrap()),
        Box::new(GoldenRung),
    ];
    let images: Vec<Vec<u8>> = (0..5).map(|k| random_image(k, &model)).collect();
    let report = verify(&model, &images, &mut rungs).unwrap();
    assert!(report.all_match(), "{:?}", report.lines());
    assert!(
        report.lines()[0].contains("all 5 images match on all 7 layers"),
        "{:?}",
        report.lines()
    );
}

#[test]
fn large_multipliers_small_shifts_match_golden() {
    // shift < -14 (n <= 16) exercises the second requantisation branch
    let geometry = chain_geometry(2, 5, &[(3, 1), (4, 2)]);
    let mut model = random_model_with(3, &geometry, 3);
    for l in &mut model.layers {
        for (k, s) in l.shift.iter_mut().enumerate() {
            if k % 2 == 0 {
                *s = -20;
            }
        }
    }
    let engine = CandleInt8::new(&model, &Device::Cpu).unwrap();
    let img = random_image(5, &model);
    let g = golden::run_network(&model, &img).unwrap();
    let c = engine.run_image(&img, 0).unwrap();
    assert_eq!(g, c);
}

#[test]
fn accumulator_overflow_names_the_layer_like_golden() {
    let geometry = chain_geometry(1, 4, &[(2, 1), (3, 2)]);
    let mut model = random_model_with(9, &geometry, 2);
    model.layers[1].bias[2] = i32::MAX - 10;
    for w in model.layers[1].weights.iter_mut() {
        *w = 127;
    }
    model.layers[0].bias = vec![1_000_000; 2]; // layer 0 outputs saturate at 255
    let img = random_image(1, &model);
    let g = golden::run_network(&model, &img).unwrap_err();
    let engine = CandleInt8::new(&model, &Device::Cpu).unwrap();
    let e = engine.run(&img, 1, false, 7).unwrap_err();
    let QuantError::Engine { image, source } = &e else {
        panic!("{e}")
    };
    assert_eq!(*image, 7);
    assert!(
        matches!(source, Int8Error::AccumulatorOverflow { layer: 1, .. }),
        "{e}"
    );
    assert_eq!(source.to_string(), g.to_string());
    let msg = e.to_string();
    assert!(
        msg.contains("layer 1 (layers.1)") && msg.contains("overflow"),
        "{msg}"
    );
}

#[test]
fn wrong_image_length_is_an_error() {
    let geometry = chain_geometry(3, 5, &[(2, 1)]);
    let model = random_model_with(1, &geometry, 2);
    let engine = CandleInt8::new(&model, &Device::Cpu).unwrap();
    let e = engine.run(&[0u8; 10], 1, false, 0).unwrap_err().to_string();
    assert!(e.contains("expected 75 (5x5x3 each)"), "{e}");
}

#[test]
fn an_invalid_model_is_rejected() {
    let geometry = chain_geometry(1, 4, &[(2, 1)]);
    let mut model = random_model_with(1, &geometry, 2);
    model.layers[0].shift[0] = 40;
    assert!(CandleInt8::new(&model, &Device::Cpu).is_err());
}

#[test]
fn a_broken_rung_is_reported_as_a_mismatch() {
    struct Broken(CandleRung);
    impl Rung for Broken {
        fn name(&self) -> String {
            "broken".into()
        }
        fn run(
            &mut self,
            model: &repopt_int8::Int8Model,
            images: &[Vec<u8>],
        ) -> repopt_quant::Result<Vec<repopt_int8::Outputs>> {
            let mut out = self.0.run(model, images)?;
            let v = &mut out[1].per_layer[1][5];
            *v = v.wrapping_add(1);
            Ok(out)
        }
    }
    let geometry = chain_geometry(2, 6, &[(3, 1), (5, 2), (2, 1)]);
    let model = random_model_with(4, &geometry, 3);
    let images: Vec<Vec<u8>> = (0..3).map(|k| random_image(k, &model)).collect();
    let mut rungs: Vec<Box<dyn Rung>> = vec![Box::new(Broken(
        CandleRung::new(&model, &Device::Cpu).unwrap(),
    ))];
    let report = verify(&model, &images, &mut rungs).unwrap();
    let m = report.rungs[0].mismatch.clone().unwrap();
    assert_eq!(m.image, 1);
    assert_eq!(m.stage, "layer 1 (layers.1)");
    // element 5 of a 3x3x5 map: pixel 1 (y 0, x 1), channel 0
    assert_eq!(m.position, (0, 1, 0));
    assert_eq!(m.other, m.golden.wrapping_add(1) & 0xFF);
    assert!(!report.all_match());
    assert!(
        report.lines()[0].contains("MISMATCH"),
        "{:?}",
        report.lines()
    );
}

//! The heart of the paper: training the CSLA block (s*conv3x3 + t*conv1x1 +
//! d*x, s and t fixed, kernels and d learnable, no BN between branches) with
//! SGD equals training the merged 3x3 kernel with RepOpt-SGD, in float64.

use candle_core::{DType, Device, Tensor, Var};
use proptest::prelude::*;
use repopt_spec::ConvLayer;
use repopt_train::conv::{centre_columns, im2col3x3, kernel_to_matmul};
use repopt_train::model::Param;
use repopt_train::optim::{RepOptSgd, SgdConfig};
use repopt_train::scales::{multiplier_oihw, LayerScales};

const LR: f64 = 0.03;
const DECAY: f64 = 1e-2;

struct Case {
    n: usize,
    size: usize,
    i: usize,
    o: usize,
    stride: usize,
    seed: u64,
    steps: usize,
}

fn rand_vec(len: usize, seed: u64) -> Vec<f64> {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

fn tensor(v: Vec<f64>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn layer(c: &Case) -> ConvLayer {
    let out = repopt_spec::conv_out_size(c.size, c.stride);
    ConvLayer {
        index: 0,
        stage: 1,
        block: 1,
        in_channels: c.i,
        out_channels: c.o,
        stride: c.stride,
        in_size: c.size,
        out_size: out,
        has_identity: c.i == c.o && c.stride == 1,
    }
}

fn param(name: &str, var: &Var, multiplier: Option<Tensor>) -> Param {
    Param {
        name: name.into(),
        var: var.clone(),
        decay: true,
        multiplier,
    }
}

/// Squared-error loss of the conv output against a fixed target.
fn loss(y: &Tensor, target: &Tensor) -> Tensor {
    ((y - target).unwrap().sqr().unwrap().sum_all().unwrap() * 0.5).unwrap()
}

/// Merged kernel `[9I, O]` of the CSLA block.
fn merge(
    k3: &Tensor,
    k1: &Tensor,
    s: &Tensor,
    t: &Tensor,
    d: Option<&Tensor>,
    i: usize,
    o: usize,
) -> Tensor {
    let zeros = Tensor::zeros((4 * i, o), DType::F64, &Device::Cpu).unwrap();
    let mut centre = k1.broadcast_mul(t).unwrap();
    if let Some(d) = d {
        centre = (centre
            + Tensor::eye(i, DType::F64, &Device::Cpu)
                .unwrap()
                .broadcast_mul(d)
                .unwrap())
        .unwrap();
    }
    let centre = Tensor::cat(&[&zeros, &centre, &zeros], 0).unwrap();
    (k3.broadcast_mul(s).unwrap() + centre).unwrap()
}

enum Control {
    /// The correct RepOpt-SGD: multiplier on the gradient, then decay.
    Correct,
    /// Wrong on purpose: decay added before the multiplier.
    DecayBeforeMultiplier,
}

/// Returns (merged CSLA kernel, RepOpt-SGD kernel) after `steps` steps.
fn run(c: &Case, scales: &LayerScales, control: Control) -> (Vec<f64>, Vec<f64>) {
    let l = layer(c);
    let (i, o) = (c.i, c.o);
    let x = tensor(
        rand_vec(c.n * c.size * c.size * i, c.seed),
        &[c.n, c.size, c.size, i],
    );
    let rows = c.n * l.out_size * l.out_size;
    let target = tensor(rand_vec(rows * o, c.seed + 1), &[rows, o]);
    let s = tensor(scales.conv.iter().map(|&v| v as f64).collect(), &[o]);
    let t = tensor(scales.one_by_one.iter().map(|&v| v as f64).collect(), &[o]);
    let sgd = SgdConfig {
        momentum: 0.9,
        weight_decay: DECAY,
        nesterov: true,
    };

    // CSLA form: K3, K1 and the identity weight d are learnable, plain SGD.
    let k3 = Var::from_tensor(&tensor(rand_vec(9 * i * o, c.seed + 2), &[9 * i, o])).unwrap();
    let k1 = Var::from_tensor(&tensor(rand_vec(i * o, c.seed + 3), &[i, o])).unwrap();
    let d = l
        .has_identity
        .then(|| Var::ones(o, DType::F64, &Device::Cpu).unwrap());
    let mut params = vec![param("k3", &k3, None), param("k1", &k1, None)];
    if let Some(d) = &d {
        params.push(param("d", d, None));
    }
    let mut opt = RepOptSgd::new(params, sgd).unwrap();
    let merged0 = merge(
        k3.as_tensor(),
        k1.as_tensor(),
        &s,
        &t,
        d.as_ref().map(|d| d.as_tensor()),
        i,
        o,
    );
    for _ in 0..c.steps {
        let cols = im2col3x3(&x, c.stride).unwrap();
        let mut y = (cols
            .matmul(k3.as_tensor())
            .unwrap()
            .broadcast_mul(&s)
            .unwrap()
            + centre_columns(&cols, i)
                .unwrap()
                .matmul(k1.as_tensor())
                .unwrap()
                .broadcast_mul(&t)
                .unwrap())
        .unwrap();
        if let Some(d) = &d {
            y = (y + x
                .reshape(((), i))
                .unwrap()
                .broadcast_mul(d.as_tensor())
                .unwrap())
            .unwrap();
        }
        opt.step(&loss(&y, &target).backward().unwrap(), LR)
            .unwrap();
    }
    let merged = merge(
        k3.as_tensor(),
        k1.as_tensor(),
        &s,
        &t,
        d.as_ref().map(|d| d.as_tensor()),
        i,
        o,
    );

    // RepOpt form: one 3x3 kernel from the same start, gradient multiplier M.
    let m = kernel_to_matmul(&tensor(multiplier_oihw(&l, scales), &[o, i, 3, 3])).unwrap();
    let w = Var::from_tensor(&merged0).unwrap();
    match control {
        Control::Correct => {
            let mut opt = RepOptSgd::new(vec![param("w", &w, Some(m))], sgd).unwrap();
            for _ in 0..c.steps {
                let y = im2col3x3(&x, c.stride)
                    .unwrap()
                    .matmul(w.as_tensor())
                    .unwrap();
                opt.step(&loss(&y, &target).backward().unwrap(), LR)
                    .unwrap();
            }
        }
        Control::DecayBeforeMultiplier => {
            let mut buf: Option<Tensor> = None;
            for _ in 0..c.steps {
                let y = im2col3x3(&x, c.stride)
                    .unwrap()
                    .matmul(w.as_tensor())
                    .unwrap();
                let g = loss(&y, &target)
                    .backward()
                    .unwrap()
                    .get(w.as_tensor())
                    .unwrap()
                    .clone();
                let g = ((g + (w.as_tensor() * DECAY).unwrap()).unwrap() * &m).unwrap();
                let b = match &buf {
                    Some(b) => ((b * 0.9).unwrap() + &g).unwrap(),
                    None => g.clone(),
                };
                let upd = (g + (&b * 0.9).unwrap()).unwrap();
                buf = Some(b);
                w.set(&(w.as_tensor() - (upd * LR).unwrap()).unwrap())
                    .unwrap();
            }
        }
    }
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    (flat(&merged), flat(w.as_tensor()))
}

fn relative_error(a: &[f64], b: &[f64]) -> f64 {
    let diff: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    diff / norm
}

fn scales_for(c: &Case, raw: &[f64]) -> LayerScales {
    let pick = |k: usize| {
        (0..c.o)
            .map(|j| raw[(k * c.o + j) % raw.len()] as f32)
            .collect::<Vec<_>>()
    };
    LayerScales {
        name: "stage1.1".into(),
        conv: pick(0),
        one_by_one: pick(1),
        identity: (c.i == c.o && c.stride == 1).then(|| pick(2)),
    }
}

#[test]
fn csla_and_repopt_sgd_reach_the_same_kernel() {
    let c = Case {
        n: 2,
        size: 6,
        i: 4,
        o: 4,
        stride: 1,
        seed: 11,
        steps: 30,
    };
    let scales = scales_for(
        &c,
        &[
            1.3, -0.7, 0.9, 0.4, -1.1, 0.6, 1.0, 0.8, -0.5, 1.2, 0.3, 0.95,
        ],
    );
    let (csla, repopt) = run(&c, &scales, Control::Correct);
    let err = relative_error(&csla, &repopt);
    assert!(err < 1e-8, "relative error {err:e}");
    // Negative control: the wrong order of decay and multiplier must differ by orders of magnitude.
    let (csla, wrong) = run(&c, &scales, Control::DecayBeforeMultiplier);
    let bad = relative_error(&csla, &wrong);
    eprintln!("merged-kernel relative error after {} steps: RepOpt-SGD {err:.2e}, decay-before-multiplier control {bad:.2e}", c.steps);
    assert!(
        bad > 1e-5,
        "decay before multiplier should break the equivalence, error {bad:e}"
    );
    assert!(bad > 1e4 * err.max(1e-16));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn equivalence_over_shapes_strides_and_scales(
        n in 1usize..3, size in 1usize..7, i in 1usize..5, extra_o in 0usize..3, same in any::<bool>(),
        stride in 1usize..3, seed in 0u64..10_000,
        raw in proptest::collection::vec(-2.0f64..2.0, 1..12),
    ) {
        let o = if same { i } else { i + extra_o };
        let c = Case { n, size, i, o, stride, seed, steps: 20 };
        let scales = scales_for(&c, &raw);
        let (csla, repopt) = run(&c, &scales, Control::Correct);
        let err = relative_error(&csla, &repopt);
        prop_assert!(err < 1e-8, "relative error {:e}", err);
    }
}

use crate::spec::{ModelSpec, StageSpec, SPEC_FORMAT_VERSION};

/// (name, blocks per stage 1..4, width multipliers a, b) of the paper's
/// RepOpt-VGG presets and RepVGG's own widths.
const PAPER: [(&str, [usize; 4], f64, f64); 9] = [
    ("B1", [4, 6, 16, 1], 2.0, 4.0),
    ("B2", [4, 6, 16, 1], 2.5, 5.0),
    ("L1", [8, 14, 24, 1], 2.0, 4.0),
    ("L2", [8, 14, 24, 1], 2.5, 5.0),
    ("A0", [2, 4, 14, 1], 0.75, 2.5),
    ("A1", [2, 4, 14, 1], 1.0, 2.5),
    ("A2", [2, 4, 14, 1], 1.5, 2.75),
    ("B0", [4, 6, 16, 1], 1.0, 2.5),
    ("B3", [4, 6, 16, 1], 3.0, 5.0),
];

/// Small networks for 28x28 grey images (Fashion-MNIST) that train in
/// minutes on two CPU cores; five stride-2 convs like the paper's models.
const SMALL: [(&str, [usize; 5], [usize; 5]); 2] = [
    ("tiny", [1, 1, 2, 2, 1], [16, 32, 64, 96, 128]),
    ("small", [1, 2, 3, 3, 1], [32, 48, 96, 128, 256]),
];

/// Names of every preset, in a stable order.
pub const PRESETS: [&str; 11] = [
    "tiny", "small", "A0", "A1", "A2", "B0", "B1", "B2", "B3", "L1", "L2",
];

pub fn preset_names() -> Vec<&'static str> {
    PRESETS.to_vec()
}

/// A preset by name (case-insensitive). Paper presets default to 224x224 RGB
/// and 1000 classes; `tiny` and `small` to 28x28 grey and 10 classes.
pub fn preset(name: &str) -> Option<ModelSpec> {
    if let Some((n, blocks, widths)) = SMALL.iter().find(|p| p.0.eq_ignore_ascii_case(name)) {
        let stages = blocks
            .iter()
            .zip(widths)
            .map(|(&b, &w)| StageSpec {
                blocks: b,
                width: w,
                stride: 2,
            })
            .collect();
        return Some(ModelSpec {
            format_version: SPEC_FORMAT_VERSION,
            name: n.to_string(),
            stages,
            classes: 10,
            in_channels: 1,
            image_size: 28,
        });
    }
    let (n, blocks, a, b) = PAPER.iter().find(|p| p.0.eq_ignore_ascii_case(name))?;
    let w = |base: f64, mult: f64| (base * mult) as usize;
    let widths = [
        64.min(w(64.0, *a)),
        w(64.0, *a),
        w(128.0, *a),
        w(256.0, *a),
        w(512.0, *b),
    ];
    let mut stages = vec![StageSpec {
        blocks: 1,
        width: widths[0],
        stride: 2,
    }];
    for (i, &nb) in blocks.iter().enumerate() {
        stages.push(StageSpec {
            blocks: nb,
            width: widths[i + 1],
            stride: 2,
        });
    }
    Some(ModelSpec {
        format_version: SPEC_FORMAT_VERSION,
        name: n.to_string(),
        stages,
        classes: 1000,
        in_channels: 3,
        image_size: 224,
    })
}

use serde::Serialize;

use crate::spec::ModelSpec;

/// Trainable parameter counts (BN running statistics are buffers, not
/// parameters, as in PyTorch's `numel` over `parameters()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ParamCounts {
    /// RepOpt-VGG: 3x3 conv + BN per block, linear head.
    pub repopt_vgg: u64,
    /// Hyper-Search model: RepOpt-VGG plus the 1x1 convs and the s, t, d scales.
    pub hyper_search: u64,
    /// RepVGG at training time: 3x3 + BN, 1x1 + BN, identity BN.
    pub repvgg_train: u64,
    /// RepVGG after fusion: one 3x3 conv with bias per block, linear head.
    pub repvgg_deploy: u64,
}

impl ModelSpec {
    pub fn param_counts(&self) -> ParamCounts {
        let head = (self.feature_width() * self.classes + self.classes) as u64;
        let mut c = ParamCounts {
            repopt_vgg: head,
            hyper_search: head,
            repvgg_train: head,
            repvgg_deploy: head,
        };
        for l in self.conv_layers() {
            let (o, i) = (l.out_channels as u64, l.in_channels as u64);
            let k3 = o * i * 9;
            let k1 = o * i;
            let bn = 2 * o;
            let id = l.has_identity as u64;
            c.repopt_vgg += k3 + bn;
            c.hyper_search += k3 + k1 + bn + 2 * o + id * o;
            c.repvgg_train += k3 + bn + k1 + bn + id * bn;
            c.repvgg_deploy += k3 + o;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use crate::preset;

    fn millions(n: u64) -> f64 {
        (n as f64 / 1e5).round() / 10.0
    }

    #[test]
    fn paper_parameter_counts() {
        // The paper's table (1000 classes), in millions of parameters.
        for (name, expected) in [("B1", 51.8), ("B2", 80.3), ("L1", 76.0), ("L2", 118.1)] {
            let c = preset(name).unwrap().param_counts();
            assert_eq!(millions(c.repopt_vgg), expected, "{name}");
        }
        let b1 = preset("B1").unwrap().param_counts();
        assert_eq!(millions(b1.repvgg_train), 57.4);
        assert_eq!(millions(b1.repvgg_deploy), 51.8);
    }

    #[test]
    fn repvgg_widths_parameter_counts() {
        // RepVGG paper, Table 2 (training-time params, millions).
        for (name, expected) in [
            ("A0", 9.1),
            ("A1", 14.1),
            ("A2", 28.2),
            ("B0", 15.8),
            ("B3", 123.1),
        ] {
            let c = preset(name).unwrap().param_counts();
            assert_eq!(millions(c.repvgg_train), expected, "{name}");
        }
    }

    #[test]
    fn small_presets_are_small() {
        for name in ["tiny", "small"] {
            let spec = preset(name).unwrap();
            assert!(spec.param_counts().repopt_vgg < 2_000_000, "{name}");
            assert_eq!(
                spec.conv_layers().iter().filter(|l| l.stride == 2).count(),
                5
            );
        }
    }
}

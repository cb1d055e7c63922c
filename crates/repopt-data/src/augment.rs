//! Training-time augmentation: random crop with zero padding, random
//! horizontal flip — the standard CIFAR recipe.
//!
//! Semantics match torchvision's `RandomCrop(size, padding=P)` followed by
//! `RandomHorizontalFlip()`: the *raw* u8 image is padded with `P` pixels of
//! value 0 on every side, an `H x W` window is cut at a uniformly random
//! offset `(dy, dx)` in `0..=2P`, then mirrored left-right with probability
//! 1/2. Padding is 0 in pixel space, so after normalisation it becomes
//! `-mean/std`, not 0 — the same as torchvision, and what the published
//! RepOpt-VGG accuracies were trained with.

use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::rng::uniform_below;

/// Which augmentations to apply while batching.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Augment {
    /// Zero padding `P` for the random crop; 0 disables cropping.
    pub crop_pad: usize,
    /// Mirror left-right with probability 1/2.
    pub hflip: bool,
}

/// The random choices for one image, drawn by [`Augment::sample`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AugmentParams {
    /// Vertical crop offset into the padded image, `0..=2P` (`P` = no shift).
    pub dy: usize,
    /// Horizontal crop offset into the padded image, `0..=2P`.
    pub dx: usize,
    /// Whether to mirror left-right.
    pub flip: bool,
}

impl Augment {
    /// No augmentation (evaluation, or training without it).
    pub fn none() -> Self {
        Augment {
            crop_pad: 0,
            hflip: false,
        }
    }

    /// Crop with padding `pad` plus horizontal flip: the usual recipe
    /// (`pad` 4 for 32x32 CIFAR, 2 or 4 for 28x28 Fashion-MNIST).
    pub fn standard(pad: usize) -> Self {
        Augment {
            crop_pad: pad,
            hflip: true,
        }
    }

    /// True when this changes nothing.
    pub fn is_none(&self) -> bool {
        self.crop_pad == 0 && !self.hflip
    }

    /// Parameters that leave the image unchanged (offset `P`, no flip).
    pub fn identity_params(&self) -> AugmentParams {
        AugmentParams {
            dy: self.crop_pad,
            dx: self.crop_pad,
            flip: false,
        }
    }

    /// Draws the parameters for one image. Always consumes the same number
    /// of random words (three), whatever is enabled, so enabling flip does
    /// not change which crops are drawn.
    pub fn sample<R: RngCore + ?Sized>(&self, rng: &mut R) -> AugmentParams {
        let span = 2 * self.crop_pad as u64 + 1;
        let dy = uniform_below(rng, span) as usize;
        let dx = uniform_below(rng, span) as usize;
        let flip = rng.next_u32() & 1 == 1;
        AugmentParams {
            dy,
            dx,
            flip: self.hflip && flip,
        }
    }

    /// Applies `params` to one `height x width x channels` HWC image.
    /// Panics if `image.len()` does not match the shape.
    pub fn apply(
        &self,
        params: AugmentParams,
        image: &[u8],
        height: usize,
        width: usize,
        channels: usize,
    ) -> Vec<u8> {
        let mut out = vec![0u8; image.len()];
        augment_map(
            self.crop_pad,
            params,
            image,
            [height, width, channels],
            |v, _| v,
            &mut out,
        );
        out
    }
}

/// Writes `map(pixel, channel)` of the augmented image into `out`.
///
/// `out[y, x] = padded[y + dy, x' + dx]` with `x' = W-1-x` if flipping else
/// `x`, where `padded[i, j] = image[i - P, j - P]` inside the image and 0
/// outside. Shared by [`Augment::apply`] (u8) and the batcher (normalised
/// f32), so the tested u8 path is the path training uses.
pub(crate) fn augment_map<T: Copy>(
    pad: usize,
    params: AugmentParams,
    image: &[u8],
    [h, w, c]: [usize; 3],
    map: impl Fn(u8, usize) -> T,
    out: &mut [T],
) {
    assert_eq!(image.len(), h * w * c, "image size does not match shape");
    assert_eq!(out.len(), image.len(), "output size does not match image");
    let zero: Vec<T> = (0..c).map(|ch| map(0, ch)).collect();
    for y in 0..h {
        // Source row, if inside the image.
        let sy = (y + params.dy).checked_sub(pad).filter(|&sy| sy < h);
        for x in 0..w {
            let xx = if params.flip { w - 1 - x } else { x };
            let sx = (xx + params.dx).checked_sub(pad).filter(|&sx| sx < w);
            let o = &mut out[(y * w + x) * c..(y * w + x + 1) * c];
            match (sy, sx) {
                (Some(sy), Some(sx)) => {
                    let s = &image[(sy * w + sx) * c..(sy * w + sx + 1) * c];
                    for ch in 0..c {
                        o[ch] = map(s[ch], ch);
                    }
                }
                _ => o.copy_from_slice(&zero),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(h: usize, w: usize, c: usize) -> Vec<u8> {
        (0..h * w * c).map(|i| (i % 251 + 1) as u8).collect()
    }

    #[test]
    fn identity_params_change_nothing() {
        let img = ramp(5, 4, 3);
        let a = Augment::standard(2);
        assert_eq!(a.apply(a.identity_params(), &img, 5, 4, 3), img);
        assert_eq!(
            Augment::none().apply(Augment::none().identity_params(), &img, 5, 4, 3),
            img
        );
    }

    #[test]
    fn flip_is_exact_mirror() {
        let (h, w, c) = (3, 5, 2);
        let img = ramp(h, w, c);
        let a = Augment::standard(1);
        let p = AugmentParams {
            flip: true,
            ..a.identity_params()
        };
        let out = a.apply(p, &img, h, w, c);
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    assert_eq!(
                        out[(y * w + x) * c + ch],
                        img[(y * w + (w - 1 - x)) * c + ch]
                    );
                }
            }
        }
        // Flipping twice restores the image.
        assert_eq!(a.apply(p, &out, h, w, c), img);
    }

    #[test]
    fn crop_shifts_and_zero_pads() {
        let (h, w) = (4, 4);
        let img = ramp(h, w, 1);
        let a = Augment {
            crop_pad: 2,
            hflip: false,
        };
        // dy = dx = 0: the window starts 2 pixels above-left of the image.
        let out = a.apply(
            AugmentParams {
                dy: 0,
                dx: 0,
                flip: false,
            },
            &img,
            h,
            w,
            1,
        );
        for y in 0..h {
            for x in 0..w {
                let want = if y >= 2 && x >= 2 {
                    img[(y - 2) * w + (x - 2)]
                } else {
                    0
                };
                assert_eq!(out[y * w + x], want, "({y},{x})");
            }
        }
        // dy = 4, dx = 3: shifted the other way.
        let out = a.apply(
            AugmentParams {
                dy: 4,
                dx: 3,
                flip: false,
            },
            &img,
            h,
            w,
            1,
        );
        for y in 0..h {
            for x in 0..w {
                let want = if y + 2 < h && x + 1 < w {
                    img[(y + 2) * w + (x + 1)]
                } else {
                    0
                };
                assert_eq!(out[y * w + x], want, "({y},{x})");
            }
        }
    }

    #[test]
    fn samples_stay_in_range_and_respect_switches() {
        let mut rng = crate::rng::chacha(1, &[2, 3]);
        let a = Augment::standard(3);
        let mut flips = 0;
        for _ in 0..1000 {
            let p = a.sample(&mut rng);
            assert!(p.dy <= 6 && p.dx <= 6);
            flips += p.flip as usize;
        }
        assert!((350..650).contains(&flips), "{flips}");
        let none = Augment::none();
        for _ in 0..100 {
            assert_eq!(none.sample(&mut rng), none.identity_params());
        }
    }
}

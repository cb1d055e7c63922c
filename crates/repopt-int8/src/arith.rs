//! Fixed-point arithmetic of the datapath contract (`docs/int8-datapath.md`,
//! sections "Requantisation", "Saturation" and "Rounding").
//!
//! Pure integer functions, mirrored one to one by the C++ templates of the HLS
//! generator. Every function here is exact: no floating point is involved
//! except in [`quantize_multiplier`] and [`quantize_symmetric`], which run on
//! the host when a model is built, never in the datapath.

/// Smallest allowed non-zero multiplier `M0` (Q31 value 0.5).
pub const MULTIPLIER_MIN: i32 = 1 << 30;
/// Smallest allowed `shift` (total right shift `31 + shift` is at least 1).
pub const SHIFT_MIN: i32 = -30;
/// Largest allowed `shift` (total right shift `31 + shift` is at most 62).
pub const SHIFT_MAX: i32 = 31;

/// Why a real multiplier cannot be represented (contract, "Requantisation").
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MultiplierError {
    #[error("real multiplier {0} is not a finite number >= 0")]
    NotFiniteNonNegative(f64),
    #[error("real multiplier {0} is too large: the contract allows real multipliers below 2^30 (shift >= {SHIFT_MIN})")]
    TooLarge(f64),
}

/// Is `(m, shift)` a valid requantisation pair? `m` is 0 or in
/// `[2^30, 2^31)`, `shift` in `[SHIFT_MIN, SHIFT_MAX]`.
#[inline]
pub fn multiplier_is_valid(m: i32, shift: i32) -> bool {
    (m == 0 || m >= MULTIPLIER_MIN) && (SHIFT_MIN..=SHIFT_MAX).contains(&shift)
}

/// Represents `real` as `m * 2^-(31 + shift)` with `m` in `[2^30, 2^31)`.
///
/// * `real == 0` and every `real < 2^-32` give `(0, 0)`: for such a multiplier
///   `|acc * real| < 0.5` for every i32 `acc`, so the exact rounded result is
///   0, which `(0, 0)` reproduces.
/// * `2^-32 <= real < 2^30` gives the nearest Q31 mantissa (ties away from
///   zero); relative error at most 2^-31.
/// * negative, NaN, infinite, or `real >= 2^30` (after rounding): an error.
pub fn quantize_multiplier(real: f64) -> Result<(i32, i32), MultiplierError> {
    if !real.is_finite() || real < 0.0 {
        return Err(MultiplierError::NotFiniteNonNegative(real));
    }
    // 2^-32 is exactly representable.
    if real < f64::from_bits(((1023 - 32) as u64) << 52) {
        return Ok((0, 0));
    }
    // real is normal here: real = frac * 2^e with frac in [0.5, 1).
    let biased = ((real.to_bits() >> 52) & 0x7ff) as i32;
    let mut e = biased - 1022;
    let frac = real * pow2(-e); // exact: a power-of-two scaling of a normal number
    debug_assert!((0.5..1.0).contains(&frac));
    let mut m = (frac * 2f64.powi(31)).round() as i64; // exact product, then round half away
    if m == 1i64 << 31 {
        m = 1i64 << 30;
        e += 1;
    }
    let shift = -e;
    if shift < SHIFT_MIN {
        return Err(MultiplierError::TooLarge(real));
    }
    debug_assert!(shift <= SHIFT_MAX);
    Ok((m as i32, shift))
}

/// `2^k` as an f64, exact for `-1022 <= k <= 1023`.
fn pow2(k: i32) -> f64 {
    f64::from_bits(((1023 + k) as u64) << 52)
}

/// The real value `m * 2^-(31 + shift)` of a requantisation pair (reports only).
pub fn multiplier_to_real(m: i32, shift: i32) -> f64 {
    m as f64 * 2f64.powi(-(31 + shift))
}

/// Requantisation before the clamp (contract, "Requantisation"):
///
/// ```text
/// p = (int64) acc * (int64) m            // |p| < 2^62, exact
/// n = 31 + shift                          // 1 <= n <= 62
/// r = (p + 2^(n-1)) >> n                  // arithmetic shift: round half up
/// ```
///
/// i.e. `r = floor(acc * m / 2^n + 1/2)`. The result is saturated to i32,
/// which only matters for negative shifts (real multipliers >= 1) and is
/// invisible after [`saturate_u8`]. `(m, shift)` must satisfy
/// [`multiplier_is_valid`] (checked when a model is loaded); out-of-range
/// shifts are clamped into range rather than panicking.
#[inline]
pub fn requantize(acc: i32, m: i32, shift: i32) -> i32 {
    let n = 31 + shift.clamp(SHIFT_MIN, SHIFT_MAX);
    let p = acc as i64 * m as i64;
    let r = (p + (1i64 << (n - 1))) >> n;
    r.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// Requantise and clamp to `[0, 255]`: the output of every conv layer. The
/// clamp is also the ReLU (contract, "Requantisation").
#[inline]
pub fn requantize_u8(acc: i32, m: i32, shift: i32) -> u8 {
    saturate_u8(requantize(acc, m, shift) as i64)
}

/// Clamp to `[0, 255]`.
#[inline]
pub fn saturate_u8(x: i64) -> u8 {
    x.clamp(0, 255) as u8
}

/// Clamp to the symmetric int8 range `[-127, 127]` used by weights and the
/// network input (never -128).
#[inline]
pub fn saturate_i8(x: i64) -> i8 {
    x.clamp(-127, 127) as i8
}

/// Clamp to i32.
#[inline]
pub fn saturate_i32(x: i64) -> i32 {
    x.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// Round to nearest, ties away from zero (host-side quantisation of floats:
/// weights, bias, input). NaN gives 0; values beyond i64 saturate.
#[inline]
pub fn round_half_away(x: f64) -> i64 {
    if x.is_nan() {
        0
    } else {
        x.round() as i64 // `as` saturates
    }
}

/// Symmetric int8 quantisation `clamp(round_half_away(x / scale), -127, 127)`
/// (host side, computed in f64). A non-positive or non-finite scale gives 0.
#[inline]
pub fn quantize_symmetric(x: f64, scale: f64) -> i8 {
    if !(scale.is_finite() && scale > 0.0) {
        return 0;
    }
    saturate_i8(round_half_away(x / scale))
}

/// Is `value` representable in a two's complement accumulator of `bits` bits
/// (`2 <= bits <= 64`)?
#[inline]
pub fn fits_bits(value: i64, bits: u32) -> bool {
    if bits >= 64 {
        return true;
    }
    let half = 1i64 << (bits.max(1) - 1);
    value >= -half && value < half
}

/// Bits a two's complement accumulator needs to hold every value in
/// `[-bound, bound]` (`bound >= 0`).
pub fn bits_for_bound(bound: u64) -> u32 {
    // need bound <= 2^(b-1) - 1  <=> bound < 2^(b-1)
    let mut b = 1u32;
    while b < 64 && (1u64 << (b - 1)) <= bound {
        b += 1;
    }
    b.max(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Exact model: round half up of acc*m / 2^n, over i128.
    fn exact(acc: i32, m: i32, shift: i32) -> i128 {
        let n = 31 + shift;
        let num = acc as i128 * m as i128;
        let den = 1i128 << n;
        // floor((2*num + den) / (2*den)) computed with Euclidean division
        (2 * num + den).div_euclid(2 * den)
    }

    fn valid_m() -> impl Strategy<Value = i32> {
        prop_oneof![
            MULTIPLIER_MIN..=i32::MAX,
            Just(0),
            Just(MULTIPLIER_MIN),
            Just(i32::MAX)
        ]
    }

    fn any_acc() -> impl Strategy<Value = i32> {
        prop_oneof![
            any::<i32>(),
            Just(i32::MIN),
            Just(i32::MAX),
            Just(0),
            Just(-1),
            Just(1),
            -100_000i32..100_000
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn requantize_matches_exact_model(acc in any_acc(), m in valid_m(), shift in SHIFT_MIN..=SHIFT_MAX) {
            let want = exact(acc, m, shift).clamp(i32::MIN as i128, i32::MAX as i128) as i32;
            prop_assert_eq!(requantize(acc, m, shift), want);
            prop_assert_eq!(requantize_u8(acc, m, shift) as i128, exact(acc, m, shift).clamp(0, 255));
        }

        #[test]
        fn requantize_ties_round_up((k, shift) in (0i32..=29).prop_flat_map(|s| (-(1i64 << (29 - s))..(1i64 << (29 - s)), Just(s)))) {
            // acc * 2^30 / 2^(31+shift) = acc / 2^(shift+1); choose acc = (2k+1) * 2^shift
            // so the exact value is k + 1/2, a tie.
            let acc = (2 * k + 1) << shift;
            prop_assert_eq!(requantize(acc as i32, MULTIPLIER_MIN, shift) as i64, k + 1);
        }

        #[test]
        fn quantize_multiplier_is_accurate(real in prop_oneof![1e-12f64..1e-6, 1e-6f64..1.0, 1.0f64..1e9, 2.4e-10f64..2.4e-10 * 4.0]) {
            let (m, shift) = quantize_multiplier(real).unwrap();
            prop_assert!(multiplier_is_valid(m, shift));
            if real < 2f64.powi(-32) {
                prop_assert_eq!((m, shift), (0, 0));
            } else {
                prop_assert!(m >= MULTIPLIER_MIN);
                let back = multiplier_to_real(m, shift);
                prop_assert!(((back - real) / real).abs() <= 2f64.powi(-31), "{real} -> {back}");
            }
        }

        #[test]
        fn tiny_multiplier_flush_is_exact(real in 0.0f64..2.3283064365386963e-10, acc in any::<i32>()) {
            let exact_val = (acc as f64 * real).round();
            prop_assert_eq!(exact_val, 0.0);
            let (m, s) = quantize_multiplier(real).unwrap();
            prop_assert_eq!(requantize(acc, m, s), 0);
        }
    }

    #[test]
    fn requantize_explicit_ties() {
        // real multiplier 0.5: m = 2^30, shift = 0
        let (m, s) = quantize_multiplier(0.5).unwrap();
        assert_eq!((m, s), (1 << 30, 0));
        assert_eq!(requantize(1, m, s), 1); // 0.5 -> 1
        assert_eq!(requantize(3, m, s), 2); // 1.5 -> 2
        assert_eq!(requantize(-1, m, s), 0); // -0.5 -> 0 (half up)
        assert_eq!(requantize(-3, m, s), -1); // -1.5 -> -1
        assert_eq!(requantize(2, m, s), 1);
        assert_eq!(requantize(i32::MAX, m, s), 1 << 30); // 2^30 - 0.5 -> 2^30
        assert_eq!(requantize(i32::MIN, m, s), -(1 << 30));
        // 0.25: 5 * 0.25 = 1.25 -> 1, 6 * 0.25 = 1.5 -> 2, 7 * 0.25 -> 2
        let (m, s) = quantize_multiplier(0.25).unwrap();
        assert_eq!((m, s), (1 << 30, 1));
        assert_eq!(
            [5, 6, 7, -5, -6, -7].map(|a| requantize(a, m, s)),
            [1, 2, 2, -1, -1, -2]
        );
    }

    #[test]
    fn requantize_extremes() {
        assert_eq!(requantize(i32::MAX, i32::MAX, SHIFT_MIN), i32::MAX);
        assert_eq!(requantize(i32::MIN, i32::MAX, SHIFT_MIN), i32::MIN);
        assert_eq!(requantize(i32::MIN, i32::MAX, SHIFT_MAX), -1); // -0.99999 -> -1
        assert_eq!(requantize(i32::MIN, MULTIPLIER_MIN, SHIFT_MAX), 0); // -0.5 -> 0
        assert_eq!(requantize(i32::MAX, i32::MAX, 0), i32::MAX - 1); // (2^31-1)^2 / 2^31 = 2^31 - 2 + 2^-31
        assert_eq!(requantize(12345, 0, 0), 0);
        assert_eq!(requantize_u8(i32::MAX, i32::MAX, SHIFT_MIN), 255);
        assert_eq!(requantize_u8(i32::MIN, i32::MAX, SHIFT_MIN), 0);
    }

    #[test]
    fn saturation_edges() {
        let cases = [
            (-1i64, 0u8),
            (0, 0),
            (255, 255),
            (256, 255),
            (i32::MIN as i64, 0),
            (i32::MAX as i64, 255),
            (i64::MIN, 0),
            (i64::MAX, 255),
        ];
        for (x, want) in cases {
            assert_eq!(saturate_u8(x), want, "{x}");
        }
        let cases = [
            (-128i64, -127i8),
            (-127, -127),
            (127, 127),
            (128, 127),
            (0, 0),
            (i32::MIN as i64, -127),
            (i32::MAX as i64, 127),
        ];
        for (x, want) in cases {
            assert_eq!(saturate_i8(x), want, "{x}");
        }
        assert_eq!(saturate_i32(i64::MAX), i32::MAX);
        assert_eq!(saturate_i32(i64::MIN), i32::MIN);
    }

    #[test]
    fn rounding_and_symmetric_quantisation() {
        assert_eq!(round_half_away(0.5), 1);
        assert_eq!(round_half_away(-0.5), -1);
        assert_eq!(round_half_away(1.5), 2);
        assert_eq!(round_half_away(-2.5), -3);
        assert_eq!(round_half_away(2.4999), 2);
        assert_eq!(round_half_away(f64::NAN), 0);
        assert_eq!(quantize_symmetric(1.0, 0.01), 100);
        assert_eq!(quantize_symmetric(-5.0, 0.01), -127);
        assert_eq!(quantize_symmetric(1.0, 0.0), 0);
    }

    #[test]
    fn multiplier_range_handling() {
        assert_eq!(quantize_multiplier(0.0), Ok((0, 0)));
        assert_eq!(quantize_multiplier(1e-300), Ok((0, 0)));
        assert_eq!(quantize_multiplier(f64::MIN_POSITIVE / 4.0), Ok((0, 0)));
        assert_eq!(quantize_multiplier(2f64.powi(-32)), Ok((1 << 30, 31)));
        assert_eq!(quantize_multiplier(1.0), Ok((1 << 30, -1)));
        assert_eq!(quantize_multiplier(3.0), Ok((3 << 29, -2)));
        assert!(quantize_multiplier(2f64.powi(30) * 0.999).is_ok());
        assert!(matches!(
            quantize_multiplier(2f64.powi(30)),
            Err(MultiplierError::TooLarge(_))
        ));
        assert!(quantize_multiplier(-1.0).is_err());
        assert!(quantize_multiplier(f64::NAN).is_err());
        assert!(quantize_multiplier(f64::INFINITY).is_err());
        // rounding up to 2^31 renormalises
        let just_below_one = 1.0 - 2f64.powi(-40);
        assert_eq!(quantize_multiplier(just_below_one), Ok((1 << 30, -1)));
    }

    #[test]
    fn accumulator_bits() {
        assert!(fits_bits(i32::MAX as i64, 32));
        assert!(!fits_bits(i32::MAX as i64 + 1, 32));
        assert!(fits_bits(i32::MIN as i64, 32));
        assert!(!fits_bits(i32::MIN as i64 - 1, 32));
        assert!(fits_bits(127, 8) && !fits_bits(128, 8) && fits_bits(-128, 8));
        assert_eq!(bits_for_bound(127), 8);
        assert_eq!(bits_for_bound(128), 9);
        assert_eq!(bits_for_bound(0), 2);
        assert_eq!(bits_for_bound(i32::MAX as u64), 32);
        assert_eq!(bits_for_bound(i32::MAX as u64 + 1), 33);
    }
}

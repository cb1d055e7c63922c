//! Deterministic random streams for shuffling and augmentation.
//!
//! Reproducibility must survive a resume and a dependency upgrade, so we do
//! not rely on `rand`'s `seed_from_u64`, `shuffle` or `random_range`, whose
//! exact outputs may change between `rand` releases. Seeds are expanded with
//! SplitMix64 (a fixed, published function), the stream is ChaCha8 (whose
//! output `rand_chacha` guarantees), and integer ranges use our own
//! rejection sampler.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One SplitMix64 step: advances `state` and returns a well-mixed word.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A ChaCha8 stream determined only by `seed` and the words in `path`
/// (e.g. `[STREAM_TAG, epoch, batch]`).
pub(crate) fn chacha(seed: u64, path: &[u64]) -> ChaCha8Rng {
    let mut state = seed;
    for &p in path {
        // Fold each word in through a full mixing step so (a, b) != (b, a).
        state = splitmix64(&mut state) ^ p;
    }
    let mut key = [0u8; 32];
    for chunk in key.chunks_exact_mut(8) {
        chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// Uniform integer in `0..n` (`n > 0`), unbiased (Lemire's method).
pub(crate) fn uniform_below<R: RngCore + ?Sized>(rng: &mut R, n: u64) -> u64 {
    assert!(n > 0, "empty range");
    let threshold = n.wrapping_neg() % n;
    loop {
        let m = u128::from(rng.next_u64()) * u128::from(n);
        if (m as u64) >= threshold {
            return (m >> 64) as u64;
        }
    }
}

/// Fisher–Yates shuffle driven by [`uniform_below`].
pub(crate) fn shuffle<T, R: RngCore + ?Sized>(items: &mut [T], rng: &mut R) {
    for i in (1..items.len()).rev() {
        let j = uniform_below(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

//! CPU threading for training.
//!
//! Candle runs elementwise ops on its own pool of spinning worker threads,
//! beside the rayon threads of its GEMM and of our im2col and batch-norm ops.
//! On a small machine the two pools fight for the same cores; measured on two
//! cores, a tiny-model training step is ~1.3x faster with Candle's pool off
//! (elementwise ops on the calling thread) and ~1.05x faster than with a short
//! spin. GEMM and our ops keep every core through rayon.

/// Turns Candle's elementwise worker pool off unless `CANDLE_NUM_THREADS` is
/// set. Call at the start of `main`, before any Candle op runs.
pub fn configure_cpu_threads() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: called before any other thread exists; nothing reads the
        // environment concurrently.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
}

//! Image datasets for training (work in progress).

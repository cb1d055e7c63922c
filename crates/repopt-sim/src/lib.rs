//! Cycle-approximate simulator (work in progress).

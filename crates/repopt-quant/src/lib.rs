//! repopt-quant (work in progress)

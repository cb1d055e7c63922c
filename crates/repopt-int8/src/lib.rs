//! INT8 datapath (work in progress).

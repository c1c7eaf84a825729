//! The `ela` command: a thin layer over the libraries that parses flags, runs one command and
//! prints its result. It owns only what joins them: a training followed by its report
//! ([`training`]) and the reproduction of paper tables ([`reproduce`]), which trains many runs.
//! Nothing below depends on it.
//!
//! - [`training`]: `ela train`, a run and its report.
//! - [`reproduce`]: every row of a paper table, several seeds, mean ± std next to the paper;
//!   [`reproduce_detect`] for the detection table (Table 5).

pub mod reproduce;
pub mod reproduce_detect;
pub mod training;

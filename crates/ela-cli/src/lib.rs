//! The `ela` command: a thin layer over the libraries that parses flags, runs one command and
//! prints its result. It owns only what joins them: the front door that finds a command line's
//! task ([`front`]), a training of any task followed by its report ([`training`]), the
//! reproduction of paper tables ([`reproduce`]), which trains many runs, and the commands that
//! are the binary's own ([`args`], [`commands`]). Nothing below depends on it.
//!
//! - [`front`]: the task of a command line, and its flags for that task.
//! - [`training`]: `ela train`, a run of any task and its report.
//! - [`reproduce`]: every row of a paper table, several seeds, mean ± std next to the paper.
//! - [`eval`]: `ela eval`, a checkpoint of any task scored on a dataset.
//! - [`args`], [`commands`]: the other commands' flags and bodies.

pub mod args;
pub mod commands;
pub mod eval;
pub mod front;
pub mod reproduce;
pub mod training;

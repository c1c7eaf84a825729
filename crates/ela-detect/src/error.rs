//! The crate's error type: every message names the file, flag or value at fault.

use std::path::PathBuf;

/// What can go wrong in detection.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// A file that cannot be read or does not hold what it should.
    #[error("{what} {}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What it was meant to hold.
        what: &'static str,
        /// Why it was refused.
        message: String,
    },
    /// A value out of range, or inputs that do not fit together.
    #[error("{0}")]
    Invalid(String),
    /// The backbone could not be built.
    #[error(transparent)]
    Model(#[from] ela_model::ModelError),
}

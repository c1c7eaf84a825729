//! Errors of model construction, skip-flag updates and weight files.

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong building a model or moving its weights.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The depth or block structure is invalid.
    #[error(transparent)]
    Layout(#[from] ela_prune::PruneError),
    /// An invalid model hyper-parameter.
    #[error("invalid model option {name}: {reason}")]
    Option { name: &'static str, reason: String },
    /// Skip flags were set on a model whose attention has no retrievals to skip.
    #[error("skip flags need MRLA-B attention (ELA); this model uses {0}")]
    SkipsNeedMrlaB(String),
    /// An input tensor the model cannot take.
    #[error("input of shape {shape:?} does not fit the model: {reason}")]
    Input { shape: Vec<usize>, reason: String },
    /// A weight file could not be read, written or applied.
    #[error("weights file {path}: {reason}")]
    Weights { path: PathBuf, reason: String },
}

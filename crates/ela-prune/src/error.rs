//! Typed errors for invalid pruning parameters and inputs.

use thiserror::Error;

/// Everything that can be wrong with a pruning configuration or its input.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PruneError {
    /// A Beta shape parameter (α or β) was not strictly positive and finite.
    #[error("Beta shape parameter {name} must be a finite number > 0, got {value}")]
    BetaShape { name: &'static str, value: f64 },
    /// The mapped-value threshold τ was outside [0, 1].
    #[error("threshold tau must lie in [0, 1], got {0}")]
    Tau(f64),
    /// The candidate quantile q was outside (0, 1].
    #[error("quantile q must lie in (0, 1], got {0}")]
    Quantile(f64),
    /// A pruning window does not fit the run or is malformed.
    #[error("pruning window {start}-{end} is invalid: {reason}")]
    Window {
        start: usize,
        end: usize,
        reason: String,
    },
    /// A window specification string could not be parsed.
    #[error("cannot parse pruning windows '{spec}': {reason} (expected e.g. '1-3,45-48,91-93')")]
    WindowSpec { spec: String, reason: String },
    /// The CIFAR ResNet depth is not of the form 9n + 2.
    #[error(
        "unknown CIFAR ResNet depth {0}: bottleneck ResNets have depth 9n + 2 (20, 56, 110, ...)"
    )]
    Depth(usize),
    /// A score vector does not match the model's number of blocks.
    #[error("expected {expected} per-block scores, got {got}")]
    ScoreCount { expected: usize, got: usize },
    /// A score was negative, NaN or infinite.
    #[error("score of block {block} is not a finite non-negative number: {value}")]
    Score { block: usize, value: f64 },
    /// A block index was outside the model.
    #[error("block index {index} is outside the model's {blocks} blocks")]
    BlockIndex { index: usize, blocks: usize },
    /// The first block of a stage can never be skipped.
    #[error("block {index} is the first block of stage {stage} and cannot be skipped")]
    StageFirstBlock { index: usize, stage: usize },
    /// Any other invalid parameter.
    #[error("invalid parameter {name}: {reason}")]
    Parameter { name: &'static str, reason: String },
}

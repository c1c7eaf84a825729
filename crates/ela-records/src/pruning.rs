//! `pruning.json`: every pruning window's scores and decision, and the final skip mask.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// One block's entry in a pruning window record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockRecord {
    /// 0-based index over all blocks.
    pub index: usize,
    /// 0-based stage.
    pub stage: usize,
    /// 0-based position in the stage.
    pub position: usize,
    /// Averaged KL score D_t, or `null` (first block of a stage, already skipped).
    pub kl: Option<f64>,
    /// Min-max normalized score, where the method normalized it.
    pub normalized: Option<f64>,
    /// Mapped value, where the method mapped it.
    pub mapped: Option<f64>,
    /// Whether this decision skips the block.
    pub skip: bool,
    /// Whether the block is skipped after this decision (cumulative).
    pub skipped_after: bool,
}

/// One pruning window's measurement and decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowRecord {
    /// First epoch of the window (1-based).
    pub start: usize,
    /// Last epoch; the decision was applied after it.
    pub end: usize,
    /// Training batches whose scores were averaged.
    pub batches: usize,
    /// The method's quantile Q of the scores (EBQM only).
    pub quantile: Option<f64>,
    /// Per block.
    pub blocks: Vec<BlockRecord>,
    /// Blocks this decision skipped.
    pub newly_skipped: Vec<usize>,
    /// The cumulative skip mask after the decision.
    pub mask: Vec<bool>,
}

/// The whole `pruning.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PruningRecord {
    /// Decision method and its parameters.
    pub method: ela_prune::PruneMethod,
    /// KL direction.
    pub kl_direction: ela_prune::KlDirection,
    /// ε padding of the KL.
    pub eps: f64,
    /// Skip mode of the model.
    pub skip_mode: ela_prune::SkipMode,
    /// Blocks per stage.
    pub blocks_per_stage: Vec<usize>,
    /// The configured windows.
    pub schedule: String,
    /// One record per window whose decision was taken.
    pub windows: Vec<WindowRecord>,
    /// The skip mask at the end of the run.
    pub final_mask: Vec<bool>,
}

/// Reads `pruning.json`, naming the file in any error.
pub fn read_pruning(path: &Path) -> Result<PruningRecord> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid pruning record", path.display()))
}

//! `attention.json`: each stage's block × retrieved-block matrix of MRLA-B attention weights,
//! averaged over a validation pass (the paper's Figs. 4 and 5), one record per pass.
//!
//! Block t's weights `a_t` are a distribution over its stage memory. Which blocks that memory
//! holds depends on the skip mask and mode: in `full` mode a skipped block is not stored, in
//! `retrieval` mode it is. [`memory_blocks`] maps memory entries back to block positions, so the
//! matrices of runs with different masks line up column by column.

use std::path::Path;

use anyhow::{Context, Result};
use ela_prune::SkipMode;
use ela_prune::StageLayout;
use serde::{Deserialize, Serialize};

/// Per-epoch attention maps of layer-attention (MRLA-B, ELA) runs.
pub const ATTENTION_FILE: &str = "attention.json";

/// Reads `attention.json`, naming the file in any error.
pub fn read_attention(path: &Path) -> Result<Vec<AttentionRecord>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid attention log", path.display()))
}

/// One validation pass's mean attention weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttentionRecord {
    /// The 1-based epoch whose validation pass this is (before that epoch's pruning decision).
    pub epoch: usize,
    /// Blocks skipped during the pass (0-based, over all blocks).
    pub skipped: Vec<usize>,
    /// Per stage, one row per block of the stage: `None` where the block did not attend
    /// (skipped); otherwise one entry per block of the stage, the mean weight the row's block
    /// put on that block's memory entry, `None` where the entry was not in its memory.
    pub stages: Vec<Vec<Option<Vec<Option<f64>>>>>,
}

/// Stage positions whose entries make up the memory of the block at `position` of a stage, in
/// memory order. `skipped[j]` says whether the stage's block j is skipped.
pub fn memory_blocks(skipped: &[bool], position: usize, mode: SkipMode) -> Vec<usize> {
    (0..=position)
        .filter(|&j| j == position || mode == SkipMode::Retrieval || !skipped[j])
        .collect()
}

/// Places per-block memory weights into per-stage block × block rows.
pub fn lay_out(
    layout: &StageLayout,
    flags: &[bool],
    mode: SkipMode,
    epoch: usize,
    means: &[Option<Vec<f64>>],
) -> AttentionRecord {
    let mut stages = Vec::new();
    let mut first = 0;
    for &len in layout.blocks_per_stage() {
        let skipped = &flags[first..first + len];
        let rows = (0..len)
            .map(|p| {
                let weights = means.get(first + p)?.as_ref()?;
                let entries = memory_blocks(skipped, p, mode);
                if entries.len() != weights.len() {
                    return None;
                }
                let mut row = vec![None; len];
                for (j, w) in entries.into_iter().zip(weights) {
                    row[j] = Some(*w);
                }
                Some(row)
            })
            .collect();
        stages.push(rows);
        first += len;
    }
    AttentionRecord {
        epoch,
        skipped: (0..flags.len()).filter(|&i| flags[i]).collect(),
        stages,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_holds_skipped_blocks_only_in_retrieval_mode() {
        let skipped = [false, true, false, true, false];
        assert_eq!(memory_blocks(&skipped, 4, SkipMode::Full), vec![0, 2, 4]);
        assert_eq!(
            memory_blocks(&skipped, 4, SkipMode::Retrieval),
            vec![0, 1, 2, 3, 4]
        );
        assert_eq!(memory_blocks(&skipped, 0, SkipMode::Full), vec![0]);
    }

    #[test]
    fn weights_land_in_their_blocks_columns() {
        let layout = StageLayout::new(vec![3, 2]).unwrap();
        let flags = [false, true, false, false, false];
        let means = vec![
            Some(vec![1.0]),
            None,
            Some(vec![0.25, 0.75]),
            Some(vec![1.0]),
            Some(vec![0.5, 0.5]),
        ];
        let rec = lay_out(&layout, &flags, SkipMode::Full, 3, &means);
        assert_eq!(rec.skipped, vec![1]);
        assert_eq!(rec.stages[0][1], None);
        assert_eq!(rec.stages[0][2], Some(vec![Some(0.25), None, Some(0.75)]));
        assert_eq!(rec.stages[1][1], Some(vec![Some(0.5), Some(0.5)]));
        // A length that does not fit the mask is not placed at all.
        let rec = lay_out(&layout, &flags, SkipMode::Retrieval, 3, &means);
        assert_eq!(rec.stages[0][2], None);
    }
}

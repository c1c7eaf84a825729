//! Which blocks exist, which stage they belong to, and which are skipped.

use serde::{Deserialize, Serialize};

use crate::PruneError;

/// What a skipped ELA block still does (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipMode {
    /// The block's whole MRLA layer is removed: no query, no attention, and it is not stored in
    /// the stage memory (the paper's appendix B).
    #[default]
    Full,
    /// The block still computes and stores its key and value, so later blocks can retrieve its
    /// features; only its own retrieval is skipped.
    Retrieval,
}

impl std::fmt::Display for SkipMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Full => "full",
            Self::Retrieval => "retrieval",
        })
    }
}

impl std::str::FromStr for SkipMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full" => Ok(Self::Full),
            "retrieval" => Ok(Self::Retrieval),
            _ => Err(format!(
                "unknown skip mode '{s}' (expected full or retrieval)"
            )),
        }
    }
}

/// The block structure of a ResNet: how many attention-carrying blocks each stage has.
///
/// Blocks are numbered 0-based over the whole network, stage by stage. The layer-attention
/// memory resets at each stage, so only blocks of one stage can retrieve from each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageLayout {
    blocks_per_stage: Vec<usize>,
}

impl StageLayout {
    /// A layout from the number of blocks per stage. Every stage needs at least one block.
    pub fn new(blocks_per_stage: Vec<usize>) -> Result<Self, PruneError> {
        if blocks_per_stage.is_empty() || blocks_per_stage.contains(&0) {
            return Err(PruneError::Parameter {
                name: "blocks_per_stage",
                reason: format!("every stage needs at least one block, got {blocks_per_stage:?}"),
            });
        }
        Ok(Self { blocks_per_stage })
    }

    /// The CIFAR bottleneck ResNet-d layout (SPEC §1): 3 stages of n = (d − 2) / 9 blocks.
    pub fn cifar(depth: usize) -> Result<Self, PruneError> {
        if depth < 11 || !(depth - 2).is_multiple_of(9) {
            return Err(PruneError::Depth(depth));
        }
        let n = (depth - 2) / 9;
        Self::new(vec![n; 3])
    }

    /// Blocks per stage.
    pub fn blocks_per_stage(&self) -> &[usize] {
        &self.blocks_per_stage
    }

    /// Number of stages.
    pub fn num_stages(&self) -> usize {
        self.blocks_per_stage.len()
    }

    /// Total number of blocks.
    pub fn num_blocks(&self) -> usize {
        self.blocks_per_stage.iter().sum()
    }

    /// `(stage, position within stage)` of a global block index.
    pub fn locate(&self, index: usize) -> Option<(usize, usize)> {
        let mut start = 0;
        for (stage, &n) in self.blocks_per_stage.iter().enumerate() {
            if index < start + n {
                return Some((stage, index - start));
            }
            start += n;
        }
        None
    }

    /// Global index of the first block of each stage.
    pub fn stage_starts(&self) -> Vec<usize> {
        self.blocks_per_stage
            .iter()
            .scan(0, |start, &n| {
                let s = *start;
                *start += n;
                Some(s)
            })
            .collect()
    }

    /// Whether a block is the first of its stage (never skipped, never scored).
    pub fn is_stage_first(&self, index: usize) -> bool {
        matches!(self.locate(index), Some((_, 0)))
    }

    /// For every block, the nearest earlier *active* block of the same stage, if any.
    ///
    /// This is the block whose attention distribution a block's redundancy score compares
    /// against (SPEC §3.1). Skipped blocks have no predecessor entry (they are not scored).
    pub fn active_predecessors(&self, mask: &SkipMask) -> Vec<Option<usize>> {
        let mut out = vec![None; self.num_blocks()];
        for (start, &n) in self.stage_starts().iter().zip(&self.blocks_per_stage) {
            let mut last_active = None;
            for (index, slot) in out.iter_mut().enumerate().skip(*start).take(n) {
                if mask.is_skipped(index) {
                    continue;
                }
                *slot = last_active;
                last_active = Some(index);
            }
        }
        out
    }
}

/// Per-block skip flags, cumulative: once a block is skipped it stays skipped (SPEC §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipMask {
    skipped: Vec<bool>,
}

impl SkipMask {
    /// A mask with no block skipped.
    pub fn none(num_blocks: usize) -> Self {
        Self {
            skipped: vec![false; num_blocks],
        }
    }

    /// A mask from explicit flags, checked against the layout: never a stage's first block.
    pub fn from_flags(layout: &StageLayout, flags: Vec<bool>) -> Result<Self, PruneError> {
        if flags.len() != layout.num_blocks() {
            return Err(PruneError::ScoreCount {
                expected: layout.num_blocks(),
                got: flags.len(),
            });
        }
        let mut mask = Self::none(flags.len());
        let skipped: Vec<usize> = flags
            .iter()
            .enumerate()
            .filter_map(|(i, &s)| s.then_some(i))
            .collect();
        mask.skip(layout, &skipped)?;
        Ok(mask)
    }

    /// A mask skipping the given block indices.
    pub fn from_indices(layout: &StageLayout, indices: &[usize]) -> Result<Self, PruneError> {
        let mut mask = Self::none(layout.num_blocks());
        mask.skip(layout, indices)?;
        Ok(mask)
    }

    /// Marks blocks as skipped (cumulatively). Rejects indices outside the model and
    /// first-of-stage blocks; on error nothing is changed.
    pub fn skip(&mut self, layout: &StageLayout, indices: &[usize]) -> Result<(), PruneError> {
        for &index in indices {
            match layout.locate(index) {
                None => {
                    return Err(PruneError::BlockIndex {
                        index,
                        blocks: layout.num_blocks(),
                    });
                }
                Some((stage, 0)) => return Err(PruneError::StageFirstBlock { index, stage }),
                Some(_) => {}
            }
        }
        for &index in indices {
            self.skipped[index] = true;
        }
        Ok(())
    }

    /// Whether block `index` is skipped.
    pub fn is_skipped(&self, index: usize) -> bool {
        self.skipped.get(index).copied().unwrap_or(false)
    }

    /// The flags, one per block.
    pub fn flags(&self) -> &[bool] {
        &self.skipped
    }

    /// Indices of the skipped blocks, ascending.
    pub fn skipped_indices(&self) -> Vec<usize> {
        self.skipped
            .iter()
            .enumerate()
            .filter_map(|(i, &s)| s.then_some(i))
            .collect()
    }

    /// Number of skipped blocks.
    pub fn count(&self) -> usize {
        self.skipped.iter().filter(|&&s| s).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cifar_depths_map_to_blocks_per_stage() {
        assert_eq!(
            StageLayout::cifar(20).unwrap().blocks_per_stage(),
            &[2, 2, 2]
        );
        assert_eq!(
            StageLayout::cifar(56).unwrap().blocks_per_stage(),
            &[6, 6, 6]
        );
        assert_eq!(StageLayout::cifar(110).unwrap().num_blocks(), 36);
        for bad in [0, 2, 18, 21, 50] {
            assert_eq!(StageLayout::cifar(bad), Err(PruneError::Depth(bad)));
        }
    }

    #[test]
    fn predecessors_jump_over_skipped_blocks_and_reset_per_stage() {
        let layout = StageLayout::new(vec![4, 3]).unwrap();
        let mask = SkipMask::from_indices(&layout, &[1, 2, 5]).unwrap();
        let pred = layout.active_predecessors(&mask);
        assert_eq!(pred, vec![None, None, None, Some(0), None, None, Some(4)]);
    }

    #[test]
    fn first_block_of_a_stage_is_never_skipped() {
        let layout = StageLayout::cifar(20).unwrap();
        let mut mask = SkipMask::none(6);
        let err = mask.skip(&layout, &[1, 2]).unwrap_err();
        assert_eq!(err, PruneError::StageFirstBlock { index: 2, stage: 1 });
        assert_eq!(mask.count(), 0, "a rejected request changes nothing");
        assert!(matches!(
            mask.skip(&layout, &[6]),
            Err(PruneError::BlockIndex {
                index: 6,
                blocks: 6
            })
        ));
        mask.skip(&layout, &[1, 5]).unwrap();
        mask.skip(&layout, &[3]).unwrap();
        assert_eq!(mask.skipped_indices(), vec![1, 3, 5], "skips accumulate");
    }
}

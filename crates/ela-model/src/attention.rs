//! Which attention a ResNet uses (layer attention or one of the paper's baselines), and ELA's
//! skip flags.

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

/// The attention a ResNet's blocks use: layer attention (SPEC §2) or one of the paper's
/// channel/spatial baselines ([`crate::baselines`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionKind {
    /// Plain ResNet.
    #[default]
    None,
    /// MRLA-B: each block retrieves from the keys and values of all earlier blocks of its
    /// stage; the attention ELA prunes.
    MrlaB,
    /// MRLA-L: the light recurrence `o_t = σ(q·k)·v_t + λ_t ⊙ o_{t−1}`.
    MrlaL,
    /// Squeeze-and-Excitation in every block (r = 16).
    Se,
    /// Efficient Channel Attention in every block (adaptive kernel).
    Eca,
    /// CBAM (channel + 7×7 spatial) in every block (r = 16).
    Cbam,
    /// BAM after every stage but the last (r = 16, dilation 4), as the BAM paper places it.
    Bam,
    /// BAM on the residual branch of every block: the placement whose parameter counts match
    /// the ELA paper's Table 1.
    BamBlock,
    /// Global Context block in every block (r = 16).
    Gc,
    /// DIA: one LSTM cell shared by the blocks of each stage (r = 4).
    Dia,
    /// RLA: a 32-channel recurrent state carried across every block (Zhao et al. 2021).
    Rla,
    /// One non-local block after the second-to-last block of the third stage (Wang et al.
    /// 2018, the "+1NL" of the detection baselines).
    Nl,
}

/// Every [`AttentionKind`], in the order the CLI lists them.
pub const ALL_ATTENTION: [AttentionKind; 12] = [
    AttentionKind::None,
    AttentionKind::MrlaB,
    AttentionKind::MrlaL,
    AttentionKind::Se,
    AttentionKind::Eca,
    AttentionKind::Cbam,
    AttentionKind::Bam,
    AttentionKind::BamBlock,
    AttentionKind::Gc,
    AttentionKind::Dia,
    AttentionKind::Rla,
    AttentionKind::Nl,
];

impl AttentionKind {
    /// The name used on the command line and in files: `none`, `mrla-b`, `mrla-l`, `se`,
    /// `eca`, `cbam`, `bam`, `bam-block`, `gc`, `dia`, `rla`, `nl`.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::MrlaB => "mrla-b",
            Self::MrlaL => "mrla-l",
            Self::Se => "se",
            Self::Eca => "eca",
            Self::Cbam => "cbam",
            Self::Bam => "bam",
            Self::BamBlock => "bam-block",
            Self::Gc => "gc",
            Self::Dia => "dia",
            Self::Rla => "rla",
            Self::Nl => "nl",
        }
    }

    /// MRLA-B or MRLA-L: blocks carry an `mrla` module and a `bn_mrla`.
    pub fn is_layer_attention(self) -> bool {
        matches!(self, Self::MrlaB | Self::MrlaL)
    }
}

impl std::fmt::Display for AttentionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for AttentionKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL_ATTENTION
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = ALL_ATTENTION.iter().map(|a| a.name()).collect();
                format!(
                    "unknown attention '{s}' (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// Per-block skip flags shared by every clone of a model.
///
/// Burn's `Learner` keeps its model private and hands out clones, so the flags live behind a
/// shared handle: a pruning step that sets them on any clone (the learner's, its validation
/// copy) changes what the next forward pass of all of them computes, while parameters,
/// optimizer state and learning-rate schedule stay untouched. Use
/// [`ElaResNet::with_own_skip_flags`](crate::ElaResNet::with_own_skip_flags) for a copy that must
/// not follow the original (an EMA model, a comparison).
#[derive(Debug, Clone, Default)]
pub struct SkipFlags {
    flags: Arc<RwLock<Vec<bool>>>,
}

impl SkipFlags {
    /// `num_blocks` flags, none set.
    pub fn new(num_blocks: usize) -> Self {
        Self {
            flags: Arc::new(RwLock::new(vec![false; num_blocks])),
        }
    }

    /// A copy of the current flags.
    pub fn get(&self) -> Vec<bool> {
        self.flags.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set(&self, flags: Vec<bool>) {
        *self.flags.write().unwrap_or_else(|e| e.into_inner()) = flags;
    }

    /// A handle with the same flags that no longer shares them with this one.
    pub fn detached(&self) -> Self {
        Self {
            flags: Arc::new(RwLock::new(self.get())),
        }
    }
}

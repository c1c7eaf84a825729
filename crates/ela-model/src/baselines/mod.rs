//! The paper's channel/spatial attention baselines (ELA paper, Tables 1 and 2), as options of the
//! same [`AttentionKind`](crate::AttentionKind) the ResNets take:
//!
//! | module | paper | where in the ResNet |
//! |---|---|---|
//! | [`SqueezeExcitation`] | Hu et al., CVPR 2018 | residual branch of every block, before the add |
//! | [`EfficientChannelAttention`] | Wang et al., CVPR 2020 | same |
//! | [`Cbam`] | Woo et al., ECCV 2018 | same |
//! | [`GlobalContext`] | Cao et al., ICCVW 2019 | same |
//! | [`Bam`] | Park et al., BMVC 2018 | after every stage but the last (`bam`), or on the residual branch of every block (`bam-block`) |
//! | [`DiaCell`] | Huang et al., AAAI 2020 | one cell shared by the blocks of a stage |
//! | [`RlaStage`] | Zhao et al., NeurIPS 2021 | a hidden state carried across every block; each stage's convolutions shared by its blocks |
//! | [`NonLocal`] | Wang et al., CVPR 2018 | one block, after the second-to-last block of the third stage |
//!
//! Each file cites the equations it implements. All of them take and return `[B, C, H, W]`.

mod bam;
mod cbam;
mod dia;
mod eca;
mod gc;
mod nonlocal;
mod rla;
mod se;

pub use bam::{Bam, BamConfig};
pub use cbam::{Cbam, CbamConfig};
pub use dia::{DiaCell, DiaCellConfig};
pub use eca::{EfficientChannelAttention, EfficientChannelAttentionConfig};
pub use gc::{GlobalContext, GlobalContextConfig};
pub use nonlocal::{NonLocal, NonLocalConfig};
pub use rla::{RLA_CHANNELS, RlaStage, RlaStageConfig, pool_state};
pub use se::{SqueezeExcitation, SqueezeExcitationConfig};

use burn::prelude::*;

/// Global average pooling, `[B, C, H, W]` → `[B, C]`.
pub(crate) fn global_avg(x: Tensor<4>) -> Tensor<2> {
    let [batch, channels, _, _] = x.dims();
    x.mean_dim(3).mean_dim(2).reshape([batch, channels])
}

/// Global max pooling, `[B, C, H, W]` → `[B, C]`.
pub(crate) fn global_max(x: Tensor<4>) -> Tensor<2> {
    let [batch, channels, _, _] = x.dims();
    x.max_dim(3).max_dim(2).reshape([batch, channels])
}

/// `[B, C]` → `[B, C, 1, 1]`, to scale a feature map channel-wise.
pub(crate) fn per_channel(x: Tensor<2>) -> Tensor<4> {
    let [batch, channels] = x.dims();
    x.reshape([batch, channels, 1, 1])
}

/// The hidden width `C / r` of a reduction MLP, at least 1.
pub(crate) fn reduced(channels: usize, reduction: usize) -> usize {
    (channels / reduction.max(1)).max(1)
}

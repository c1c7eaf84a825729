//! Recurrent Layer Aggregation (Zhao, Fang, Liu, Lin, Li, "Recurrence along Depth: Deep
//! Convolutional Neural Networks with Recurrent Layer Aggregation", NeurIPS 2021, arXiv
//! 2110.11852).
//!
//! RLA keeps one hidden state `h` of `k` channels (k = 32) beside the main stream, carried across
//! every block of the network (the paper's Eq. (6) and Fig. 3, RLA-ResNet):
//! - block t reads `[x_{t−1}; h_{t−1}]` (its first 1 × 1 convolution has `k` more input
//!   channels) and returns the usual `x_t = ReLU(y_t + shortcut(x_{t−1}))`, where `y_t` is its
//!   residual branch;
//! - the state is updated from the branch: `h_t = conv3×3(tanh(BN_t(h_{t−1} + conv1×1(y_t))))`
//!   (Eq. (6): `g` is the 1 × 1 convolution `C → k` shared by the blocks of a stage, the
//!   recurrent 3 × 3 convolution `k → k` is shared by the blocks of a stage too, and each block
//!   has its own BN);
//! - where a block downsamples (stride 2), `h` is average-pooled 2 × 2 first;
//! - `h` starts at zero after the stem; the classifier reads `[x; ReLU(BN(h))]` after the last
//!   stage (2048 + k features for ResNet-50).
//!
//! [`RlaStage`] holds one stage's shared convolutions and its blocks' BNs; the blocks take `h`
//! through [`ResBlock::branch_with_state`](crate::ResBlock::branch_with_state).

use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::prelude::*;
use burn::tensor::activation::tanh;

use crate::block::conv;

/// Channels of RLA-ResNet's hidden state.
pub const RLA_CHANNELS: usize = 32;

/// Configuration of one stage's [`RlaStage`].
#[derive(Config, Debug)]
pub struct RlaStageConfig {
    /// Output channels C of the stage's blocks.
    pub channels: usize,
    /// Blocks in the stage (one BN each).
    pub blocks: usize,
    /// Hidden state channels k.
    #[config(default = 32)]
    pub state: usize,
}

impl RlaStageConfig {
    /// Builds the stage's modules (He-normal convolutions, as the authors' code).
    pub fn init(&self, device: &Device) -> RlaStage {
        RlaStage {
            conv_out: conv([self.channels, self.state], 1, 1, device),
            recurrent: conv([self.state, self.state], 3, 1, device),
            norms: (0..self.blocks)
                .map(|_| BatchNormConfig::new(self.state).init(device))
                .collect(),
        }
    }
}

/// One stage's shared RLA convolutions and its blocks' BNs.
#[derive(Module, Debug)]
pub struct RlaStage {
    /// `g`: 1 × 1, C → k, no bias (shared by the stage's blocks).
    pub conv_out: Conv2d,
    /// The recurrent 3 × 3, k → k, no bias (shared by the stage's blocks).
    pub recurrent: Conv2d,
    /// One BN per block.
    pub norms: Vec<BatchNorm>,
}

impl RlaStage {
    /// The state after block `j` of the stage, from its residual branch `y` and the state it
    /// read (already pooled where the block downsamples).
    pub fn update(&self, j: usize, y: Tensor<4>, state: Tensor<4>) -> Tensor<4> {
        let h = self.norms[j].forward(state + self.conv_out.forward(y));
        self.recurrent.forward(tanh(h))
    }

    /// Channels of the state.
    pub fn state_channels(&self) -> usize {
        self.recurrent.weight.dims()[0]
    }
}

/// The 2 × 2 average pooling of the state where a block downsamples (ceil mode, so that it
/// matches a strided 3 × 3 convolution's output on odd sizes).
pub fn pool_state(state: Tensor<4>) -> Tensor<4> {
    let pool: AvgPool2d = AvgPool2dConfig::new([2, 2])
        .with_strides([2, 2])
        .with_ceil_mode(true)
        .with_count_include_pad(false)
        .init();
    pool.forward(state)
}

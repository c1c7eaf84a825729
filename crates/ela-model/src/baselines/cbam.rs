//! Convolutional Block Attention Module (Woo, Park, Lee, Kweon, "CBAM: Convolutional Block
//! Attention Module", ECCV 2018, arXiv 1807.06521).
//!
//! - Eq. (1): `F' = M_c(F) ⊗ F`, then `F'' = M_s(F') ⊗ F'` (channel first, then spatial);
//! - Eq. (2): `M_c(F) = σ(MLP(AvgPool(F)) + MLP(MaxPool(F)))`, one shared MLP
//!   C → C/r → C (ReLU, biases as `nn.Linear`), r = 16;
//! - Eq. (3): `M_s(F) = σ(f^{7×7}([AvgPool(F); MaxPool(F)]))`, pooling across channels. As the
//!   authors' code (`SpatialGate`), the 7×7 convolution has no bias and is followed by a
//!   one-channel BatchNorm, and the pooled maps are stacked as [max; mean].
//!
//! In a ResNet it refines the residual branch before the identity is added (the paper's Fig. 3).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};

use super::{global_avg, global_max, per_channel, reduced};

/// Configuration of a [`Cbam`].
#[derive(Config, Debug)]
pub struct CbamConfig {
    /// Channels C.
    pub channels: usize,
    /// Reduction ratio r of the channel MLP.
    #[config(default = 16)]
    pub reduction: usize,
    /// Kernel of the spatial convolution.
    #[config(default = 7)]
    pub spatial_kernel: usize,
}

impl CbamConfig {
    /// Builds the module (PyTorch's default initializations).
    pub fn init(&self, device: &Device) -> Cbam {
        let hidden = reduced(self.channels, self.reduction);
        let k = self.spatial_kernel;
        let pad = (k - 1) / 2;
        Cbam {
            fc1: LinearConfig::new(self.channels, hidden).init(device),
            fc2: LinearConfig::new(hidden, self.channels).init(device),
            spatial: Conv2dConfig::new([2, 1], [k, k])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_bias(false)
                .init(device),
            spatial_bn: BatchNormConfig::new(1).init(device),
        }
    }
}

/// CBAM: channel attention, then spatial attention.
#[derive(Module, Debug)]
pub struct Cbam {
    /// Shared MLP, C → C/r.
    pub fc1: Linear,
    /// Shared MLP, C/r → C.
    pub fc2: Linear,
    /// `f^{7×7}`: 2 → 1 channels.
    pub spatial: Conv2d,
    /// BatchNorm of the spatial logits.
    pub spatial_bn: BatchNorm,
}

impl Cbam {
    fn mlp(&self, x: Tensor<2>) -> Tensor<2> {
        self.fc2.forward(relu(self.fc1.forward(x)))
    }

    /// `M_c(F)`, `[B, C]`.
    pub fn channel_gates(&self, x: Tensor<4>) -> Tensor<2> {
        sigmoid(self.mlp(global_avg(x.clone())) + self.mlp(global_max(x)))
    }

    /// `M_s(F)`, `[B, 1, H, W]`.
    pub fn spatial_gates(&self, x: Tensor<4>) -> Tensor<4> {
        let pooled = Tensor::cat(vec![x.clone().max_dim(1), x.mean_dim(1)], 1);
        sigmoid(self.spatial_bn.forward(self.spatial.forward(pooled)))
    }

    /// `F''` of Eq. (1), same shape as `x`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = x.clone() * per_channel(self.channel_gates(x));
        x.clone() * self.spatial_gates(x)
    }
}

//! Bottleneck Attention Module (Park, Woo, Lee, Kweon, "BAM: Bottleneck Attention Module",
//! BMVC 2018, arXiv 1807.06514).
//!
//! - Eq. (1): `F' = F + F ⊗ M(F)`;
//! - Eq. (2): `M(F) = σ(M_c(F) + M_s(F))`, the two branches broadcast to `C × H × W`;
//! - Eq. (3), channel branch: an MLP C → C/r → C over the global average, with BatchNorm; as
//!   the authors' code (`ChannelGate`), the BatchNorm and ReLU follow the hidden layer;
//! - Eq. (4), spatial branch: 1×1 reduction C → C/r, two 3×3 convolutions of dilation 4, and a
//!   1×1 projection to one channel; BatchNorm and ReLU after each but the last (authors' code,
//!   `SpatialGate`). r = 16, dilation d = 4 as the paper.
//!
//! The BAM paper puts it at the network's bottlenecks, where the spatial size shrinks: in these
//! three-stage CIFAR ResNets, after stage 1 and after stage 2 (`AttentionKind::Bam`). The ELA
//! paper's Table 1 counts match BAM on the residual branch of every block instead
//! (`AttentionKind::BamBlock`; ResNet-20: 266,360 parameters = 0.27M as the table).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};

use super::{global_avg, per_channel, reduced};

/// Configuration of a [`Bam`].
#[derive(Config, Debug)]
pub struct BamConfig {
    /// Channels C.
    pub channels: usize,
    /// Reduction ratio r of both branches.
    #[config(default = 16)]
    pub reduction: usize,
    /// Dilation d of the spatial 3×3 convolutions.
    #[config(default = 4)]
    pub dilation: usize,
}

impl BamConfig {
    /// Builds the module (PyTorch's default initializations).
    pub fn init(&self, device: &Device) -> Bam {
        let c = self.channels;
        let hidden = reduced(c, self.reduction);
        let d = self.dilation;
        let dilated = || {
            Conv2dConfig::new([hidden, hidden], [3, 3])
                .with_dilation([d, d])
                .with_padding(PaddingConfig2d::Explicit(d, d, d, d))
                .init(device)
        };
        let bn = |n| BatchNormConfig::new(n).init(device);
        Bam {
            channel_fc1: LinearConfig::new(c, hidden).init(device),
            channel_bn: bn(hidden),
            channel_fc2: LinearConfig::new(hidden, c).init(device),
            spatial_reduce: Conv2dConfig::new([c, hidden], [1, 1]).init(device),
            spatial_bn_reduce: bn(hidden),
            spatial_dilated1: dilated(),
            spatial_bn1: bn(hidden),
            spatial_dilated2: dilated(),
            spatial_bn2: bn(hidden),
            spatial_final: Conv2dConfig::new([hidden, 1], [1, 1]).init(device),
        }
    }
}

/// BAM: parallel channel and spatial branches, a residual attention map.
#[derive(Module, Debug)]
pub struct Bam {
    /// Channel MLP, C → C/r.
    pub channel_fc1: Linear,
    /// BatchNorm of the hidden layer.
    pub channel_bn: BatchNorm,
    /// Channel MLP, C/r → C.
    pub channel_fc2: Linear,
    /// Spatial 1×1 reduction, C → C/r.
    pub spatial_reduce: Conv2d,
    /// BatchNorm after the reduction.
    pub spatial_bn_reduce: BatchNorm,
    /// First dilated 3×3 convolution.
    pub spatial_dilated1: Conv2d,
    /// BatchNorm after it.
    pub spatial_bn1: BatchNorm,
    /// Second dilated 3×3 convolution.
    pub spatial_dilated2: Conv2d,
    /// BatchNorm after it.
    pub spatial_bn2: BatchNorm,
    /// Spatial 1×1 projection, C/r → 1.
    pub spatial_final: Conv2d,
}

impl Bam {
    /// Every BatchNorm of the module.
    pub fn batch_norms(&self) -> [&BatchNorm; 4] {
        [
            &self.channel_bn,
            &self.spatial_bn_reduce,
            &self.spatial_bn1,
            &self.spatial_bn2,
        ]
    }

    /// `M_c(F)`, `[B, C, 1, 1]`.
    pub fn channel_branch(&self, x: Tensor<4>) -> Tensor<4> {
        let h = self.channel_fc1.forward(global_avg(x));
        let [batch, hidden] = h.dims();
        // BatchNorm1d over [B, C/r] is BatchNorm over [B, C/r, 1].
        let h = self.channel_bn.forward(h.reshape([batch, hidden, 1]));
        per_channel(self.channel_fc2.forward(relu(h).reshape([batch, hidden])))
    }

    /// `M_s(F)`, `[B, 1, H, W]`.
    pub fn spatial_branch(&self, x: Tensor<4>) -> Tensor<4> {
        let h = relu(
            self.spatial_bn_reduce
                .forward(self.spatial_reduce.forward(x)),
        );
        let h = relu(self.spatial_bn1.forward(self.spatial_dilated1.forward(h)));
        let h = relu(self.spatial_bn2.forward(self.spatial_dilated2.forward(h)));
        self.spatial_final.forward(h)
    }

    /// `F'` of Eq. (1), same shape as `x`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let m = sigmoid(self.channel_branch(x.clone()) + self.spatial_branch(x.clone()));
        x.clone() + x * m
    }
}

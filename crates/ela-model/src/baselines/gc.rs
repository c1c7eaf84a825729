//! Global Context block (Cao, Xu, Lin, Wei, Hu, "GCNet: Non-local Networks Meet
//! Squeeze-Excitation Networks and Beyond", ICCV Workshops 2019, arXiv 1904.11492).
//!
//! Eq. (4), the GC block:
//! `z_i = x_i + W_v2 ReLU(LN(W_v1 Σ_j (e^{W_k x_j} / Σ_m e^{W_k x_m}) x_j))`:
//! - context modelling: a 1×1 convolution `W_k` (C → 1) and a softmax over all H·W positions
//!   pool the feature map into one context vector;
//! - transform: 1×1 convolutions `W_v1` (C → C/r) and `W_v2` (C/r → C) with LayerNorm and ReLU
//!   between them, r = 16;
//! - fusion: broadcast addition to every position.
//!
//! As the authors' code, `W_v2` starts at zero, so a new block is the identity. In a ResNet the
//! block follows the last BN of the residual branch, before the identity is added.

use burn::module::Initializer;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::prelude::*;
use burn::tensor::activation::{relu, softmax};

use super::{per_channel, reduced};

/// Configuration of a [`GlobalContext`].
#[derive(Config, Debug)]
pub struct GlobalContextConfig {
    /// Channels C.
    pub channels: usize,
    /// Reduction ratio r of the transform.
    #[config(default = 16)]
    pub reduction: usize,
}

impl GlobalContextConfig {
    /// Builds the module: He (fan-in) initialization of `W_k`, PyTorch's default of `W_v1`, and
    /// zeros in `W_v2`.
    pub fn init(&self, device: &Device) -> GlobalContext {
        let c = self.channels;
        let hidden = reduced(c, self.reduction);
        GlobalContext {
            conv_mask: Conv2dConfig::new([c, 1], [1, 1])
                .with_initializer(Initializer::KaimingNormal {
                    gain: 2f64.sqrt(),
                    fan_out_only: false,
                })
                .init(device),
            transform1: Conv2dConfig::new([c, hidden], [1, 1]).init(device),
            norm: LayerNormConfig::new(hidden).init(device),
            transform2: Conv2dConfig::new([hidden, c], [1, 1])
                .with_initializer(Initializer::Zeros)
                .init(device),
        }
    }
}

/// GC block: softmax-pooled global context, bottleneck transform, added at every position.
#[derive(Module, Debug)]
pub struct GlobalContext {
    /// `W_k`: C → 1.
    pub conv_mask: Conv2d,
    /// `W_v1`: C → C/r.
    pub transform1: Conv2d,
    /// LayerNorm over the C/r channels of the context.
    pub norm: LayerNorm,
    /// `W_v2`: C/r → C.
    pub transform2: Conv2d,
}

impl GlobalContext {
    /// The context vector `Σ_j softmax(W_k x)_j x_j`, `[B, C]`.
    pub fn context(&self, x: Tensor<4>) -> Tensor<2> {
        let [batch, channels, height, width] = x.dims();
        let positions = height * width;
        let logits = self
            .conv_mask
            .forward(x.clone())
            .reshape([batch, positions, 1]);
        let weights = softmax(logits, 1);
        x.reshape([batch, channels, positions])
            .matmul(weights)
            .reshape([batch, channels])
    }

    /// The transformed context `W_v2 ReLU(LN(W_v1 c))`, `[B, C]`.
    pub fn transform(&self, context: Tensor<2>) -> Tensor<2> {
        let [batch, _] = context.dims();
        let t = self.transform1.forward(per_channel(context));
        let hidden = t.dims()[1];
        let t = relu(self.norm.forward(t.reshape([batch, hidden])));
        let t = self.transform2.forward(per_channel(t));
        let channels = t.dims()[1];
        t.reshape([batch, channels])
    }

    /// `z` of Eq. (4), same shape as `x`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let term = self.transform(self.context(x.clone()));
        x + per_channel(term)
    }
}

//! Efficient Channel Attention (Wang, Wu, Zhu, Li, Zuo, Hu, "ECA-Net: Efficient Channel
//! Attention for Deep Convolutional Neural Networks", CVPR 2020, arXiv 1910.03151).
//!
//! - Eq. (7): `ω = σ(C1D_k(y))`, a 1-D convolution of kernel k (no bias) across the channels of
//!   the global average `y`;
//! - Eq. (12): the adaptive kernel `k = ψ(C) = |log2(C)/γ + b/γ|_odd` with γ = 2, b = 1 — the
//!   same rule as MRLA's query/key kernel ([`crate::mrla::adaptive_kernel`]).
//!
//! In a ResNet it rescales the residual branch before the identity is added, as SE.

use burn::nn::PaddingConfig1d;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use super::{global_avg, per_channel};
use crate::mrla::adaptive_kernel;

/// Configuration of an [`EfficientChannelAttention`].
#[derive(Config, Debug)]
pub struct EfficientChannelAttentionConfig {
    /// Channels C.
    pub channels: usize,
    /// Kernel size; `None` picks ψ(C) of Eq. (12).
    #[config(default = "None")]
    pub kernel_size: Option<usize>,
}

impl EfficientChannelAttentionConfig {
    /// Builds the module (PyTorch's default `nn.Conv1d` initialization).
    pub fn init(&self, device: &Device) -> EfficientChannelAttention {
        let k = self
            .kernel_size
            .unwrap_or_else(|| adaptive_kernel(self.channels));
        EfficientChannelAttention {
            conv: Conv1dConfig::new(1, 1, k)
                .with_padding(PaddingConfig1d::Explicit((k - 1) / 2, (k - 1) / 2))
                .with_bias(false)
                .init(device),
        }
    }
}

/// ECA block: channel gates from a k-wide 1-D convolution over the global average.
#[derive(Module, Debug)]
pub struct EfficientChannelAttention {
    /// `C1D_k`, weight `[1, 1, k]`.
    pub conv: Conv1d,
}

impl EfficientChannelAttention {
    /// The channel gates `ω`, `[B, C]`.
    pub fn gates(&self, x: Tensor<4>) -> Tensor<2> {
        let y = global_avg(x);
        let [batch, channels] = y.dims();
        let w = self.conv.forward(y.reshape([batch, 1, channels]));
        sigmoid(w.reshape([batch, channels]))
    }

    /// `x · ω`, same shape as `x`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let w = self.gates(x.clone());
        x * per_channel(w)
    }
}

//! Parameter initializers of the detection layers (MMDetection 2.x's `init_cfg`s): Xavier-uniform
//! convolutions and FCs with zero bias (FPN, shared FCs), N(0, σ²) heads with zero bias (RPN
//! convolutions σ = 0.01, classifier σ = 0.01, box regressor σ = 0.001), He-normal fan-out
//! mask branch.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;

/// How a layer's weight is drawn; its bias is always zero.
#[derive(Debug, Clone, Copy)]
pub enum Init {
    /// Xavier uniform (gain 1).
    Xavier,
    /// Normal with mean 0 and this standard deviation.
    Normal(f64),
    /// He-normal for ReLU, fan-out (`kaiming_normal_(mode="fan_out", nonlinearity="relu")`:
    /// the mask branch).
    KaimingFanOut,
}

impl Init {
    pub(crate) fn initializer(self) -> Initializer {
        match self {
            Init::Xavier => Initializer::XavierUniform { gain: 1.0 },
            Init::Normal(std) => Initializer::Normal { mean: 0.0, std },
            Init::KaimingFanOut => Initializer::KaimingNormal {
                gain: 2f64.sqrt(),
                fan_out_only: true,
            },
        }
    }
}

/// A `k × k` convolution (stride 1, "same" padding) with bias.
pub fn conv(channels: [usize; 2], kernel: usize, init: Init, device: &Device) -> Conv2d {
    let pad = kernel / 2;
    let mut conv = Conv2dConfig::new(channels, [kernel, kernel])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_initializer(init.initializer())
        .init(device);
    conv.bias = Some(Initializer::Zeros.init([channels[1]], device));
    conv
}

/// A fully connected layer with bias.
pub fn linear(input: usize, output: usize, init: Init, device: &Device) -> Linear {
    let mut fc = LinearConfig::new(input, output)
        .with_initializer(init.initializer())
        .init(device);
    fc.bias = Some(Initializer::Zeros.init([output], device));
    fc
}

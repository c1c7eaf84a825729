//! The non-local block (Wang, Girshick, Gupta, He, "Non-local Neural Networks", CVPR 2018, arXiv
//! 1711.07971), embedded-Gaussian form, as the detection baselines of Table 5 place it.
//!
//! - `z = x + W_z(y)`, `y_i = Σ_j softmax_j(θ(x_i)ᵀ φ(x_j) / √C') g(x_j)` (Eqs. (1), (3) and
//!   (6)), with θ, φ, g and `W_z` 1 × 1 convolutions with bias, `C' = C / 2`; the `1/√C'` scale
//!   is MMCV's `NonLocal2d(use_scale=True)`, which the MMDetection NL baselines use; `W_z`
//!   starts at zero so that the block starts as the identity (the paper's Sec. 4.1);
//! - one block in the ResNet, "right before the last residual block of res4" (the paper's
//!   Sec. 5, COCO), i.e. on the output of the second-to-last block of the third stage (the GCNet
//!   paper's "+1NL" row, whose count Table 5 reports).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::softmax;

/// Configuration of a [`NonLocal`] block.
#[derive(Config, Debug)]
pub struct NonLocalConfig {
    /// Channels C.
    pub channels: usize,
    /// `C' = C / reduction`.
    #[config(default = 2)]
    pub reduction: usize,
}

impl NonLocalConfig {
    /// Builds the block: θ, φ, g drawn N(0, 0.01²) (MMCV's `normal_init`), `W_z` zero.
    pub fn init(&self, device: &Device) -> NonLocal {
        let c = self.channels;
        let inner = (c / self.reduction.max(1)).max(1);
        let conv = |i: usize, o: usize, init: Initializer| {
            Conv2dConfig::new([i, o], [1, 1])
                .with_padding(PaddingConfig2d::Valid)
                .with_initializer(init)
                .init(device)
        };
        let normal = Initializer::Normal {
            mean: 0.0,
            std: 0.01,
        };
        let mut out = conv(inner, c, Initializer::Zeros);
        out.bias = Some(Initializer::Zeros.init([c], device));
        let zero_bias = |mut c: Conv2d| {
            c.bias = Some(Initializer::Zeros.init([inner], device));
            c
        };
        NonLocal {
            g: zero_bias(conv(c, inner, normal.clone())),
            theta: zero_bias(conv(c, inner, normal.clone())),
            phi: zero_bias(conv(c, inner, normal)),
            out,
        }
    }
}

/// An embedded-Gaussian non-local block.
#[derive(Module, Debug)]
pub struct NonLocal {
    /// `g`: C → C'.
    pub g: Conv2d,
    /// `θ`: C → C'.
    pub theta: Conv2d,
    /// `φ`: C → C'.
    pub phi: Conv2d,
    /// `W_z`: C' → C.
    pub out: Conv2d,
}

impl NonLocal {
    /// `x + W_z(y)`.
    ///
    /// # Shapes
    /// - x: `[B, C, H, W]` → same
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, _, h, w] = x.dims();
        let inner = self.theta.weight.dims()[0];
        let n = h * w;
        // [B, C', N] each.
        let flat = |t: Tensor<4>| t.reshape([b, inner, n]);
        let theta = flat(self.theta.forward(x.clone())).swap_dims(1, 2); // [B, N, C']
        let phi = flat(self.phi.forward(x.clone())); // [B, C', N]
        let g = flat(self.g.forward(x.clone())).swap_dims(1, 2); // [B, N, C']
        let pairwise = softmax(theta.matmul(phi) / (inner as f64).sqrt(), 2); // [B, N, N]
        let y = pairwise.matmul(g).swap_dims(1, 2).reshape([b, inner, h, w]);
        x + self.out.forward(y)
    }
}

//! Squeeze-and-Excitation (Hu, Shen, Sun, "Squeeze-and-Excitation Networks", CVPR 2018,
//! arXiv 1709.01507).
//!
//! - squeeze, Eq. (2): `z_c = 1/(HW) Σ_ij u_c(i, j)`;
//! - excitation, Eq. (3): `s = σ(W_2 δ(W_1 z))`, `W_1 ∈ R^{C/r × C}`, `W_2 ∈ R^{C × C/r}`, with
//!   biases as in the reference implementation (`nn.Linear`);
//! - scale, Eq. (4): `x̃_c = s_c · u_c`.
//!
//! In a ResNet it rescales the residual branch before the identity is added (the paper's
//! Fig. 3, SE-ResNet module). Reduction r = 16.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};

use super::{global_avg, per_channel, reduced};

/// Configuration of a [`SqueezeExcitation`].
#[derive(Config, Debug)]
pub struct SqueezeExcitationConfig {
    /// Channels C.
    pub channels: usize,
    /// Reduction ratio r.
    #[config(default = 16)]
    pub reduction: usize,
}

impl SqueezeExcitationConfig {
    /// Builds the module (PyTorch's default `nn.Linear` initialization).
    pub fn init(&self, device: &Device) -> SqueezeExcitation {
        let hidden = reduced(self.channels, self.reduction);
        SqueezeExcitation {
            fc1: LinearConfig::new(self.channels, hidden).init(device),
            fc2: LinearConfig::new(hidden, self.channels).init(device),
        }
    }
}

/// SE block: channel gates from a two-layer bottleneck MLP over the global average.
#[derive(Module, Debug)]
pub struct SqueezeExcitation {
    /// `W_1`: C → C/r.
    pub fc1: Linear,
    /// `W_2`: C/r → C.
    pub fc2: Linear,
}

impl SqueezeExcitation {
    /// The channel gates `s`, `[B, C]`.
    pub fn gates(&self, x: Tensor<4>) -> Tensor<2> {
        sigmoid(self.fc2.forward(relu(self.fc1.forward(global_avg(x)))))
    }

    /// `x · s`, same shape as `x`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let s = self.gates(x.clone());
        x * per_channel(s)
    }
}

//! Dense-and-Implicit Attention (Huang, Liang, Liang, Yang, "DIANet: Dense-and-Implicit
//! Attention Network", AAAI 2020, arXiv 1905.10671).
//!
//! One DIA unit is shared by all the blocks of a stage. At block t it reads the global average
//! `x_t` of the block's residual branch and updates a modified LSTM (the paper's Sec. 3, the
//! DIA-LSTM):
//! - `[i; f; g; o] = W_ih(x_t) + W_hh(h_{t−1})`, where each `W` is a reduction MLP
//!   `C → C/r → 4C` with ReLU (r = 4) instead of a single linear map;
//! - `c_t = σ(f) ⊙ c_{t−1} + σ(i) ⊙ tanh(g)`;
//! - `h_t = σ(o) ⊙ σ(c_t)` — a sigmoid, not tanh, on the cell, so that `h_t ∈ (0, 1)`;
//!
//! and `h_t` rescales the residual branch channel-wise before the identity is added. The state
//! starts at zero at each stage (as the authors' CIFAR code, `models/cifar/dia_resnet.py`).

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};

use super::{global_avg, per_channel, reduced};

/// Configuration of a [`DiaCell`].
#[derive(Config, Debug)]
pub struct DiaCellConfig {
    /// Channels C (input and hidden size).
    pub channels: usize,
    /// Reduction ratio r of the input and hidden MLPs.
    #[config(default = 4)]
    pub reduction: usize,
}

impl DiaCellConfig {
    /// Builds the cell (PyTorch's default `nn.Linear` initialization).
    pub fn init(&self, device: &Device) -> DiaCell {
        let c = self.channels;
        let hidden = reduced(c, self.reduction);
        DiaCell {
            ih1: LinearConfig::new(c, hidden).init(device),
            ih2: LinearConfig::new(hidden, 4 * c).init(device),
            hh1: LinearConfig::new(c, hidden).init(device),
            hh2: LinearConfig::new(hidden, 4 * c).init(device),
        }
    }
}

/// The DIA-LSTM cell of one stage.
#[derive(Module, Debug)]
pub struct DiaCell {
    /// Input MLP, C → C/r.
    pub ih1: Linear,
    /// Input MLP, C/r → 4C.
    pub ih2: Linear,
    /// Hidden MLP, C → C/r.
    pub hh1: Linear,
    /// Hidden MLP, C/r → 4C.
    pub hh2: Linear,
}

/// The recurrent state `(h, c)`, each `[B, C]`.
pub type DiaState = (Tensor<2>, Tensor<2>);

impl DiaCell {
    /// The zero state for a batch of `batch` on `device`.
    pub fn zero_state(&self, batch: usize, device: &Device) -> DiaState {
        let c = self.ih1.weight.dims()[0];
        (
            Tensor::zeros([batch, c], device),
            Tensor::zeros([batch, c], device),
        )
    }

    /// One LSTM step on the input `x` (`[B, C]`).
    pub fn step(&self, x: Tensor<2>, (h, c): DiaState) -> DiaState {
        let gates = self.ih2.forward(relu(self.ih1.forward(x)))
            + self.hh2.forward(relu(self.hh1.forward(h)));
        let [i, f, g, o]: [Tensor<2>; 4] = gates
            .chunk(4, 1)
            .try_into()
            .expect("4C gate channels split in four");
        let c = sigmoid(f) * c + sigmoid(i) * g.tanh();
        let h = sigmoid(o) * sigmoid(c.clone());
        (h, c)
    }

    /// Rescales a block's residual branch `u` by the updated `h`; returns it with the new state.
    pub fn forward(&self, u: Tensor<4>, state: DiaState) -> (Tensor<4>, DiaState) {
        let (h, c) = self.step(global_avg(u.clone()), state);
        (u * per_channel(h.clone()), (h, c))
    }
}

//! The MRLA layer-attention module (Fang et al., "Cross-Layer Retrospective Retrieving via Layer
//! Attention", ICLR 2023, arXiv 2302.03985; SPEC §2).
//!
//! Mirrors `resnet/models/modules/mrla_base_module.py` and `mrla_light_module.py` of the official
//! code: a global-average descriptor `y_t`, query and key by a 1→1-channel Conv1d of kernel
//! `k = odd(int(|log2(C) + 1| / 2))` over the channel axis, a depthwise 3×3 value, and
//! multi-head attention with `dim_per_head` channels per head.

use burn::module::{Initializer, Param};
use burn::nn::PaddingConfig1d;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv1d, Conv1dConfig, Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::activation::{sigmoid, softmax};

/// Configuration of a [`LayerAttention`].
#[derive(Config, Debug)]
pub struct LayerAttentionConfig {
    /// Channels C of the block output it attends over.
    pub channels: usize,
    /// Channels per head; C must be divisible by it.
    #[config(default = 16)]
    pub dim_per_head: usize,
    /// Conv1d kernel of query and key; `None` picks `odd(int(|log2(C) + 1| / 2))`.
    #[config(default = "None")]
    pub kernel_size: Option<usize>,
    /// Add MRLA-L's learnable per-channel `λ_t` (initialized N(0, 1)).
    #[config(default = false)]
    pub light: bool,
}

/// The ECA-style adaptive kernel of the official code: `t = int(|log2(C) + 1| / 2)`, rounded up
/// to odd.
pub fn adaptive_kernel(channels: usize) -> usize {
    let t = (((channels as f64).log2() + 1.0) / 2.0).abs() as usize;
    if t % 2 == 1 { t } else { t + 1 }
}

impl LayerAttentionConfig {
    /// Builds the module on `device`.
    ///
    /// # Panics
    /// If `channels` is not divisible by `dim_per_head`; [`crate::ElaResNetConfig`] checks this
    /// before building.
    pub fn init(&self, device: &Device) -> LayerAttention {
        assert!(
            self.dim_per_head > 0 && self.channels.is_multiple_of(self.dim_per_head),
            "channels {} not divisible by dim_per_head {}",
            self.channels,
            self.dim_per_head
        );
        let k = self
            .kernel_size
            .unwrap_or_else(|| adaptive_kernel(self.channels));
        let conv1d = || {
            Conv1dConfig::new(1, 1, k)
                .with_padding(PaddingConfig1d::Explicit((k - 1) / 2, (k - 1) / 2))
                .with_bias(false)
                .init(device)
        };
        let c = self.channels;
        let lambda_t = self.light.then(|| {
            Initializer::Normal {
                mean: 0.0,
                std: 1.0,
            }
            .init([c, 1, 1], device)
        });
        LayerAttention {
            wq: conv1d(),
            wk: conv1d(),
            // PyTorch's kaiming_normal_(mode='fan_out') of the official code: for a depthwise
            // weight [C, 1, 3, 3], fan_out = 9C.
            wv: Conv2dConfig::new([c, c], [3, 3])
                .with_groups(c)
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: (2.0 / (9 * c) as f64).sqrt(),
                })
                .init(device),
            lambda_t,
            heads: c / self.dim_per_head,
            dim_per_head: self.dim_per_head,
        }
    }
}

/// One block's layer attention: query/key projections of the block descriptor and a depthwise
/// value map.
#[derive(Module, Debug)]
pub struct LayerAttention {
    /// Query projection `Conv1d_k` (exported as `Wq`).
    pub wq: Conv1d,
    /// Key projection `Conv1d_k` (exported as `Wk`).
    pub wk: Conv1d,
    /// Depthwise 3×3 value convolution (exported as `Wv`).
    pub wv: Conv2d,
    /// MRLA-L's per-channel decay `λ_t`, shape `[C, 1, 1]`.
    pub lambda_t: Option<Param<Tensor<3>>>,
    /// Number of heads G = C / dim_per_head.
    pub heads: usize,
    /// Channels per head d.
    pub dim_per_head: usize,
}

impl LayerAttention {
    /// The global-average descriptor `y_t`.
    ///
    /// # Shapes
    /// - x: `[batch, C, H, W]` → `[batch, 1, C]`
    pub fn descriptor(&self, x: Tensor<4>) -> Tensor<3> {
        let [batch, channels, _, _] = x.dims();
        x.mean_dim(3).mean_dim(2).reshape([batch, 1, channels])
    }

    /// Key `k_t = Conv1d_k(y_t)`, `[batch, 1, C]`.
    pub fn key(&self, y: Tensor<3>) -> Tensor<3> {
        self.wk.forward(y)
    }

    /// Query `q_t = Conv1d_k(y_t)`, `[batch, 1, C]`.
    pub fn query(&self, y: Tensor<3>) -> Tensor<3> {
        self.wq.forward(y)
    }

    /// Value `v_t = DepthwiseConv3×3(x_t)`, `[batch, C, H, W]`.
    pub fn value(&self, x: Tensor<4>) -> Tensor<4> {
        self.wv.forward(x)
    }

    /// MRLA-B retrieval (SPEC §2): `a = softmax_i(<q^g, k_i^g> / √d)` per head and
    /// `o = Σ_i a_i · v_i` over the stage memory.
    ///
    /// # Shapes
    /// - query: `[batch, 1, C]`; keys: t × `[batch, 1, C]`; values: t × `[batch, C, H, W]`
    /// - output: (`[batch, C, H, W]`, attention weights `[batch, G, 1, t]`)
    pub fn retrieve(
        &self,
        query: Tensor<3>,
        keys: &[Tensor<3>],
        values: &[Tensor<4>],
    ) -> (Tensor<4>, Tensor<4>) {
        let [batch, channels, _, _] = values[0].dims();
        let (g, d, t) = (self.heads, self.dim_per_head, keys.len());
        let q = query.reshape([batch, 1, g, d]).swap_dims(1, 2); // [batch, G, 1, d]
        let k = Tensor::cat(keys.to_vec(), 1) // [batch, t, C]
            .reshape([batch, t, g, d])
            .swap_dims(1, 2); // [batch, G, t, d]
        let scores = q.matmul(k.swap_dims(2, 3)) / (d as f64).sqrt(); // [batch, G, 1, t]
        let attention = softmax(scores, 3);
        // o = Σ_i a_i · v_i as t broadcast multiply-adds on the value maps as they are: no
        // [batch, t, C, H, W] copy of the stage memory per block (forward), and no split of its
        // gradient back into the t maps (backward). Each head's weight is first spread over the
        // head's d channels (a [batch, C, t, 1] tensor, small) and cut into the t per-entry
        // weights [batch, C, 1, 1]; the sum is then one chain of rank-4 elementwise operations
        // on the maps, which the GPU backends fuse into one kernel (a reshape or a slice of the
        // maps inside the chain would end it).
        let weights = attention
            .clone()
            .reshape([batch, g, 1, t])
            .expand([batch, g, d, t])
            .reshape([batch, channels, t, 1])
            .chunk(t, 2);
        let mut out: Option<Tensor<4>> = None;
        for (v, weight) in values.iter().zip(weights) {
            let term = v.clone() * weight;
            out = Some(match out {
                Some(o) => o + term,
                None => term,
            });
        }
        let out = out.expect("a stage memory holds at least the block's own entry");
        (out, attention)
    }

    /// MRLA-L (SPEC §2): `o_t = σ(<q^g, k^g> / √d) · v_t + λ_t ⊙ o_{t−1}`, with `o_{t−1}` the
    /// block's (shortcut-projected) input, as in the official `resnet_mrla_light.py`.
    ///
    /// # Shapes
    /// - x, previous: `[batch, C, H, W]` → `[batch, C, H, W]`
    pub fn light(&self, x: Tensor<4>, previous: Tensor<4>) -> Tensor<4> {
        let [batch, channels, height, width] = x.dims();
        let (g, d) = (self.heads, self.dim_per_head);
        let y = self.descriptor(x.clone());
        let q = self.query(y.clone()).reshape([batch, g, 1, d]);
        let k = self.key(y).reshape([batch, g, d, 1]);
        let gate = sigmoid(q.matmul(k) / (d as f64).sqrt()).reshape([batch, g, 1, 1, 1]);
        let v = self.value(x).reshape([batch, g, d, height, width]);
        let attended = (v * gate).reshape([batch, channels, height, width]);
        match &self.lambda_t {
            Some(lambda) => attended + lambda.val().unsqueeze::<4>() * previous,
            None => attended,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_kernel_matches_the_official_rule() {
        // t = int(abs((log2(C) + 1) / 2)); k = t if t % 2 else t + 1
        assert_eq!(adaptive_kernel(64), 3);
        assert_eq!(adaptive_kernel(128), 5);
        assert_eq!(adaptive_kernel(256), 5);
        assert_eq!(adaptive_kernel(512), 5);
        assert_eq!(adaptive_kernel(2048), 7);
    }

    #[test]
    fn retrieval_weights_are_a_distribution_over_the_memory() {
        let device = Device::flex();
        let layer = LayerAttentionConfig::new(32)
            .with_dim_per_head(16)
            .init(&device);
        let x = |s: f64| {
            Tensor::<4>::random(
                [2, 32, 4, 4],
                burn::tensor::Distribution::Normal(s, 1.0),
                &device,
            )
        };
        let xs = [x(0.0), x(1.0), x(-1.0)];
        let keys: Vec<_> = xs
            .iter()
            .map(|x| layer.key(layer.descriptor(x.clone())))
            .collect();
        let values: Vec<_> = xs.iter().map(|x| layer.value(x.clone())).collect();
        let q = layer.query(layer.descriptor(xs[2].clone()));
        let (out, a) = layer.retrieve(q, &keys, &values);
        assert_eq!(out.dims(), [2, 32, 4, 4]);
        assert_eq!(a.dims(), [2, 2, 1, 3]);
        let sums: Vec<f32> = a
            .clone()
            .sum_dim(3)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5));
        // Head 0 of the output is the weighted sum of the head-0 channels of the values.
        let a: Vec<f32> = a.into_data().try_to_vec::<f32>().unwrap();
        let manual = values[0].clone().slice([0..1, 0..16]) * a[0] as f64
            + values[1].clone().slice([0..1, 0..16]) * a[1] as f64
            + values[2].clone().slice([0..1, 0..16]) * a[2] as f64;
        let diff: f32 = (out.slice([0..1, 0..16]) - manual)
            .abs()
            .max()
            .into_scalar();
        assert!(diff < 1e-5, "{diff}");
    }
}

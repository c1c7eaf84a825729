//! The CIFAR bottleneck block (SPEC §1) with an optional layer-attention module.
//!
//! Field names follow the PyTorch attributes of the official `MRLA_Bottleneck`
//! (`resnet/models/resnet_mrla_base.py`): `conv1..3`, `bn1..3`, `downsample`, `mrla`, `bn_mrla`.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::AttentionKind;
use crate::baselines::{
    Bam, BamConfig, Cbam, CbamConfig, EfficientChannelAttention, EfficientChannelAttentionConfig,
    GlobalContext, GlobalContextConfig, SqueezeExcitation, SqueezeExcitationConfig,
};
use crate::mrla::{LayerAttention, LayerAttentionConfig};

/// Output channels = 4 × base width.
pub const EXPANSION: usize = 4;

/// He-normal (fan-out) initialization of convolutions, as torchvision's ResNets.
fn conv(channels: [usize; 2], kernel: usize, stride: usize, device: &Device) -> Conv2d {
    let pad = kernel / 2;
    Conv2dConfig::new(channels, [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .with_initializer(Initializer::KaimingNormal {
            gain: 2f64.sqrt(),
            fan_out_only: true,
        })
        .init(device)
}

/// Projection shortcut: 1×1 convolution + BN (exported as `downsample.0` / `downsample.1`).
#[derive(Module, Debug)]
pub struct Downsample {
    /// 1×1 strided convolution.
    pub conv: Conv2d,
    /// Batch norm after it.
    pub bn: BatchNorm,
}

/// Bottleneck block: 1×1 → 3×3 (strided) → 1×1 (×4), residual add, ReLU, then layer attention.
#[derive(Module, Debug)]
pub struct Bottleneck {
    /// 1×1 reduction.
    pub conv1: Conv2d,
    /// BN after conv1.
    pub bn1: BatchNorm,
    /// 3×3, carries the stage's stride.
    pub conv2: Conv2d,
    /// BN after conv2.
    pub bn2: BatchNorm,
    /// 1×1 expansion.
    pub conv3: Conv2d,
    /// BN after conv3.
    pub bn3: BatchNorm,
    /// Projection shortcut wherever the shape changes.
    pub downsample: Option<Downsample>,
    /// Layer attention (MRLA-B or MRLA-L).
    pub mrla: Option<LayerAttention>,
    /// BN of the attention output.
    pub bn_mrla: Option<BatchNorm>,
    /// Squeeze-and-Excitation of the residual branch.
    pub se: Option<SqueezeExcitation>,
    /// ECA of the residual branch.
    pub eca: Option<EfficientChannelAttention>,
    /// CBAM of the residual branch.
    pub cbam: Option<Cbam>,
    /// Global Context block on the residual branch.
    pub gc: Option<GlobalContext>,
    /// BAM on the residual branch (`AttentionKind::BamBlock`).
    pub bam: Option<Bam>,
}

impl Bottleneck {
    /// A block from `in_channels` to `4 × width` channels.
    pub fn new(
        in_channels: usize,
        width: usize,
        stride: usize,
        attention: AttentionKind,
        dim_per_head: usize,
        zero_init_last_bn: bool,
        device: &Device,
    ) -> Self {
        let out = width * EXPANSION;
        let downsample = (stride != 1 || in_channels != out).then(|| Downsample {
            conv: conv([in_channels, out], 1, stride, device),
            bn: BatchNormConfig::new(out).init(device),
        });
        let mrla = attention.is_layer_attention().then(|| {
            LayerAttentionConfig::new(out)
                .with_dim_per_head(dim_per_head)
                .with_light(attention == AttentionKind::MrlaL)
                .init(device)
        });
        let when = |kind: AttentionKind| attention == kind;
        Self {
            conv1: conv([in_channels, width], 1, 1, device),
            bn1: BatchNormConfig::new(width).init(device),
            conv2: conv([width, width], 3, stride, device),
            bn2: BatchNormConfig::new(width).init(device),
            conv3: conv([width, out], 1, 1, device),
            bn3: {
                let mut bn3 = BatchNormConfig::new(out).init(device);
                if zero_init_last_bn {
                    bn3.gamma = Initializer::Zeros.init([out], device);
                }
                bn3
            },
            downsample,
            bn_mrla: mrla
                .as_ref()
                .map(|_| BatchNormConfig::new(out).init(device)),
            mrla,
            se: when(AttentionKind::Se).then(|| SqueezeExcitationConfig::new(out).init(device)),
            eca: when(AttentionKind::Eca)
                .then(|| EfficientChannelAttentionConfig::new(out).init(device)),
            cbam: when(AttentionKind::Cbam).then(|| CbamConfig::new(out).init(device)),
            gc: when(AttentionKind::Gc).then(|| GlobalContextConfig::new(out).init(device)),
            bam: when(AttentionKind::BamBlock).then(|| BamConfig::new(out).init(device)),
        }
    }

    /// The residual branch `bn3(conv3(…))`, refined by the block's SE, ECA, CBAM, GC or BAM
    /// module if it has one, and the shortcut.
    ///
    /// # Shapes
    /// - x: `[batch, C_in, H, W]` → (`[batch, 4·width, H/s, W/s]`, same)
    pub fn branch(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let out = relu(self.bn1.forward(self.conv1.forward(x.clone())));
        let out = relu(self.bn2.forward(self.conv2.forward(out)));
        let mut out = self.bn3.forward(self.conv3.forward(out));
        if let Some(se) = &self.se {
            out = se.forward(out);
        }
        if let Some(eca) = &self.eca {
            out = eca.forward(out);
        }
        if let Some(cbam) = &self.cbam {
            out = cbam.forward(out);
        }
        if let Some(gc) = &self.gc {
            out = gc.forward(out);
        }
        if let Some(bam) = &self.bam {
            out = bam.forward(out);
        }
        let identity = match &self.downsample {
            Some(ds) => ds.bn.forward(ds.conv.forward(x)),
            None => x,
        };
        (out, identity)
    }

    /// The residual part: `relu(branch + shortcut(x))`, and the shortcut itself (MRLA-L's
    /// `o_{t−1}`).
    ///
    /// # Shapes
    /// - x: `[batch, C_in, H, W]` → (`[batch, 4·width, H/s, W/s]`, same)
    pub fn residual(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let (out, identity) = self.branch(x);
        (relu(out + identity.clone()), identity)
    }

    /// Every BatchNorm of the block.
    pub fn batch_norms(&self) -> impl Iterator<Item = &BatchNorm> {
        [Some(&self.bn1), Some(&self.bn2), Some(&self.bn3)]
            .into_iter()
            .chain([
                self.downsample.as_ref().map(|d| &d.bn),
                self.bn_mrla.as_ref(),
                self.cbam.as_ref().map(|c| &c.spatial_bn),
            ])
            .flatten()
            .chain(self.bam.iter().flat_map(Bam::batch_norms))
    }

    /// MRLA-B's block output `x_t + ReLU(BN(o_t))`.
    pub fn add_retrieved(&self, x: Tensor<4>, retrieved: Tensor<4>) -> Tensor<4> {
        let bn = self
            .bn_mrla
            .as_ref()
            .expect("an attention block has bn_mrla");
        x + relu(bn.forward(retrieved))
    }

    /// MRLA-L's block output `x_t + BN(o_t)`.
    pub fn add_light(&self, x: Tensor<4>, identity: Tensor<4>) -> Tensor<4> {
        let mrla = self.mrla.as_ref().expect("an attention block has mrla");
        let bn = self
            .bn_mrla
            .as_ref()
            .expect("an attention block has bn_mrla");
        x.clone() + bn.forward(mrla.light(x, identity))
    }
}

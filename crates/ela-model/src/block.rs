//! The residual blocks (SPEC §1): the bottleneck (1×1 → 3×3 → 1×1, ×4) of the CIFAR and the
//! ImageNet ResNet-50/101/152, and the basic block (3×3 → 3×3) of ImageNet ResNet-18/34, each
//! with an optional attention module.
//!
//! Field names follow the PyTorch attributes of torchvision's `Bottleneck`/`BasicBlock` and of the
//! official `MRLA_Bottleneck` (`resnet/models/resnet_mrla_base.py`): `conv1..3`, `bn1..3`,
//! `downsample`, `mrla`, `bn_mrla`. A basic block has no `conv3`/`bn3`.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::AttentionKind;
use crate::baselines::{
    Bam, BamConfig, Cbam, CbamConfig, EfficientChannelAttention, EfficientChannelAttentionConfig,
    GlobalContext, GlobalContextConfig, NonLocal, NonLocalConfig, SqueezeExcitation,
    SqueezeExcitationConfig,
};
use crate::mrla::{LayerAttention, LayerAttentionConfig};

/// Output channels of a bottleneck = 4 × its planes.
pub const EXPANSION: usize = 4;

/// Which residual block a ResNet is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockKind {
    /// 3×3 (strided) → 3×3, output = planes (torchvision `BasicBlock`, ResNet-18/34).
    Basic,
    /// 1×1 → 3×3 (strided) → 1×1, output = 4 × planes (ResNet-50/101/152 and the CIFAR models).
    Bottleneck,
}

impl BlockKind {
    /// Output channels per plane.
    pub fn expansion(self) -> usize {
        match self {
            Self::Basic => 1,
            Self::Bottleneck => EXPANSION,
        }
    }
}

/// What one block is built from.
#[derive(Debug, Clone, Copy)]
pub struct BlockSpec {
    /// Basic or bottleneck.
    pub kind: BlockKind,
    /// Input channels.
    pub in_channels: usize,
    /// Planes: the output has `planes × expansion` channels.
    pub planes: usize,
    /// Channels of the inner convolutions (a bottleneck's `planes × width_per_group / 64`; a
    /// basic block's `planes`).
    pub inner: usize,
    /// Stride of the 3×3 convolution that downsamples (the first of a basic block, the second
    /// of a bottleneck).
    pub stride: usize,
    /// Attention of the block.
    pub attention: AttentionKind,
    /// Channels per layer-attention head.
    pub dim_per_head: usize,
    /// Zero-initialize the last BN's γ, so the residual branch starts as zero.
    pub zero_init_last_bn: bool,
    /// RLA: channels of the recurrent state the first convolution also reads (0 otherwise).
    pub state_channels: usize,
    /// A non-local block on the block's output.
    pub nonlocal: bool,
}
/// A bias-free `kernel × kernel` convolution with "same" padding and He-normal (fan-out)
/// initialization, as torchvision's ResNets.
pub(crate) fn conv(channels: [usize; 2], kernel: usize, stride: usize, device: &Device) -> Conv2d {
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

/// Residual block: bottleneck 1×1 → 3×3 (strided) → 1×1 (×4), or basic 3×3 (strided) → 3×3;
/// residual add, ReLU, then layer attention.
#[derive(Module, Debug)]
pub struct ResBlock {
    /// Bottleneck: 1×1 reduction; basic: the strided 3×3.
    pub conv1: Conv2d,
    /// BN after conv1.
    pub bn1: BatchNorm,
    /// Bottleneck: the strided 3×3; basic: the second 3×3.
    pub conv2: Conv2d,
    /// BN after conv2.
    pub bn2: BatchNorm,
    /// Bottleneck only: 1×1 expansion.
    pub conv3: Option<Conv2d>,
    /// Bottleneck only: BN after conv3.
    pub bn3: Option<BatchNorm>,
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
    /// Non-local block on the block's output (`AttentionKind::Nl`, one block of the network).
    pub nonlocal: Option<NonLocal>,
}

impl ResBlock {
    /// A block as `spec` describes it.
    pub fn new(spec: &BlockSpec, device: &Device) -> Self {
        let BlockSpec {
            kind,
            in_channels,
            planes,
            inner,
            stride,
            attention,
            dim_per_head,
            zero_init_last_bn,
            state_channels,
            nonlocal,
        } = *spec;
        let reads = in_channels + state_channels;
        let out = planes * kind.expansion();
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
        let last_bn = |channels| {
            let mut bn = BatchNormConfig::new(channels).init(device);
            if zero_init_last_bn {
                bn.gamma = Initializer::Zeros.init([channels], device);
            }
            bn
        };
        let (conv1, bn1, conv2, bn2, conv3, bn3) = match kind {
            BlockKind::Bottleneck => (
                conv([reads, inner], 1, 1, device),
                BatchNormConfig::new(inner).init(device),
                conv([inner, inner], 3, stride, device),
                BatchNormConfig::new(inner).init(device),
                Some(conv([inner, out], 1, 1, device)),
                Some(last_bn(out)),
            ),
            BlockKind::Basic => (
                conv([reads, out], 3, stride, device),
                BatchNormConfig::new(out).init(device),
                conv([out, out], 3, 1, device),
                last_bn(out),
                None,
                None,
            ),
        };
        let when = |kind: AttentionKind| attention == kind;
        Self {
            conv1,
            bn1,
            conv2,
            bn2,
            conv3,
            bn3,
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
            nonlocal: nonlocal.then(|| NonLocalConfig::new(out).init(device)),
        }
    }

    /// Basic or bottleneck.
    pub fn kind(&self) -> BlockKind {
        if self.conv3.is_some() {
            BlockKind::Bottleneck
        } else {
            BlockKind::Basic
        }
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.conv3.as_ref().unwrap_or(&self.conv2).weight.dims()[0]
    }

    /// The block's stride.
    pub fn stride(&self) -> usize {
        match self.kind() {
            BlockKind::Bottleneck => self.conv2.stride[0],
            BlockKind::Basic => self.conv1.stride[0],
        }
    }

    /// The residual branch (`bn3(conv3(…))` of a bottleneck, `bn2(conv2(…))` of a basic block),
    /// refined by the block's SE, ECA, CBAM, GC or BAM
    /// module if it has one, and the shortcut.
    ///
    /// # Shapes
    /// - x: `[batch, C_in, H, W]` → (`[batch, C_out, H/s, W/s]`, same)
    pub fn branch(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        self.branch_with_state(x, None)
    }

    /// [`branch`](Self::branch) of an RLA block: the first convolution reads `[x; state]`.
    ///
    /// # Shapes
    /// - x: `[batch, C_in, H, W]`, state: `[batch, k, H, W]` → as `branch`
    pub fn branch_with_state(
        &self,
        x: Tensor<4>,
        state: Option<Tensor<4>>,
    ) -> (Tensor<4>, Tensor<4>) {
        let input = match state {
            Some(h) => Tensor::cat(vec![x.clone(), h], 1),
            None => x.clone(),
        };
        let out = relu(self.bn1.forward(self.conv1.forward(input)));
        let out = self.bn2.forward(self.conv2.forward(out));
        let mut out = match (&self.conv3, &self.bn3) {
            (Some(conv3), Some(bn3)) => bn3.forward(conv3.forward(relu(out))),
            _ => out,
        };
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
    /// - x: `[batch, C_in, H, W]` → (`[batch, C_out, H/s, W/s]`, same)
    pub fn residual(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let (out, identity) = self.branch(x);
        (relu(out + identity.clone()), identity)
    }

    /// Every BatchNorm of the block.
    pub fn batch_norms(&self) -> impl Iterator<Item = &BatchNorm> {
        [Some(&self.bn1), Some(&self.bn2), self.bn3.as_ref()]
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

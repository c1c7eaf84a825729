//! ResNets with pluggable attention (SPEC §1–3), as one Burn module for both families:
//!
//! - [`Arch::Cifar`]: the CIFAR bottleneck ResNet-d, d = 9n + 2 (20, 56, 110, …). Stem conv3×3
//!   (→16) + BN + ReLU; three stages of n bottlenecks of planes 16, 32, 64 (outputs 64, 128,
//!   256), stride 2 on the first block of stages 2 and 3.
//! - [`Arch::Imagenet`]: torchvision's ResNet-18/34 (basic blocks) and 50/101/152 (bottlenecks):
//!   stem conv7×7/2 (→64) + BN + ReLU + max-pool 3×3/2, four stages of planes 64, 128, 256, 512
//!   with blocks [2,2,2,2], [3,4,6,3], [3,4,6,3], [3,4,23,3], [3,8,36,3], stride on the 3×3.
//!   The official MRLA-B ImageNet models (`resnet/models/resnet_mrla_base.py`) replace the 7×7
//!   by a deep stem: conv3×3/2 (→32) + BN + ReLU + conv3×3 (→32) + BN + ReLU + conv3×3 (→64),
//!   then `bn1`, ReLU and the max-pool; [`ElaResNetConfig::deep_stem`] follows that by default.
//!
//! Both end in a global average pool and a linear head. Names follow the PyTorch ResNet
//! (`conv1`, `bn1`, `layer1..4`, `fc`).

use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

use crate::baselines::{
    Bam, BamConfig, DiaCell, DiaCellConfig, RLA_CHANNELS, RlaStage, RlaStageConfig,
};
use crate::block::{BlockKind, BlockSpec, ResBlock};
use crate::{AttentionKind, ModelError, SkipFlags, SkipMode, StageLayout};

/// Planes of the three CIFAR stages.
pub const STAGE_WIDTHS: [usize; 3] = [16, 32, 64];
/// Stem output channels of the CIFAR models.
pub const STEM_CHANNELS: usize = 16;
/// Planes of the four ImageNet stages.
pub const IMAGENET_PLANES: [usize; 4] = [64, 128, 256, 512];
/// Depths of the ImageNet ResNets.
pub const IMAGENET_DEPTHS: [usize; 5] = [18, 34, 50, 101, 152];

/// Which ResNet family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// CIFAR bottleneck ResNet-(9n + 2), three stages, 3×3 stem (32×32 inputs).
    #[default]
    Cifar,
    /// torchvision's ImageNet ResNet-18/34/50/101/152, four stages, 7×7 or deep stem (224×224).
    Imagenet,
}

impl Arch {
    /// `cifar` or `imagenet`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cifar => "cifar",
            Self::Imagenet => "imagenet",
        }
    }

    /// The block kind and blocks per stage of ResNet-`depth`, or an error listing the depths
    /// this family has.
    pub fn stages(self, depth: usize) -> Result<(BlockKind, Vec<usize>), ModelError> {
        match self {
            Self::Cifar => Ok((
                BlockKind::Bottleneck,
                StageLayout::cifar(depth)?.blocks_per_stage().to_vec(),
            )),
            Self::Imagenet => {
                let (kind, blocks) = match depth {
                    18 => (BlockKind::Basic, [2, 2, 2, 2]),
                    34 => (BlockKind::Basic, [3, 4, 6, 3]),
                    50 => (BlockKind::Bottleneck, [3, 4, 6, 3]),
                    101 => (BlockKind::Bottleneck, [3, 4, 23, 3]),
                    152 => (BlockKind::Bottleneck, [3, 8, 36, 3]),
                    _ => {
                        return Err(ModelError::Option {
                            name: "depth",
                            reason: format!(
                                "the ImageNet ResNets have depth 18, 34, 50, 101 or 152, got {depth}"
                            ),
                        });
                    }
                };
                Ok((kind, blocks.to_vec()))
            }
        }
    }

    /// Planes of each stage.
    pub fn planes(self) -> &'static [usize] {
        match self {
            Self::Cifar => &STAGE_WIDTHS,
            Self::Imagenet => &IMAGENET_PLANES,
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Arch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cifar" => Ok(Self::Cifar),
            "imagenet" => Ok(Self::Imagenet),
            _ => Err(format!(
                "unknown architecture '{s}' (expected cifar or imagenet)"
            )),
        }
    }
}

/// Configuration of an [`ElaResNet`].
#[derive(Config, Debug)]
pub struct ElaResNetConfig {
    /// Depth: d = 9n + 2 (20, 56, 110, …) for CIFAR; 18, 34, 50, 101 or 152 for ImageNet.
    pub depth: usize,
    /// Number of classes of the linear head.
    pub num_classes: usize,
    /// ResNet family.
    #[config(default = "Arch::Cifar")]
    pub arch: Arch,
    /// Input image channels (3 for CIFAR and ImageNet, 1 for MNIST).
    #[config(default = 3)]
    pub in_channels: usize,
    /// Attention of every block.
    #[config(default = "AttentionKind::None")]
    pub attention: AttentionKind,
    /// Channels per attention head (SPEC §2: 16 for MRLA-B; MRLA-L: 32 in the official
    /// ImageNet code, 16 (ours) for CIFAR). See [`ElaResNetConfig::official_dim_per_head`].
    #[config(default = 16)]
    pub dim_per_head: usize,
    /// ImageNet only: the official MRLA-B deep stem (three 3×3 convolutions) instead of the 7×7
    /// one. `None`: deep for MRLA-B (and so ELA), 7×7 otherwise, as the official code.
    #[config(default = "None")]
    pub deep_stem: Option<bool>,
    /// ImageNet bottlenecks only: inner width per group, torchvision's `width_per_group` (64;
    /// 128 for the wide ResNets).
    #[config(default = 64)]
    pub width_per_group: usize,
    /// What a skipped ELA block still computes.
    #[config(default = "SkipMode::Full")]
    pub skip_mode: SkipMode,
    /// Zero-initialize each block's last BN γ, so every residual branch starts as the identity.
    /// SPEC §4 lists it in the ImageNet recipe (the official MRLA ImageNet models'
    /// `zero_init_last_bn=True`), not in the CIFAR one; the default is γ = 1 and the trainer
    /// sets it from the dataset's recipe.
    #[config(default = false)]
    pub zero_init_last_bn: bool,
}

impl ElaResNetConfig {
    /// The head size the official code uses: 32 for ImageNet MRLA-L, 16 otherwise.
    pub fn official_dim_per_head(arch: Arch, attention: AttentionKind) -> usize {
        if arch == Arch::Imagenet && attention == AttentionKind::MrlaL {
            32
        } else {
            16
        }
    }

    /// Whether the model gets the deep stem.
    pub fn uses_deep_stem(&self) -> bool {
        self.arch == Arch::Imagenet
            && self
                .deep_stem
                .unwrap_or(self.attention == AttentionKind::MrlaB)
    }

    /// Rejects an unknown depth or an invalid option without building anything (what
    /// [`init`](Self::init) checks first).
    pub fn check(&self) -> Result<(), ModelError> {
        let (kind, blocks) = self.arch.stages(self.depth)?;
        StageLayout::new(blocks)?;
        let option = |name, reason: String| ModelError::Option { name, reason };
        let positive = |name, v: usize| {
            if v == 0 {
                Err(option(name, "must be at least 1".into()))
            } else {
                Ok(())
            }
        };
        positive("num_classes", self.num_classes)?;
        positive("in_channels", self.in_channels)?;
        positive("dim_per_head", self.dim_per_head)?;
        positive("width_per_group", self.width_per_group)?;
        if self.width_per_group != 64
            && !(self.arch == Arch::Imagenet && kind == BlockKind::Bottleneck)
        {
            return Err(option(
                "width_per_group",
                "only the ImageNet bottleneck ResNets (50, 101, 152) have a width per group".into(),
            ));
        }
        if self.deep_stem == Some(true) && self.arch != Arch::Imagenet {
            return Err(option(
                "deep_stem",
                "only the ImageNet ResNets have a deep stem".into(),
            ));
        }
        let planes = self.arch.planes();
        if self.attention.is_layer_attention()
            && let Some(p) = planes
                .iter()
                .find(|&&p| !(p * kind.expansion()).is_multiple_of(self.dim_per_head))
        {
            return Err(option(
                "dim_per_head",
                format!(
                    "{} does not divide the stage width {}",
                    self.dim_per_head,
                    p * kind.expansion()
                ),
            ));
        }
        Ok(())
    }

    /// Builds the model on `device`; rejects an unknown depth or an invalid option.
    pub fn init(&self, device: &Device) -> Result<ElaResNet, ModelError> {
        self.check()?;
        let (kind, blocks) = self.arch.stages(self.depth)?;
        let layout = StageLayout::new(blocks.clone())?;
        let planes = self.arch.planes();
        let conv = |channels: [usize; 2], kernel: usize, stride: usize| {
            let pad = kernel / 2;
            burn::nn::conv::Conv2dConfig::new(channels, [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_bias(false)
                .with_initializer(burn::nn::Initializer::KaimingNormal {
                    gain: 2f64.sqrt(),
                    fan_out_only: true,
                })
                .init(device)
        };
        let deep = self.uses_deep_stem();
        let (stem, conv1, maxpool, mut in_channels) = match self.arch {
            Arch::Cifar => (
                None,
                conv([self.in_channels, STEM_CHANNELS], 3, 1),
                None,
                STEM_CHANNELS,
            ),
            Arch::Imagenet => {
                const DEEP: usize = 32;
                let stem = deep.then(|| DeepStem {
                    conv_a: conv([self.in_channels, DEEP], 3, 2),
                    bn_a: BatchNormConfig::new(DEEP).init(device),
                    conv_b: conv([DEEP, DEEP], 3, 1),
                    bn_b: BatchNormConfig::new(DEEP).init(device),
                });
                let conv1 = if deep {
                    conv([DEEP, planes[0]], 3, 1)
                } else {
                    conv([self.in_channels, planes[0]], 7, 2)
                };
                let pool = MaxPool2dConfig::new([3, 3])
                    .with_strides([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init();
                (stem, conv1, Some(pool), planes[0])
            }
        };
        let stem_channels = in_channels;
        let rla = self.attention == AttentionKind::Rla;
        let state_channels = if rla { RLA_CHANNELS } else { 0 };
        let mut stages: Vec<Vec<ResBlock>> = Vec::new();
        for (s, (&p, &n)) in planes.iter().zip(&blocks).enumerate() {
            let stride = if s == 0 { 1 } else { 2 };
            let inner = match kind {
                BlockKind::Bottleneck => p * self.width_per_group / 64,
                BlockKind::Basic => p,
            };
            let stage = (0..n)
                .map(|j| {
                    let block = ResBlock::new(
                        &BlockSpec {
                            kind,
                            in_channels,
                            planes: p,
                            inner,
                            stride: if j == 0 { stride } else { 1 },
                            attention: self.attention,
                            dim_per_head: self.dim_per_head,
                            zero_init_last_bn: self.zero_init_last_bn,
                            state_channels,
                            // Before the last block of res4 (the third stage).
                            nonlocal: self.attention == AttentionKind::Nl
                                && s == 2
                                && j == n.saturating_sub(2),
                        },
                        device,
                    );
                    in_channels = p * kind.expansion();
                    block
                })
                .collect();
            stages.push(stage);
        }
        let out_channels: Vec<usize> = planes.iter().map(|p| p * kind.expansion()).collect();
        let mut stages = stages.into_iter();
        let mut next = || stages.next().unwrap_or_default();
        Ok(ElaResNet {
            stem,
            conv1,
            bn1: BatchNormConfig::new(stem_channels).init(device),
            maxpool,
            layer1: next(),
            layer2: next(),
            layer3: next(),
            layer4: next(),
            bam: if self.attention == AttentionKind::Bam {
                // After every stage but the last: where the spatial size shrinks.
                out_channels[..out_channels.len() - 1]
                    .iter()
                    .map(|&c| BamConfig::new(c).init(device))
                    .collect()
            } else {
                Vec::new()
            },
            dia: if self.attention == AttentionKind::Dia {
                out_channels
                    .iter()
                    .map(|&c| DiaCellConfig::new(c).init(device))
                    .collect()
            } else {
                Vec::new()
            },
            rla: if rla {
                out_channels
                    .iter()
                    .zip(&blocks)
                    .map(|(&c, &n)| RlaStageConfig::new(c, n).init(device))
                    .collect()
            } else {
                Vec::new()
            },
            rla_norm: rla.then(|| BatchNormConfig::new(RLA_CHANNELS).init(device)),
            fc: LinearConfig::new(in_channels + state_channels, self.num_classes).init(device),
            arch: self.arch,
            attention: self.attention,
            skip_mode: self.skip_mode,
            depth: self.depth,
            width_per_group: self.width_per_group,
            skips: SkipFlags::new(layout.num_blocks()),
        })
    }
}

/// The official MRLA-B ImageNet deep stem's first two convolutions (the third is the model's
/// `conv1`). Exported as PyTorch's `conv1.0`, `conv1.1`, `conv1.3`, `conv1.4` (an
/// `nn.Sequential` with ReLUs at 2 and 5, and the third convolution at 6).
#[derive(Module, Debug)]
pub struct DeepStem {
    /// conv3×3/2, in → 32.
    pub conv_a: Conv2d,
    /// BN after it.
    pub bn_a: BatchNorm,
    /// conv3×3, 32 → 32.
    pub conv_b: Conv2d,
    /// BN after it.
    pub bn_b: BatchNorm,
}

impl DeepStem {
    pub(crate) fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = relu(self.bn_a.forward(self.conv_a.forward(x)));
        relu(self.bn_b.forward(self.conv_b.forward(x)))
    }
}

/// Logits and, when asked for, each block's attention weights.
#[derive(Debug, Clone)]
pub struct ForwardOutput {
    /// `[batch, num_classes]`.
    pub logits: Tensor<2>,
    /// Per block (0-based over all blocks): MRLA-B attention weights `[batch, G, 1, len]`,
    /// detached from the autodiff graph, or `None` for blocks that did not attend (skipped, or
    /// not MRLA-B) and when weights were not requested.
    pub attention: Vec<Option<Tensor<4>>>,
}

/// A CIFAR or ImageNet ResNet with attention and ELA skip flags.
#[derive(Module, Debug)]
pub struct ElaResNet {
    /// The deep stem's first two convolutions (ImageNet MRLA-B models).
    pub stem: Option<DeepStem>,
    /// Stem convolution: 3×3 (CIFAR), 7×7/2 (ImageNet) or the deep stem's last 3×3.
    pub conv1: Conv2d,
    /// Stem BN.
    pub bn1: BatchNorm,
    /// Stem max-pool (ImageNet).
    pub maxpool: Option<MaxPool2d>,
    /// Stage 1.
    pub layer1: Vec<ResBlock>,
    /// Stage 2 (stride 2).
    pub layer2: Vec<ResBlock>,
    /// Stage 3 (stride 2).
    pub layer3: Vec<ResBlock>,
    /// Stage 4 (stride 2; ImageNet only, empty for CIFAR).
    pub layer4: Vec<ResBlock>,
    /// BAM modules after every stage but the last (BAM models only).
    pub bam: Vec<Bam>,
    /// DIA cells, one per stage (DIA models only).
    pub dia: Vec<DiaCell>,
    /// RLA's shared convolutions and BNs, one entry per stage (RLA models only).
    pub rla: Vec<RlaStage>,
    /// RLA: the BN of the final state the classifier reads.
    pub rla_norm: Option<BatchNorm>,
    /// Linear head.
    pub fc: Linear,
    #[module(skip)]
    arch: Arch,
    #[module(skip)]
    attention: AttentionKind,
    #[module(skip)]
    skip_mode: SkipMode,
    depth: usize,
    width_per_group: usize,
    #[module(skip)]
    skips: SkipFlags,
}

impl ElaResNet {
    /// The ResNet family.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// Whether the stem is the official MRLA-B deep stem.
    pub fn has_deep_stem(&self) -> bool {
        self.stem.is_some()
    }

    /// ImageNet bottlenecks' width per group (64 unless wide).
    pub fn width_per_group(&self) -> usize {
        self.width_per_group
    }

    /// The layer attention every block uses.
    pub fn attention(&self) -> AttentionKind {
        self.attention
    }

    /// What a skipped block still computes.
    pub fn skip_mode(&self) -> SkipMode {
        self.skip_mode
    }

    /// Depth d.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Number of classes of the head.
    pub fn num_classes(&self) -> usize {
        self.fc.weight.dims()[1]
    }

    /// Checks the shape `[B, C, H, W]` of an input before it runs: at least one image, the
    /// model's channel count, and a non-empty image (the convolutions need at least one pixel
    /// per side).
    pub fn check_input(&self, shape: &[usize]) -> Result<(), ModelError> {
        let err = |reason: String| ModelError::Input {
            shape: shape.to_vec(),
            reason,
        };
        let &[b, c, h, w] = shape else {
            return Err(err("expected 4 dimensions [B, C, H, W]".into()));
        };
        if b == 0 {
            return Err(err("the batch holds no image".into()));
        }
        if c != self.in_channels() {
            return Err(err(format!(
                "{c} channels, the model takes {}",
                self.in_channels()
            )));
        }
        if h == 0 || w == 0 {
            return Err(err(format!("an image of {h}x{w} pixels has no pixel")));
        }
        Ok(())
    }

    /// Input channels of the stem.
    pub fn in_channels(&self) -> usize {
        match &self.stem {
            Some(stem) => stem.conv_a.weight.dims()[1],
            None => self.conv1.weight.dims()[1],
        }
    }

    /// The stage/block structure.
    pub fn layout(&self) -> StageLayout {
        StageLayout::new(self.stages().iter().map(|s| s.len()).collect())
            .expect("a built model has blocks in every stage")
    }

    /// Current skip flags, one per block.
    pub fn skip_flags(&self) -> Vec<bool> {
        self.skips.get()
    }

    /// Sets the skip flags of this model and of every clone sharing its handle.
    ///
    /// Only MRLA-B models have retrievals to skip; a stage's first block can never be skipped.
    pub fn set_skip_flags(&self, flags: &[bool]) -> Result<(), ModelError> {
        if flags.iter().any(|&f| f) && self.attention != AttentionKind::MrlaB {
            return Err(ModelError::SkipsNeedMrlaB(self.attention.to_string()));
        }
        let mask = ela_prune::SkipMask::from_flags(&self.layout(), flags.to_vec())?;
        self.skips.set(mask.flags().to_vec());
        Ok(())
    }

    /// This model with a skip-flag handle of its own (same flags, no longer shared).
    pub fn with_own_skip_flags(mut self) -> Self {
        self.skips = self.skips.detached();
        self
    }

    /// The same model with another skip mode (parameters and flags unchanged).
    pub fn with_skip_mode(mut self, mode: SkipMode) -> Self {
        self.skip_mode = mode;
        self
    }

    /// Trainable parameters, as PyTorch counts them (`sum(p.numel() for p in
    /// model.parameters())`; SPEC §1's table). Burn's `num_params` also counts the BatchNorm
    /// running statistics, which are buffers, not parameters.
    pub fn parameter_count(&self) -> usize {
        let running: usize = std::iter::once(&self.bn1)
            .chain(self.stem.iter().flat_map(|s| [&s.bn_a, &s.bn_b]))
            .chain(
                self.stages()
                    .into_iter()
                    .flatten()
                    .flat_map(ResBlock::batch_norms),
            )
            .chain(self.bam.iter().flat_map(Bam::batch_norms))
            .chain(self.rla.iter().flat_map(|r| &r.norms))
            .chain(&self.rla_norm)
            .map(|bn| 2 * bn.gamma.dims()[0])
            .sum();
        self.num_params() - running
    }

    /// The stages' blocks (three for CIFAR, four for ImageNet).
    pub fn stages(&self) -> Vec<&[ResBlock]> {
        [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(Vec::as_slice)
            .collect()
    }

    /// A human-readable block layout: one line per block with its shapes and attention.
    pub fn summary(&self) -> String {
        let flags = self.skips.get();
        let mut lines = vec![format!(
            "ElaResNet-{} ({} {} classes, {} input channels, attention {}, skip mode {})",
            self.depth,
            self.arch,
            self.num_classes(),
            self.in_channels(),
            self.attention,
            self.skip_mode
        )];
        let stem_out = self.conv1.weight.dims()[0];
        lines.push(match (&self.stem, &self.maxpool) {
            (Some(stem), _) => format!(
                "stem: conv3x3/2 {} -> {c} + bn + relu, conv3x3 {c} -> {c} + bn + relu, conv3x3 {c} -> {stem_out} + bn + relu, maxpool 3x3/2",
                self.in_channels(),
                c = stem.conv_a.weight.dims()[0],
            ),
            (None, Some(_)) => format!(
                "stem: conv7x7/2 {} -> {stem_out} + bn + relu, maxpool 3x3/2",
                self.in_channels()
            ),
            (None, None) => format!(
                "stem: conv3x3 {} -> {stem_out} + bn + relu",
                self.in_channels()
            ),
        });
        let mut index = 0;
        for (s, stage) in self.stages().iter().enumerate() {
            for (j, block) in stage.iter().enumerate() {
                let cin = block.conv1.weight.dims()[1]
                    - self.rla.first().map_or(0, RlaStage::state_channels);
                let stride = block.stride();
                let attn = match (&block.mrla, self.attention) {
                    (Some(m), _) => format!(
                        "{} heads={}x{} k={}",
                        self.attention,
                        m.heads,
                        m.dim_per_head,
                        m.wq.weight.dims()[2]
                    ),
                    (None, AttentionKind::None | AttentionKind::Bam) => "-".to_string(),
                    (None, AttentionKind::BamBlock) => "bam".to_string(),
                    (None, AttentionKind::Eca) => format!(
                        "eca k={}",
                        block.eca.as_ref().map_or(0, |e| e.conv.weight.dims()[2])
                    ),
                    (None, AttentionKind::Dia) => format!("dia (cell of stage {})", s + 1),
                    (None, AttentionKind::Rla) => format!(
                        "rla (state {}, convolutions of stage {})",
                        self.rla[s].state_channels(),
                        s + 1
                    ),
                    (None, AttentionKind::Nl) if block.nonlocal.is_some() => {
                        "non-local after the block".to_string()
                    }
                    (None, AttentionKind::Nl) => "-".to_string(),
                    (None, other) => other.to_string(),
                };
                lines.push(format!(
                    "block {index:>2}  layer{}.{j}  {cin:>4} -> {:>4}  stride {stride}{}  attention {attn}{}",
                    s + 1,
                    block.out_channels(),
                    if block.downsample.is_some() { "  downsample" } else { "" },
                    if flags[index] { "  [skipped]" } else { "" },
                ));
                index += 1;
            }
            if let Some(bam) = self.bam.get(s) {
                lines.push(format!(
                    "bam after layer{}  {} channels, hidden {}",
                    s + 1,
                    bam.channel_fc1.weight.dims()[0],
                    bam.channel_fc1.weight.dims()[1]
                ));
            }
        }
        lines.push(format!(
            "head: global avg pool{} + linear {} -> {}",
            if self.rla_norm.is_some() {
                " of [x; relu(bn(state))]"
            } else {
                ""
            },
            self.fc.weight.dims()[0],
            self.num_classes()
        ));
        lines.push(format!("parameters: {}", self.parameter_count()));
        lines.join("\n")
    }
}

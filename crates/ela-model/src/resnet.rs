//! CIFAR bottleneck ResNet-d with pluggable layer attention (SPEC §1–3).
//!
//! Stem conv3×3 (→16) + BN + ReLU; three stages of n = (d − 2)/9 bottlenecks of base widths 16,
//! 32, 64 (outputs 64, 128, 256), stride 2 on the first block of stages 2 and 3; global average
//! pool; linear head. Names follow the PyTorch ResNet (`conv1`, `bn1`, `layer1..3`, `fc`).

use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::baselines::{Bam, BamConfig, DiaCell, DiaCellConfig};
use crate::block::{Bottleneck, EXPANSION};
use crate::{AttentionKind, ModelError, SkipFlags, SkipMode, StageLayout};

/// Base widths of the three CIFAR stages.
pub const STAGE_WIDTHS: [usize; 3] = [16, 32, 64];
/// Stem output channels.
pub const STEM_CHANNELS: usize = 16;

/// Configuration of an [`ElaResNet`].
#[derive(Config, Debug)]
pub struct ElaResNetConfig {
    /// Depth d = 9n + 2 (20, 56, 110, …).
    pub depth: usize,
    /// Number of classes of the linear head.
    pub num_classes: usize,
    /// Input image channels (3 for CIFAR, 1 for MNIST).
    #[config(default = 3)]
    pub in_channels: usize,
    /// Layer attention of every block.
    #[config(default = "AttentionKind::None")]
    pub attention: AttentionKind,
    /// Channels per attention head (SPEC §2: 16 for MRLA-B and, *ours*, for CIFAR MRLA-L).
    #[config(default = 16)]
    pub dim_per_head: usize,
    /// What a skipped ELA block still computes.
    #[config(default = "SkipMode::Full")]
    pub skip_mode: SkipMode,
    /// Zero-initialize each block's last BN γ, so every residual branch starts as the identity.
    /// SPEC §4 lists it in the ImageNet recipe (the official MRLA ImageNet models'
    /// `zero_init_last_bn=True`), not in the CIFAR one, so these CIFAR ResNets default to γ = 1.
    #[config(default = false)]
    pub zero_init_last_bn: bool,
}

impl ElaResNetConfig {
    /// Builds the model on `device`; rejects an unknown depth or an invalid head size.
    pub fn init(&self, device: &Device) -> Result<ElaResNet, ModelError> {
        let layout = StageLayout::cifar(self.depth)?;
        let positive = |name, v: usize| {
            if v == 0 {
                Err(ModelError::Option {
                    name,
                    reason: "must be at least 1".into(),
                })
            } else {
                Ok(())
            }
        };
        positive("num_classes", self.num_classes)?;
        positive("in_channels", self.in_channels)?;
        positive("dim_per_head", self.dim_per_head)?;
        if self.attention.is_layer_attention()
            && let Some(w) = STAGE_WIDTHS
                .iter()
                .find(|&&w| !(w * EXPANSION).is_multiple_of(self.dim_per_head))
        {
            return Err(ModelError::Option {
                name: "dim_per_head",
                reason: format!(
                    "{} does not divide the stage width {}",
                    self.dim_per_head,
                    w * EXPANSION
                ),
            });
        }
        let n = layout.blocks_per_stage()[0];
        let mut in_channels = STEM_CHANNELS;
        let mut stages: Vec<Vec<Bottleneck>> = Vec::new();
        for (s, &width) in STAGE_WIDTHS.iter().enumerate() {
            let stride = if s == 0 { 1 } else { 2 };
            let blocks = (0..n)
                .map(|j| {
                    let block = Bottleneck::new(
                        in_channels,
                        width,
                        if j == 0 { stride } else { 1 },
                        self.attention,
                        self.dim_per_head,
                        self.zero_init_last_bn,
                        device,
                    );
                    in_channels = width * EXPANSION;
                    block
                })
                .collect();
            stages.push(blocks);
        }
        let [layer1, layer2, layer3]: [Vec<Bottleneck>; 3] =
            stages.try_into().expect("three stages");
        Ok(ElaResNet {
            conv1: burn::nn::conv::Conv2dConfig::new([self.in_channels, STEM_CHANNELS], [3, 3])
                .with_padding(burn::nn::PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .with_initializer(burn::nn::Initializer::KaimingNormal {
                    gain: 2f64.sqrt(),
                    fan_out_only: true,
                })
                .init(device),
            bn1: BatchNormConfig::new(STEM_CHANNELS).init(device),
            layer1,
            layer2,
            layer3,
            bam: if self.attention == AttentionKind::Bam {
                // After every stage but the last: where the spatial size shrinks.
                STAGE_WIDTHS[..2]
                    .iter()
                    .map(|w| BamConfig::new(w * EXPANSION).init(device))
                    .collect()
            } else {
                Vec::new()
            },
            dia: if self.attention == AttentionKind::Dia {
                STAGE_WIDTHS
                    .iter()
                    .map(|w| DiaCellConfig::new(w * EXPANSION).init(device))
                    .collect()
            } else {
                Vec::new()
            },
            fc: LinearConfig::new(in_channels, self.num_classes).init(device),
            attention: self.attention,
            skip_mode: self.skip_mode,
            depth: self.depth,
            skips: SkipFlags::new(layout.num_blocks()),
        })
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

/// CIFAR bottleneck ResNet with layer attention and ELA skip flags.
#[derive(Module, Debug)]
pub struct ElaResNet {
    /// Stem 3×3 convolution.
    pub conv1: Conv2d,
    /// Stem BN.
    pub bn1: BatchNorm,
    /// Stage 1 (64 channels).
    pub layer1: Vec<Bottleneck>,
    /// Stage 2 (128 channels, stride 2).
    pub layer2: Vec<Bottleneck>,
    /// Stage 3 (256 channels, stride 2).
    pub layer3: Vec<Bottleneck>,
    /// BAM modules after stages 1 and 2 (BAM models only).
    pub bam: Vec<Bam>,
    /// DIA cells, one per stage (DIA models only).
    pub dia: Vec<DiaCell>,
    /// Linear head.
    pub fc: Linear,
    #[module(skip)]
    attention: AttentionKind,
    #[module(skip)]
    skip_mode: SkipMode,
    depth: usize,
    #[module(skip)]
    skips: SkipFlags,
}

impl ElaResNet {
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

    /// Input channels of the stem.
    pub fn in_channels(&self) -> usize {
        self.conv1.weight.dims()[1]
    }

    /// The stage/block structure.
    pub fn layout(&self) -> StageLayout {
        StageLayout::new(vec![
            self.layer1.len(),
            self.layer2.len(),
            self.layer3.len(),
        ])
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
            .chain(
                self.stages()
                    .into_iter()
                    .flatten()
                    .flat_map(Bottleneck::batch_norms),
            )
            .chain(self.bam.iter().flat_map(Bam::batch_norms))
            .map(|bn| 2 * bn.gamma.dims()[0])
            .sum();
        self.num_params() - running
    }

    fn stages(&self) -> [&[Bottleneck]; 3] {
        [&self.layer1, &self.layer2, &self.layer3]
    }

    /// Logits.
    ///
    /// # Shapes
    /// - x: `[batch, in_channels, H, W]` → `[batch, num_classes]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_impl(x, false).logits
    }

    /// Logits and every attending block's attention weights, detached: reading them adds no
    /// autodiff work, and [`forward`](Self::forward) does not compute them at all.
    pub fn forward_with_attention(&self, x: Tensor<4>) -> ForwardOutput {
        self.forward_impl(x, true)
    }

    fn forward_impl(&self, x: Tensor<4>, collect: bool) -> ForwardOutput {
        let flags = self.skips.get();
        let mut x = relu(self.bn1.forward(self.conv1.forward(x)));
        let mut attention = Vec::with_capacity(flags.len());
        let mut index = 0;
        for (s, stage) in self.stages().into_iter().enumerate() {
            // The stage memory resets at each stage: C, H and W change.
            let mut keys: Vec<Tensor<3>> = Vec::new();
            let mut values: Vec<Tensor<4>> = Vec::new();
            let mut dia_state = None;
            for block in stage {
                let (out, identity) = match self.dia.get(s) {
                    Some(cell) => {
                        let (u, identity) = block.branch(x);
                        let state = dia_state
                            .take()
                            .unwrap_or_else(|| cell.zero_state(u.dims()[0], &u.device()));
                        let (u, state) = cell.forward(u, state);
                        dia_state = Some(state);
                        (relu(u + identity.clone()), identity)
                    }
                    None => block.residual(x),
                };
                let skipped = flags[index];
                index += 1;
                let mut weights = None;
                x = match (self.attention, block.mrla.as_ref()) {
                    (AttentionKind::MrlaL, Some(_)) => block.add_light(out, identity),
                    (AttentionKind::MrlaB, Some(mrla)) => {
                        if skipped && self.skip_mode == SkipMode::Full {
                            out
                        } else {
                            let y = mrla.descriptor(out.clone());
                            keys.push(mrla.key(y.clone()));
                            values.push(mrla.value(out.clone()));
                            if skipped {
                                out
                            } else {
                                let (o, a) = mrla.retrieve(mrla.query(y), &keys, &values);
                                if collect {
                                    weights = Some(a.detach());
                                }
                                block.add_retrieved(out, o)
                            }
                        }
                    }
                    _ => out,
                };
                attention.push(weights);
            }
            if let Some(bam) = self.bam.get(s) {
                x = bam.forward(x);
            }
        }
        let [batch, channels, _, _] = x.dims();
        let pooled = x.mean_dim(3).mean_dim(2).reshape([batch, channels]);
        ForwardOutput {
            logits: self.fc.forward(pooled),
            attention,
        }
    }

    /// A human-readable block layout: one line per block with its shapes and attention.
    pub fn summary(&self) -> String {
        let flags = self.skips.get();
        let mut lines = vec![format!(
            "ElaResNet-{} ({} classes, {} input channels, attention {}, skip mode {})",
            self.depth,
            self.num_classes(),
            self.in_channels(),
            self.attention,
            self.skip_mode
        )];
        lines.push(format!(
            "stem: conv3x3 {} -> {STEM_CHANNELS} + bn + relu",
            self.in_channels()
        ));
        let mut index = 0;
        for (s, stage) in self.stages().iter().enumerate() {
            for (j, block) in stage.iter().enumerate() {
                let [width, cin, _, _] = block.conv1.weight.dims();
                let stride = block.conv2.stride[0];
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
                    (None, other) => other.to_string(),
                };
                lines.push(format!(
                    "block {index:>2}  layer{}.{j}  {cin:>3} -> {:>3}  stride {stride}{}  attention {attn}{}",
                    s + 1,
                    width * EXPANSION,
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
            "head: global avg pool + linear {} -> {}",
            self.fc.weight.dims()[0],
            self.num_classes()
        ));
        lines.push(format!("parameters: {}", self.parameter_count()));
        lines.join("\n")
    }
}

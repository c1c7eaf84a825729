//! The detector's backbone: an ImageNet ELA ResNet (any attention option of `ela-model`)
//! returning C2–C5 (strides 4, 8, 16, 32), with MMDetection's `frozen_stages` (the stem and
//! the first stages get no gradient and keep their BatchNorm statistics) and `norm_eval` (every
//! BatchNorm normalizes with its running statistics while its affine parameters train), as the
//! MRLA authors' detection configs set them (`frozen_stages=1, norm_eval=True`).

use burn::module::{Flag, ModuleMapper, Param};
use burn::nn::BatchNorm;
use burn::prelude::*;
use ela_model::{Arch, AttentionKind, ElaResNet, ElaResNetConfig, FeatureOutput};
use serde::{Deserialize, Serialize};

use crate::DetectError;

/// How the backbone is built and trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackboneConfig {
    /// ImageNet ResNet depth: 18, 34, 50, 101 or 152.
    pub depth: usize,
    /// Every block's attention (ELA = MRLA-B with skip flags).
    pub attention: AttentionKind,
    /// The stem and this many stages are frozen (MMDetection `frozen_stages`; -1 there is 0 here
    /// with `freeze_stem = false`).
    pub frozen_stages: usize,
    /// BatchNorm statistics frozen everywhere (MMDetection `norm_eval`).
    pub norm_eval: bool,
    /// The official MRLA-B deep stem (`None`: as `ela-model` decides for the attention).
    pub deep_stem: Option<bool>,
    /// Bottleneck width per group (64; smaller in reduced test models).
    pub width_per_group: usize,
}

impl BackboneConfig {
    /// MMDetection's ResNet backbone settings for a depth and attention.
    pub fn mmdet(depth: usize, attention: AttentionKind) -> Self {
        Self {
            depth,
            attention,
            frozen_stages: 1,
            norm_eval: true,
            deep_stem: None,
            width_per_group: 64,
        }
    }

    /// The ResNet's configuration (its classifier head is unused: one class).
    pub fn resnet(&self) -> ElaResNetConfig {
        ElaResNetConfig::new(self.depth, 1)
            .with_arch(Arch::Imagenet)
            .with_attention(self.attention)
            .with_dim_per_head(ElaResNetConfig::official_dim_per_head(
                Arch::Imagenet,
                self.attention,
            ))
            .with_deep_stem(self.deep_stem)
            .with_width_per_group(self.width_per_group)
    }

    /// Builds the backbone, freezing what the settings freeze.
    pub fn init(&self, device: &Device) -> Result<Backbone, DetectError> {
        if self.frozen_stages > 4 {
            return Err(DetectError::Invalid(format!(
                "frozen_stages: {} (an ImageNet ResNet has 4 stages)",
                self.frozen_stages
            )));
        }
        let resnet = self.resnet().init(device)?;
        Ok(Backbone {
            resnet: apply_settings(resnet, self.frozen_stages, self.norm_eval),
            frozen_stages: self.frozen_stages,
        })
    }
}

/// Freezes the stem and the first `frozen_stages` stages; with `norm_eval`, puts every
/// BatchNorm on its running statistics. Applied again after loading weights.
pub fn apply_settings(mut resnet: ElaResNet, frozen_stages: usize, norm_eval: bool) -> ElaResNet {
    if frozen_stages > 0 {
        resnet.stem = resnet.stem.map(|s| s.freeze());
        resnet.conv1 = resnet.conv1.freeze();
        resnet.bn1 = resnet.bn1.freeze();
        let stages = [
            &mut resnet.layer1,
            &mut resnet.layer2,
            &mut resnet.layer3,
            &mut resnet.layer4,
        ];
        for stage in stages.into_iter().take(frozen_stages) {
            *stage = std::mem::take(stage)
                .into_iter()
                .map(|b| b.freeze())
                .collect();
        }
        // RLA: a frozen stage's shared convolutions and BNs freeze with it.
        resnet.rla = std::mem::take(&mut resnet.rla)
            .into_iter()
            .enumerate()
            .map(|(s, r)| if s < frozen_stages { r.freeze() } else { r })
            .collect();
    }
    if norm_eval {
        resnet = resnet.map(&mut StatisticsFrozen);
    }
    resnet
}

/// Turns off every training flag (BatchNorm's batch statistics) and leaves the parameters
/// trainable.
struct StatisticsFrozen;

impl ModuleMapper for StatisticsFrozen {
    fn map_flag(&mut self, flag: Param<Flag>) -> Param<Flag> {
        flag.with_value(false)
    }
}

/// The backbone module.
#[derive(Module, Debug)]
pub struct Backbone {
    /// The ResNet (its `fc` is unused).
    pub resnet: ElaResNet,
    /// The stem and this many stages are frozen.
    #[module(skip)]
    pub frozen_stages: usize,
}

impl Backbone {
    /// C2–C5 and, when `collect`, each block's attention weights (the pruning controller's
    /// input).
    ///
    /// # Shapes
    /// - `images`: `[batch, 3, height, width]`
    /// - output: stage s of C2–C5 is `[batch, out_channels[s], height / 2^(s+2), width /
    ///   2^(s+2)]` (rounded up)
    pub fn forward(&self, images: Tensor<4>, collect: bool) -> FeatureOutput {
        self.resnet.forward_features(images, collect)
    }

    /// Output channels of C2–C5.
    pub fn out_channels(&self) -> Vec<usize> {
        self.resnet
            .stages()
            .iter()
            .map(|s| s.last().expect("a stage has blocks").out_channels())
            .collect()
    }

    /// Parameters as PyTorch counts them, without the unused classifier head (and RLA's BN of
    /// the state the classifier reads).
    pub fn parameter_count(&self) -> usize {
        let rla_head = self
            .resnet
            .rla_norm
            .as_ref()
            .map_or(0, |bn| 2 * bn.gamma.dims()[0]);
        self.resnet.parameter_count() - self.resnet.fc.num_params() - rla_head
    }

    /// Parameters of the frozen stem and stages (PyTorch's count).
    pub fn frozen_parameter_count(&self) -> usize {
        if self.frozen_stages == 0 {
            return 0;
        }
        let r = &self.resnet;
        let bn = |b: &BatchNorm| b.gamma.dims()[0] * 2;
        let stem = r.conv1.num_params()
            + bn(&r.bn1)
            + r.stem.as_ref().map_or(0, |s| {
                s.conv_a.num_params() + s.conv_b.num_params() + bn(&s.bn_a) + bn(&s.bn_b)
            });
        let blocks: usize = r
            .stages()
            .into_iter()
            .take(self.frozen_stages)
            .flatten()
            .map(|b| {
                b.num_params()
                    - b.batch_norms()
                        .map(|n| n.gamma.dims()[0] * 2)
                        .sum::<usize>()
            })
            .sum();
        let rla: usize = r
            .rla
            .iter()
            .take(self.frozen_stages)
            .map(|s| {
                s.conv_out.num_params()
                    + s.recurrent.num_params()
                    + s.norms.iter().map(bn).sum::<usize>()
            })
            .sum();
        stem + blocks + rla
    }
}

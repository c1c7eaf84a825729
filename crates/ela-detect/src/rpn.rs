//! Region proposal network (Ren et al. 2015) as MMDetection's `RPNHead`: a shared 3×3
//! convolution + ReLU, a 1×1 objectness convolution (one sigmoid logit per anchor) and a 1×1
//! box convolution (four deltas per anchor) on every pyramid level; its loss (sigmoid
//! cross-entropy and L1 over 256 sampled anchors per image, averaged over the samples); and its
//! proposals (per level the top `pre_nms` anchors by score, decoded and clipped, NMS at 0.7 per
//! level, the best `max_per_image` kept).

use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};
use rand::rngs::StdRng;

use crate::anchors::{AnchorGenerator, boxes_tensor};
use crate::assign::{Assigned, AssignerConfig, SamplerConfig};
use crate::boxes::large_enough;
use crate::coder::DeltaCoder;
use crate::init::{Init, conv};
use crate::losses::{binary_cross_entropy_with_logits, l1_sum, smooth_l1_sum};
use crate::nms::{batched_nms, host_f32, host_i64, indices};

/// The RPN head's configuration.
#[derive(Config, Debug)]
pub struct RpnHeadConfig {
    /// Channels of the pyramid's levels (256).
    pub channels: usize,
    /// Anchors per location (3: one scale, three ratios).
    pub anchors: usize,
}

impl RpnHeadConfig {
    /// N(0, 0.01²) weights, zero biases.
    pub fn init(&self, device: &Device) -> RpnHead {
        let (c, a) = (self.channels, self.anchors);
        RpnHead {
            conv: conv([c, c], 3, Init::Normal(0.01), device),
            cls: conv([c, a], 1, Init::Normal(0.01), device),
            reg: conv([c, 4 * a], 1, Init::Normal(0.01), device),
        }
    }
}

/// The RPN head's convolutions.
#[derive(Module, Debug)]
pub struct RpnHead {
    /// 3×3, 256 → 256, ReLU.
    pub conv: Conv2d,
    /// 1×1, 256 → A objectness logits.
    pub cls: Conv2d,
    /// 1×1, 256 → 4A deltas.
    pub reg: Conv2d,
}

/// The head's outputs over all levels, flattened in anchor order.
#[derive(Debug, Clone)]
pub struct RpnOutput {
    /// `[B, N]` objectness logits.
    pub logits: Tensor<2>,
    /// `[B, N, 4]` deltas.
    pub deltas: Tensor<3>,
    /// Per level: `(height, width)` of its map and the number of its anchors.
    pub levels: Vec<((usize, usize), usize)>,
}

impl RpnHead {
    /// Logits and deltas of every level, flattened position-major, anchor-minor.
    ///
    /// # Shapes
    /// - `features[l]`: `[batch, channels, h_l, w_l]`
    /// - output: logits `[batch, N]`, deltas `[batch, N, 4]` with `N = Σ_l h_l · w_l · anchors`
    pub fn forward(&self, features: &[Tensor<4>]) -> RpnOutput {
        let mut logits = Vec::new();
        let mut deltas = Vec::new();
        let mut levels = Vec::new();
        for f in features {
            let [b, _, h, w] = f.dims();
            let x = relu(self.conv.forward(f.clone()));
            let c = self.cls.forward(x.clone());
            let a = c.dims()[1];
            logits.push(c.permute([0, 2, 3, 1]).reshape([b, h * w * a]));
            deltas.push(
                self.reg
                    .forward(x)
                    .permute([0, 2, 3, 1])
                    .reshape([b, h * w * a, 4]),
            );
            levels.push(((h, w), h * w * a));
        }
        RpnOutput {
            logits: Tensor::cat(logits, 1),
            deltas: Tensor::cat(deltas, 1),
            levels,
        }
    }
}

/// RPN settings (MMDetection's `train_cfg.rpn`, `train_cfg.rpn_proposal`, `test_cfg.rpn`).
#[derive(Debug, Clone, PartialEq)]
pub struct RpnConfig {
    /// Anchors.
    pub anchors: AnchorGenerator,
    /// Delta coder (means 0, stds 1).
    pub coder: DeltaCoder,
    /// Assigner.
    pub assigner: AssignerConfig,
    /// Sampler.
    pub sampler: SamplerConfig,
    /// Box loss: L1 (`None`) or smooth L1 with this β (torchvision 1/9).
    pub smooth_l1_beta: Option<f32>,
    /// Proposals per level before NMS, training / test.
    pub pre_nms: (usize, usize),
    /// Proposals kept after NMS, training / test.
    pub max_per_image: (usize, usize),
    /// NMS IoU.
    pub nms_iou: f32,
    /// Proposals smaller than this (either side) are dropped.
    pub min_size: f32,
}

impl RpnConfig {
    /// MMDetection 2.x.
    pub fn mmdet() -> Self {
        Self {
            anchors: AnchorGenerator::mmdet(),
            coder: DeltaCoder::rpn(),
            assigner: AssignerConfig::rpn(),
            sampler: SamplerConfig::rpn(),
            smooth_l1_beta: None,
            pre_nms: (2000, 1000),
            max_per_image: (1000, 1000),
            nms_iou: 0.7,
            min_size: 0.0,
        }
    }

    /// torchvision's `fasterrcnn_resnet50_fpn`.
    pub fn torchvision() -> Self {
        Self {
            anchors: AnchorGenerator::torchvision(),
            coder: DeltaCoder::rpn().torchvision(),
            assigner: AssignerConfig {
                low_quality: Some(0.0),
                ..AssignerConfig::rpn()
            },
            smooth_l1_beta: Some(1.0 / 9.0),
            max_per_image: (2000, 1000),
            min_size: 1e-3,
            ..Self::mmdet()
        }
    }

    /// Anchors of every level for maps of the given sizes, concatenated.
    pub fn anchors(&self, levels: &[((usize, usize), usize)]) -> Vec<[f32; 4]> {
        levels
            .iter()
            .enumerate()
            .flat_map(|(l, ((h, w), _))| self.anchors.level_anchors(l, *h, *w))
            .collect()
    }
}

/// One image's ground truth as the detector sees it (resized-image pixels).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Targets {
    /// `(x1, y1, x2, y2)` boxes.
    pub boxes: Vec<[f32; 4]>,
    /// 0-based class of each box.
    pub labels: Vec<usize>,
    /// Mask R-CNN: each box's mask at the image's (resized, unpadded) size.
    pub masks: Vec<ela_data::masks::BitMask>,
}

/// The RPN's two losses (already averaged).
#[derive(Debug, Clone)]
pub struct RpnLoss {
    /// Objectness.
    pub cls: Tensor<1>,
    /// Boxes.
    pub bbox: Tensor<1>,
}

/// RPN losses of a batch: targets assigned per image over its valid anchors, 256 sampled.
pub fn rpn_loss(
    config: &RpnConfig,
    output: &RpnOutput,
    anchors: &[[f32; 4]],
    image_sizes: &[(usize, usize)],
    targets: &[Targets],
    rng: &mut StdRng,
) -> RpnLoss {
    let device = output.logits.device();
    let mut sampled = Vec::new();
    let mut sampled_labels = Vec::new();
    let mut positive = Vec::new();
    let mut positive_gt = Vec::new();
    let n = anchors.len();
    for (b, (size, target)) in image_sizes.iter().zip(targets).enumerate() {
        let valid: Vec<usize> = output
            .levels
            .iter()
            .enumerate()
            .flat_map(|(l, (map, _))| config.anchors.level_valid(l, *map, *size))
            .enumerate()
            .filter_map(|(i, v)| v.then_some(i))
            .collect();
        let valid_anchors = boxes_tensor(
            &valid.iter().map(|&i| anchors[i]).collect::<Vec<_>>(),
            &device,
        );
        let assigned = config
            .assigner
            .assign(valid_anchors, boxes_tensor(&target.boxes, &device));
        let (pos, neg) = config.sampler.sample(&assigned, rng);
        for &i in &pos {
            let Assigned::Positive(g) = assigned[i] else {
                unreachable!("sampled positives are positive")
            };
            positive.push(b * n + valid[i]);
            positive_gt.push(target.boxes[g]);
        }
        sampled.extend(pos.iter().chain(&neg).map(|&i| b * n + valid[i]));
        sampled_labels.extend(pos.iter().map(|_| 1.0f32).chain(neg.iter().map(|_| 0.0)));
    }
    let total = sampled.len().max(1) as f32;
    let batch = output.logits.dims()[0];
    let logits = output
        .logits
        .clone()
        .reshape([batch * n])
        .select(0, indices(&sampled, &device));
    let labels = Tensor::<1>::from_data(
        burn::tensor::TensorData::new(sampled_labels, [sampled.len()]),
        &device,
    );
    let cls = binary_cross_entropy_with_logits(logits, labels).sum() / total;
    let bbox = if positive.is_empty() {
        Tensor::zeros([1], &device)
    } else {
        let all_anchors: Vec<[f32; 4]> = positive.iter().map(|&i| anchors[i % n]).collect();
        let wanted = config.coder.encode(
            boxes_tensor(&all_anchors, &device),
            boxes_tensor(&positive_gt, &device),
        );
        let predicted = output
            .deltas
            .clone()
            .reshape([batch * n, 4])
            .select(0, indices(&positive, &device));
        let sum = match config.smooth_l1_beta {
            Some(beta) => smooth_l1_sum(predicted, wanted, beta),
            None => l1_sum(predicted, wanted),
        };
        sum / total
    };
    RpnLoss { cls, bbox }
}

/// Proposals of one image: `[K, 4]` boxes (resized-image pixels) with their objectness.
pub fn proposals(
    config: &RpnConfig,
    output: &RpnOutput,
    anchors: &[[f32; 4]],
    image: usize,
    image_size: (usize, usize),
    training: bool,
) -> (Tensor<2>, Vec<f32>) {
    let device = output.logits.device();
    let (pre_nms, keep) = if training {
        (config.pre_nms.0, config.max_per_image.0)
    } else {
        (config.pre_nms.1, config.max_per_image.1)
    };
    let scores = sigmoid(output.logits.clone().narrow(0, image, 1).detach());
    let n = anchors.len();
    let scores = scores.reshape([n]);
    let deltas = output
        .deltas
        .clone()
        .narrow(0, image, 1)
        .detach()
        .reshape([n, 4]);
    // Top `pre_nms` per level.
    let mut chosen: Vec<usize> = Vec::new();
    let mut level_of: Vec<i64> = Vec::new();
    let mut start = 0;
    for (l, (_, count)) in output.levels.iter().enumerate() {
        let level_scores = scores.clone().narrow(0, start, *count);
        let k = pre_nms.min(*count);
        let (_, order) = level_scores.sort_descending_with_indices(0);
        let top = host_i64(order.narrow(0, 0, k));
        chosen.extend(top.iter().map(|&i| start + i as usize));
        level_of.extend(std::iter::repeat_n(l as i64, k));
        start += count;
    }
    let idx = indices(&chosen, &device);
    let chosen_anchors = boxes_tensor(
        &chosen.iter().map(|&i| anchors[i]).collect::<Vec<_>>(),
        &device,
    );
    let boxes = config.coder.decode(
        chosen_anchors,
        deltas.select(0, idx.clone()),
        Some(image_size),
    );
    let scores = scores.select(0, idx);
    let big = host_bool(large_enough(
        boxes.clone(),
        config.min_size.max(f32::MIN_POSITIVE),
    ));
    let kept: Vec<usize> = (0..chosen.len()).filter(|&i| big[i]).collect();
    if kept.is_empty() {
        // Every box degenerate (or not finite): no proposal for this image.
        return (Tensor::zeros([0, 4], &device), Vec::new());
    }
    let kept_idx = indices(&kept, &device);
    let boxes = boxes.select(0, kept_idx.clone());
    let scores = scores.select(0, kept_idx);
    let levels: Vec<i64> = kept.iter().map(|&i| level_of[i]).collect();
    let groups =
        Tensor::<1, Int>::from_data(burn::tensor::TensorData::new(levels, [kept.len()]), &device);
    let survivors = batched_nms(boxes.clone(), scores.clone(), groups, config.nms_iou);
    let count = survivors.dims()[0].min(keep);
    let survivors = survivors.narrow(0, 0, count);
    (
        boxes.select(0, survivors.clone()),
        host_f32(scores.select(0, survivors)),
    )
}

fn host_bool(t: Tensor<1, Bool>) -> Vec<bool> {
    t.into_data().try_to_vec::<bool>().expect("a bool tensor")
}

//! The RoI box head (MMDetection's `Shared2FCBBoxHead`, torchvision's `TwoMLPHead` +
//! `FastRCNNPredictor`): 7×7 RoIAlign features → FC 1024 → ReLU → FC 1024 → ReLU → class
//! logits (classes + background) and class-specific deltas; its loss (cross-entropy over 512
//! sampled RoIs per image, a quarter positive, ground-truth boxes added to the proposals; L1 on
//! the positives' deltas of their class, both averaged over the sampled RoIs); and the test-time
//! post-processing (softmax, decode, clip, score ≥ 0.05, NMS 0.5 per class, 100 per image).

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::{relu, softmax};
use rand::rngs::StdRng;

use crate::anchors::boxes_tensor;
use crate::assign::{Assigned, AssignerConfig, SamplerConfig};
use crate::boxes::large_enough;
use crate::coder::DeltaCoder;
use crate::init::{Init, linear};
use crate::losses::{cross_entropy_sum, l1_sum, smooth_l1_sum};
use crate::nms::{batched_nms, host_f32, host_i64, indices};
use crate::roi_align::{MultiLevelRoiAlign, Roi};
use crate::rpn::Targets;

/// The box head's configuration.
#[derive(Config, Debug)]
pub struct BoxHeadConfig {
    /// Flattened RoI features: `channels · 7 · 7`.
    pub input: usize,
    /// Width of the two shared FCs (1024).
    pub hidden: usize,
    /// Object classes (without the background).
    pub classes: usize,
    /// Classes with their own four deltas (`classes`; torchvision: `classes + 1`).
    pub reg_classes: usize,
}

impl BoxHeadConfig {
    /// Xavier shared FCs; classifier N(0, 0.01²), regressor N(0, 0.001²); zero biases.
    pub fn init(&self, device: &Device) -> BoxHead {
        let hidden = self.hidden;
        BoxHead {
            fc6: linear(self.input, hidden, Init::Xavier, device),
            fc7: linear(hidden, hidden, Init::Xavier, device),
            cls: linear(hidden, self.classes + 1, Init::Normal(0.01), device),
            reg: linear(hidden, 4 * self.reg_classes, Init::Normal(0.001), device),
        }
    }
}

/// The box head's layers.
#[derive(Module, Debug)]
pub struct BoxHead {
    /// `C · 7 · 7 → 1024`.
    pub fc6: Linear,
    /// `1024 → 1024`.
    pub fc7: Linear,
    /// `1024 → classes + 1`.
    pub cls: Linear,
    /// `1024 → 4 · classes` (torchvision: `4 · (classes + 1)`, a background slot first).
    pub reg: Linear,
}

impl BoxHead {
    /// Class logits and class-specific deltas of RoI features.
    ///
    /// # Shapes
    /// - `features`: `[rois, channels, 7, 7]`
    /// - output: logits `[rois, classes + 1]`, deltas `[rois, 4 · reg_classes]`
    pub fn forward(&self, features: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let [k, c, h, w] = features.dims();
        let x = relu(self.fc6.forward(features.reshape([k, c * h * w])));
        let x = relu(self.fc7.forward(x));
        (self.cls.forward(x.clone()), self.reg.forward(x))
    }
}

/// Where the background logit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Background {
    /// After the classes (MMDetection).
    Last,
    /// Before them (torchvision).
    First,
}

/// RoI head settings (MMDetection's `train_cfg.rcnn`, `test_cfg.rcnn`).
#[derive(Debug, Clone, PartialEq)]
pub struct RoiHeadConfig {
    /// Number of object classes.
    pub classes: usize,
    /// RoIAlign over P2–P5.
    pub align: MultiLevelRoiAlign,
    /// Delta coder (stds 0.1, 0.1, 0.2, 0.2).
    pub coder: DeltaCoder,
    /// Assigner.
    pub assigner: AssignerConfig,
    /// Sampler.
    pub sampler: SamplerConfig,
    /// Box loss: L1 (`None`) or smooth L1 with this β.
    pub smooth_l1_beta: Option<f32>,
    /// Background index convention.
    pub background: Background,
    /// Test: detections scoring below this are dropped.
    pub score_threshold: f32,
    /// Test: per-class NMS IoU.
    pub nms_iou: f32,
    /// Test: detections per image.
    pub max_per_image: usize,
    /// Test: boxes with a side below this are dropped (torchvision 0.01; MMDetection none).
    pub min_size: f32,
}

impl RoiHeadConfig {
    /// MMDetection 2.x.
    pub fn mmdet(classes: usize) -> Self {
        Self {
            classes,
            align: MultiLevelRoiAlign {
                output: 7,
                strides: vec![4, 8, 16, 32],
                torchvision: false,
            },
            coder: DeltaCoder::roi(),
            assigner: AssignerConfig::roi(),
            sampler: SamplerConfig::roi(),
            smooth_l1_beta: None,
            background: Background::Last,
            score_threshold: 0.05,
            nms_iou: 0.5,
            max_per_image: 100,
            min_size: 0.0,
        }
    }

    /// MMDetection 2.x's Mask R-CNN: the RoI assigner also takes low-quality matches (each
    /// ground truth's best proposals from IoU 0.5).
    pub fn mmdet_mask(classes: usize) -> Self {
        Self {
            assigner: AssignerConfig {
                low_quality: Some(0.5),
                ..AssignerConfig::roi()
            },
            ..Self::mmdet(classes)
        }
    }

    /// torchvision's `fasterrcnn_resnet50_fpn`.
    pub fn torchvision(classes: usize) -> Self {
        Self {
            align: MultiLevelRoiAlign {
                torchvision: true,
                ..Self::mmdet(classes).align
            },
            coder: DeltaCoder::roi().torchvision(),
            smooth_l1_beta: Some(1.0 / 9.0),
            background: Background::First,
            min_size: 1e-2,
            ..Self::mmdet(classes)
        }
    }

    /// The logit column of a 0-based class, and of the background.
    fn column(&self, class: Option<usize>) -> usize {
        match (self.background, class) {
            (Background::Last, Some(c)) => c,
            (Background::Last, None) => self.classes,
            (Background::First, Some(c)) => c + 1,
            (Background::First, None) => 0,
        }
    }

    /// Classes with a slot in the regressor's output.
    pub fn regressed_classes(&self) -> usize {
        match self.background {
            Background::Last => self.classes,
            Background::First => self.classes + 1,
        }
    }

    /// The delta columns of a 0-based class (torchvision keeps a background slot first).
    fn delta_offset(&self, class: usize) -> usize {
        4 * match self.background {
            Background::Last => class,
            Background::First => class + 1,
        }
    }
}

/// The sampled RoIs of a batch with their targets.
#[derive(Debug, Clone)]
pub struct RoiSamples {
    /// Every sampled RoI.
    pub rois: Vec<Roi>,
    /// Its logit column (class or background).
    pub labels: Vec<usize>,
    /// The positives.
    pub positives: Vec<Positive>,
}

/// A sampled positive RoI.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Positive {
    /// Its position in [`RoiSamples::rois`].
    pub row: usize,
    /// 0-based class.
    pub class: usize,
    /// The ground truth it was matched to: index into its image's targets.
    pub target: usize,
    /// That ground truth's box.
    pub matched: [f32; 4],
}

/// Assigns and samples the proposals of every image (ground-truth boxes added first).
pub fn sample_rois(
    config: &RoiHeadConfig,
    proposals: &[Tensor<2>],
    targets: &[Targets],
    rng: &mut StdRng,
) -> RoiSamples {
    let mut out = RoiSamples {
        rois: Vec::new(),
        labels: Vec::new(),
        positives: Vec::new(),
    };
    for (b, (props, target)) in proposals.iter().zip(targets).enumerate() {
        let device = props.device();
        let gt = boxes_tensor(&target.boxes, &device);
        let candidates = match (target.boxes.is_empty(), props.dims()[0] == 0) {
            (true, true) => continue,
            (true, false) => props.clone(),
            (false, true) => gt.clone(),
            (false, false) => Tensor::cat(vec![gt.clone(), props.clone()], 0),
        };
        let boxes = host_f32(candidates.clone());
        let assigned = config.assigner.assign(candidates, gt);
        let (pos, neg) = config.sampler.sample(&assigned, rng);
        let bbox = |i: usize| {
            [
                boxes[4 * i],
                boxes[4 * i + 1],
                boxes[4 * i + 2],
                boxes[4 * i + 3],
            ]
        };
        for &i in &pos {
            let Assigned::Positive(g) = assigned[i] else {
                unreachable!("sampled positives are positive")
            };
            let class = target.labels[g];
            out.positives.push(Positive {
                row: out.rois.len(),
                class,
                target: g,
                matched: target.boxes[g],
            });
            out.rois.push(Roi {
                batch: b,
                bbox: bbox(i),
            });
            out.labels.push(config.column(Some(class)));
        }
        for &i in &neg {
            out.rois.push(Roi {
                batch: b,
                bbox: bbox(i),
            });
            out.labels.push(config.column(None));
        }
    }
    out
}

/// The RoI head's two losses.
#[derive(Debug, Clone)]
pub struct RoiLoss {
    /// Classification.
    pub cls: Tensor<1>,
    /// Boxes.
    pub bbox: Tensor<1>,
}

/// Losses of the sampled RoIs from the head's outputs on them.
pub fn roi_loss(
    config: &RoiHeadConfig,
    samples: &RoiSamples,
    logits: Tensor<2>,
    deltas: Tensor<2>,
) -> RoiLoss {
    let device = logits.device();
    let total = samples.rois.len().max(1) as f32;
    let labels: Vec<i64> = samples.labels.iter().map(|&l| l as i64).collect();
    let labels =
        Tensor::<1, Int>::from_data(TensorData::new(labels, [samples.labels.len()]), &device);
    let cls = cross_entropy_sum(logits, labels) / total;
    if samples.positives.is_empty() {
        return RoiLoss {
            cls,
            bbox: Tensor::zeros([1], &device),
        };
    }
    // The four delta columns of each positive's class: flat indices into deltas.
    let width = deltas.dims()[1];
    let flat: Vec<usize> = samples
        .positives
        .iter()
        .flat_map(|p| {
            let start = p.row * width + config.delta_offset(p.class);
            start..start + 4
        })
        .collect();
    let p = samples.positives.len();
    let k = deltas.dims()[0];
    let predicted = deltas
        .reshape([k * width])
        .select(0, indices(&flat, &device))
        .reshape([p, 4]);
    let reference: Vec<[f32; 4]> = samples
        .positives
        .iter()
        .map(|p| samples.rois[p.row].bbox)
        .collect();
    let matched: Vec<[f32; 4]> = samples.positives.iter().map(|p| p.matched).collect();
    let wanted = config.coder.encode(
        boxes_tensor(&reference, &device),
        boxes_tensor(&matched, &device),
    );
    let sum = match config.smooth_l1_beta {
        Some(beta) => smooth_l1_sum(predicted, wanted, beta),
        None => l1_sum(predicted, wanted),
    };
    RoiLoss {
        cls,
        bbox: sum / total,
    }
}

/// One detection in resized-image pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// `(x1, y1, x2, y2)`.
    pub bbox: [f32; 4],
    /// Class probability.
    pub score: f32,
    /// 0-based class.
    pub class: usize,
    /// Mask R-CNN: the `M × M` mask probabilities of its class (row-major), to paste back at
    /// the box with [`crate::paste`].
    pub mask: Option<Vec<f32>>,
}

/// Test-time detections of one image from its proposals' head outputs.
pub fn detections(
    config: &RoiHeadConfig,
    proposals: Tensor<2>,
    logits: Tensor<2>,
    deltas: Tensor<2>,
    image_size: (usize, usize),
) -> Vec<Detection> {
    let device = logits.device();
    let k = proposals.dims()[0];
    let c = config.classes;
    if k == 0 {
        return Vec::new();
    }
    let probs = softmax(logits, 1);
    // Every (proposal, class) pair: decode the class's deltas against the proposal.
    let cols: Vec<usize> = (0..c).map(|class| config.column(Some(class))).collect();
    let scores = probs.select(1, indices(&cols, &device)).reshape([k * c]);
    let offsets: Vec<usize> = (0..c)
        .flat_map(|class| {
            let o = config.delta_offset(class);
            o..o + 4
        })
        .collect();
    let class_deltas = deltas
        .select(1, indices(&offsets, &device))
        .reshape([k * c, 4]);
    let reference = proposals
        .reshape([k, 1, 4])
        .expand([k, c, 4])
        .reshape([k * c, 4]);
    let boxes = config
        .coder
        .decode(reference, class_deltas, Some(image_size));
    let scores_host = host_f32(scores.clone());
    let big: Vec<bool> = large_enough(boxes.clone(), config.min_size)
        .into_data()
        .try_to_vec::<bool>()
        .expect("a bool tensor");
    let candidates: Vec<usize> = (0..k * c)
        .filter(|&i| scores_host[i] > config.score_threshold && big[i])
        .collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    let idx = indices(&candidates, &device);
    let boxes = boxes.select(0, idx.clone());
    let scores = scores.select(0, idx);
    let classes: Vec<i64> = candidates.iter().map(|&i| (i % c) as i64).collect();
    let groups =
        Tensor::<1, Int>::from_data(TensorData::new(classes.clone(), [classes.len()]), &device);
    let keep = host_i64(batched_nms(boxes.clone(), scores, groups, config.nms_iou));
    let boxes = host_f32(boxes);
    keep.into_iter()
        .take(config.max_per_image)
        .map(|i| {
            let i = i as usize;
            Detection {
                bbox: [
                    boxes[4 * i],
                    boxes[4 * i + 1],
                    boxes[4 * i + 2],
                    boxes[4 * i + 3],
                ],
                score: scores_host[candidates[i]],
                class: classes[i] as usize,
                mask: None,
            }
        })
        .collect()
}

//! Faster R-CNN with FPN (Ren et al. 2015; Lin et al. 2017) on an ELA ResNet: backbone → FPN
//! (P2–P6) → RPN → RoIAlign on P2–P5 → box head. [`DetectorConfig::mmdet`] is the paper's
//! MMDetection 2.x setting, [`DetectorConfig::torchvision`] torchvision's
//! `fasterrcnn_resnet50_fpn` for importing its weights.

use burn::prelude::*;
use ela_model::AttentionKind;
use rand::rngs::StdRng;

use crate::DetectError;
use crate::backbone::{Backbone, BackboneConfig};
use crate::fpn::Fpn;
use crate::roi_head::{BoxHead, Detection, RoiHeadConfig, detections, roi_loss, sample_rois};
use crate::rpn::{RpnConfig, RpnHead, Targets, proposals, rpn_loss};

/// FPN channels.
pub const FPN_CHANNELS: usize = 256;
/// Box head FC width.
pub const HEAD_WIDTH: usize = 1024;

/// Everything that defines a detector.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    /// Backbone.
    pub backbone: BackboneConfig,
    /// RPN.
    pub rpn: RpnConfig,
    /// RoI box head.
    pub roi: RoiHeadConfig,
    /// FPN channels (256).
    pub fpn_channels: usize,
    /// Box head FC width (1024).
    pub head_width: usize,
}

impl DetectorConfig {
    /// MMDetection 2.x `faster_rcnn_r50_fpn_1x` for a depth, attention and class count.
    pub fn mmdet(depth: usize, attention: AttentionKind, classes: usize) -> Self {
        Self {
            backbone: BackboneConfig::mmdet(depth, attention),
            rpn: RpnConfig::mmdet(),
            roi: RoiHeadConfig::mmdet(classes),
            fpn_channels: FPN_CHANNELS,
            head_width: HEAD_WIDTH,
        }
    }

    /// torchvision's `fasterrcnn_resnet50_fpn` (`classes` without the background).
    pub fn torchvision(classes: usize) -> Self {
        Self {
            backbone: BackboneConfig {
                deep_stem: Some(false),
                ..BackboneConfig::mmdet(50, AttentionKind::None)
            },
            rpn: RpnConfig::torchvision(),
            roi: RoiHeadConfig::torchvision(classes),
            fpn_channels: FPN_CHANNELS,
            head_width: HEAD_WIDTH,
        }
    }

    /// Builds the detector.
    pub fn init(&self, device: &Device) -> Result<FasterRcnn, DetectError> {
        let backbone = self.backbone.init(device)?;
        let c = self.fpn_channels;
        let fpn = Fpn::new(&backbone.out_channels(), c, device);
        let roi = self.roi.align.output;
        Ok(FasterRcnn {
            backbone,
            fpn,
            rpn: RpnHead::new(c, self.rpn.anchors.per_location(), device),
            head: BoxHead::new(
                c * roi * roi,
                self.head_width,
                self.roi.classes,
                self.roi.regressed_classes(),
                device,
            ),
        })
    }
}

/// The detector's modules.
#[derive(Module, Debug)]
pub struct FasterRcnn {
    /// ResNet, C2–C5.
    pub backbone: Backbone,
    /// Feature pyramid.
    pub fpn: Fpn,
    /// Region proposal head.
    pub rpn: RpnHead,
    /// RoI box head.
    pub head: BoxHead,
}

/// The four losses of a training step and the backbone's attention weights.
#[derive(Debug, Clone)]
pub struct DetectorLosses {
    /// RPN objectness.
    pub rpn_cls: Tensor<1>,
    /// RPN boxes.
    pub rpn_bbox: Tensor<1>,
    /// RoI classification.
    pub cls: Tensor<1>,
    /// RoI boxes.
    pub bbox: Tensor<1>,
    /// Per backbone block: attention weights when collected (see `ela-model`).
    pub attention: Vec<Option<Tensor<4>>>,
}

impl DetectorLosses {
    /// Their sum, what is minimized.
    pub fn total(&self) -> Tensor<1> {
        self.rpn_cls.clone() + self.rpn_bbox.clone() + self.cls.clone() + self.bbox.clone()
    }
}

impl FasterRcnn {
    /// Parameters as PyTorch counts them, frozen or not (the backbone's unused classifier
    /// excluded).
    pub fn parameter_count(&self) -> usize {
        self.backbone.parameter_count()
            + self.fpn.num_params()
            + self.rpn.num_params()
            + self.head.num_params()
    }

    /// Parameters that train: without the frozen stem and stages (what MMDetection's
    /// `get_flops.py` reports, and so the paper's Table 5).
    pub fn trainable_parameter_count(&self) -> usize {
        self.parameter_count() - self.backbone.frozen_parameter_count()
    }

    /// P2–P6 and the backbone's attention weights.
    pub fn features(
        &self,
        images: Tensor<4>,
        collect: bool,
    ) -> (Vec<Tensor<4>>, Vec<Option<Tensor<4>>>) {
        let out = self.backbone.forward(images, collect);
        (self.fpn.forward(out.stages), out.attention)
    }

    /// Training losses of a batch: `images` `[B, 3, H, W]` (padded), each image's size before
    /// padding and its ground truth.
    pub fn losses(
        &self,
        config: &DetectorConfig,
        images: Tensor<4>,
        sizes: &[(usize, usize)],
        targets: &[Targets],
        collect_attention: bool,
        rng: &mut StdRng,
    ) -> DetectorLosses {
        let (pyramid, attention) = self.features(images, collect_attention);
        let rpn_out = self.rpn.forward(&pyramid);
        let anchors = config.rpn.anchors(&rpn_out.levels);
        let rpn = rpn_loss(&config.rpn, &rpn_out, &anchors, sizes, targets, rng);
        let props: Vec<Tensor<2>> = sizes
            .iter()
            .enumerate()
            .map(|(b, size)| proposals(&config.rpn, &rpn_out, &anchors, b, *size, true).0)
            .collect();
        let samples = sample_rois(&config.roi, &props, targets, rng);
        let levels = config.roi.align.strides.len();
        let feats = config.roi.align.forward(&pyramid[..levels], &samples.rois);
        let (logits, deltas) = self.head.forward(feats);
        let roi = roi_loss(&config.roi, &samples, logits, deltas);
        DetectorLosses {
            rpn_cls: rpn.cls,
            rpn_bbox: rpn.bbox,
            cls: roi.cls,
            bbox: roi.bbox,
            attention,
        }
    }

    /// Detections of every image (in the pixels of the images as given).
    pub fn detect(
        &self,
        config: &DetectorConfig,
        images: Tensor<4>,
        sizes: &[(usize, usize)],
    ) -> Vec<Vec<Detection>> {
        let (pyramid, _) = self.features(images, false);
        let rpn_out = self.rpn.forward(&pyramid);
        let anchors = config.rpn.anchors(&rpn_out.levels);
        let levels = config.roi.align.strides.len();
        sizes
            .iter()
            .enumerate()
            .map(|(b, size)| {
                let (props, _) = proposals(&config.rpn, &rpn_out, &anchors, b, *size, false);
                let rois: Vec<crate::Roi> = crate::nms::host_f32(props.clone())
                    .chunks_exact(4)
                    .map(|c| crate::Roi {
                        batch: b,
                        bbox: [c[0], c[1], c[2], c[3]],
                    })
                    .collect();
                let feats = config.roi.align.forward(&pyramid[..levels], &rois);
                let (logits, deltas) = self.head.forward(feats);
                detections(&config.roi, props, logits, deltas, *size)
            })
            .collect()
    }
}

/// ELA prunes the backbone's retrievals: the detector delegates to its ResNet.
impl ela_model::Prunable for FasterRcnn {
    fn layout(&self) -> ela_model::StageLayout {
        self.backbone.resnet.layout()
    }

    fn skip_flags(&self) -> Vec<bool> {
        self.backbone.resnet.skip_flags()
    }

    fn set_skip_flags(&self, flags: &[bool]) -> Result<(), ela_model::ModelError> {
        self.backbone.resnet.set_skip_flags(flags)
    }
}

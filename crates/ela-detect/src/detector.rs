//! The two-stage detectors of Table 5 on an ELA ResNet: Faster R-CNN with FPN (Ren et al. 2015;
//! Lin et al. 2017) — backbone → FPN (P2–P6) → RPN → RoIAlign on P2–P5 → box head — and Mask
//! R-CNN (He et al. 2017), which adds the mask branch of [`crate::mask_head`] on the positive
//! RoIs in training and on the detections at test. [`DetectorConfig::mmdet`] and
//! [`DetectorConfig::mmdet_mask`] are the paper's MMDetection 2.x settings,
//! [`DetectorConfig::torchvision`] and [`DetectorConfig::torchvision_mask`] torchvision's
//! `fasterrcnn_resnet50_fpn` and `maskrcnn_resnet50_fpn` for importing their weights.

use burn::prelude::*;
use ela_model::AttentionKind;
use rand::rngs::StdRng;

use crate::DetectError;
use crate::backbone::{Backbone, BackboneConfig};
use crate::fpn::{Fpn, FpnConfig};
use crate::mask_head::{
    MaskHead, MaskHeadConfig, MaskSample, map_count, mask_loss, mask_probabilities,
};
use crate::roi_align::Roi;
use crate::roi_head::{
    BoxHead, BoxHeadConfig, Detection, RoiHeadConfig, RoiSamples, detections, roi_loss, sample_rois,
};
use crate::rpn::{RpnConfig, RpnHead, RpnHeadConfig, Targets, proposals, rpn_loss};

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
    /// Mask R-CNN's mask branch; `None` for Faster R-CNN.
    pub mask: Option<MaskHeadConfig>,
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
            mask: None,
        }
    }

    /// MMDetection 2.x `mask_rcnn_r50_fpn_1x`: Faster R-CNN's setting with low-quality RoI
    /// matches and the mask branch.
    pub fn mmdet_mask(depth: usize, attention: AttentionKind, classes: usize) -> Self {
        Self {
            roi: RoiHeadConfig::mmdet_mask(classes),
            mask: Some(MaskHeadConfig::mmdet()),
            ..Self::mmdet(depth, attention, classes)
        }
    }

    /// torchvision's `maskrcnn_resnet50_fpn` (`classes` without the background).
    pub fn torchvision_mask(classes: usize) -> Self {
        Self {
            mask: Some(MaskHeadConfig::torchvision()),
            ..Self::torchvision(classes)
        }
    }

    /// Mask R-CNN or Faster R-CNN.
    pub fn name(&self) -> &'static str {
        if self.mask.is_some() {
            "Mask R-CNN"
        } else {
            "Faster R-CNN"
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
            mask: None,
        }
    }

    /// Builds the detector.
    pub fn init(&self, device: &Device) -> Result<Detector, DetectError> {
        let backbone = self.backbone.init(device)?;
        let c = self.fpn_channels;
        let fpn = FpnConfig::new(backbone.out_channels(), c).init(device);
        let roi = self.roi.align.output;
        let mask = self
            .mask
            .as_ref()
            .map(|m| m.init(c, map_count(self.roi.background, self.roi.classes), device));
        Ok(Detector {
            config: self.clone(),
            backbone,
            fpn,
            rpn: RpnHeadConfig::new(c, self.rpn.anchors.per_location()).init(device),
            head: BoxHeadConfig::new(
                c * roi * roi,
                self.head_width,
                self.roi.classes,
                self.roi.regressed_classes(),
            )
            .init(device),
            mask,
        })
    }
}

/// The detector: Faster R-CNN, or Mask R-CNN when it has a mask branch, with the settings it
/// was built from.
#[derive(Module, Debug)]
pub struct Detector {
    /// What the detector was built from: its training and test settings.
    #[module(skip)]
    pub config: DetectorConfig,
    /// ResNet, C2–C5.
    pub backbone: Backbone,
    /// Feature pyramid.
    pub fpn: Fpn,
    /// Region proposal head.
    pub rpn: RpnHead,
    /// RoI box head.
    pub head: BoxHead,
    /// Mask R-CNN's mask branch.
    pub mask: Option<MaskHead>,
}

/// The losses of a training step (four, five with masks) and the backbone's attention weights.
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
    /// Mask R-CNN: the mask loss.
    pub mask: Option<Tensor<1>>,
    /// Per backbone block: attention weights when collected (see `ela-model`).
    pub attention: Vec<Option<Tensor<4>>>,
}

impl DetectorLosses {
    /// Their sum, what is minimized.
    pub fn total(&self) -> Tensor<1> {
        let boxes =
            self.rpn_cls.clone() + self.rpn_bbox.clone() + self.cls.clone() + self.bbox.clone();
        match &self.mask {
            Some(mask) => boxes + mask.clone(),
            None => boxes,
        }
    }
}

impl Detector {
    /// Parameters as PyTorch counts them, frozen or not (the backbone's unused classifier
    /// excluded).
    pub fn parameter_count(&self) -> usize {
        self.backbone.parameter_count()
            + self.fpn.num_params()
            + self.rpn.num_params()
            + self.head.num_params()
            + self.mask.as_ref().map_or(0, |m| m.num_params())
    }

    /// Parameters that train: without the frozen stem and stages (what MMDetection's
    /// `get_flops.py` reports, and so the paper's Table 5).
    pub fn trainable_parameter_count(&self) -> usize {
        self.parameter_count() - self.backbone.frozen_parameter_count()
    }

    /// P2–P6 and the backbone's attention weights.
    ///
    /// # Shapes
    /// - `images`: `[batch, 3, height, width]`
    /// - output: level l of P2–P6 is `[batch, fpn_channels, height / 2^(l+2), width / 2^(l+2)]`
    ///   (rounded up); attention as `ElaResNet::forward_with_attention` returns it
    pub fn features(
        &self,
        images: Tensor<4>,
        collect: bool,
    ) -> (Vec<Tensor<4>>, Vec<Option<Tensor<4>>>) {
        let out = self.backbone.forward(images, collect);
        (self.fpn.forward(out.stages), out.attention)
    }

    /// Training losses of a batch of images with their ground truth; the backbone's attention
    /// weights too with `collect_attention`. RoI and anchor sampling draw from `rng`.
    ///
    /// A Mask R-CNN needs a mask per ground-truth box: an image whose targets lack one is an
    /// error naming it.
    ///
    /// # Shapes
    /// - `images`: `[batch, 3, height, width]`, padded; `sizes[b]` is image b's `(height, width)`
    ///   before padding
    /// - `targets[b]`: image b's boxes `[x1, y1, x2, y2]` in its pixels, labels and masks
    pub fn losses(
        &self,
        images: Tensor<4>,
        sizes: &[(usize, usize)],
        targets: &[Targets],
        collect_attention: bool,
        rng: &mut StdRng,
    ) -> Result<DetectorLosses, DetectError> {
        let config = &self.config;
        if config.mask.is_some()
            && let Some((b, t)) = targets
                .iter()
                .enumerate()
                .find(|(_, t)| t.masks.len() != t.boxes.len())
        {
            return Err(DetectError::Invalid(format!(
                "Mask R-CNN needs a mask per box: image {b} of the batch has {} boxes but {} masks",
                t.boxes.len(),
                t.masks.len()
            )));
        }
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
        let mask = self.mask_loss(&pyramid[..levels], &samples, targets);
        Ok(DetectorLosses {
            rpn_cls: rpn.cls,
            rpn_bbox: rpn.bbox,
            cls: roi.cls,
            bbox: roi.bbox,
            mask,
            attention,
        })
    }

    /// The mask branch's loss on the positive RoIs (`None` without a mask branch; every target
    /// has its mask, see [`Detector::losses`]).
    fn mask_loss(
        &self,
        levels: &[Tensor<4>],
        samples: &RoiSamples,
        targets: &[Targets],
    ) -> Option<Tensor<1>> {
        let config = &self.config;
        let (head, mask_config) = (self.mask.as_ref()?, config.mask.as_ref()?);
        let device = levels[0].device();
        let positives: Vec<MaskSample<'_>> = samples
            .positives
            .iter()
            .filter_map(|p| {
                let roi = samples.rois[p.row];
                let mask = targets[roi.batch].masks.get(p.target)?;
                Some(MaskSample {
                    roi,
                    class: p.class,
                    mask,
                })
            })
            .collect();
        if positives.is_empty() {
            return Some(Tensor::zeros([1], &device));
        }
        let rois: Vec<Roi> = positives.iter().map(|s| s.roi).collect();
        let logits = head.forward(mask_config.align.forward(levels, &rois));
        Some(mask_loss(
            mask_config,
            config.roi.background,
            &positives,
            logits,
        ))
    }

    /// Mask R-CNN at test: the mask probabilities of each detection's class.
    fn attach_masks(&self, levels: &[Tensor<4>], batch: usize, detections: &mut [Detection]) {
        let config = &self.config;
        let (Some(head), Some(mask_config)) = (self.mask.as_ref(), config.mask.as_ref()) else {
            return;
        };
        if detections.is_empty() {
            return;
        }
        let rois: Vec<Roi> = detections
            .iter()
            .map(|d| Roi {
                batch,
                bbox: d.bbox,
            })
            .collect();
        let classes: Vec<usize> = detections.iter().map(|d| d.class).collect();
        let logits = head.forward(mask_config.align.forward(levels, &rois));
        for (d, probs) in
            detections
                .iter_mut()
                .zip(mask_probabilities(config.roi.background, logits, &classes))
        {
            d.mask = Some(probs);
        }
    }

    /// Detections of every image, in the pixels of the images as given (boxes, classes,
    /// scores, and with a mask branch each detection's mask probabilities).
    ///
    /// # Shapes
    /// - `images`: `[batch, 3, height, width]`, padded; `sizes[b]` is image b's `(height, width)`
    ///   before padding
    pub fn detect(&self, images: Tensor<4>, sizes: &[(usize, usize)]) -> Vec<Vec<Detection>> {
        let config = &self.config;
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
                let mut dets = detections(&config.roi, props, logits, deltas, *size);
                self.attach_masks(&pyramid[..levels], b, &mut dets);
                dets
            })
            .collect()
    }
}

/// ELA prunes the backbone's retrievals: the detector delegates to its ResNet.
impl ela_model::Prunable for Detector {
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

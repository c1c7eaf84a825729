//! Mask R-CNN's mask branch (He et al. 2017; MMDetection's `FCNMaskHead`, torchvision's
//! `MaskRCNNHeads` + `MaskRCNNPredictor`): 14 × 14 RoIAlign features → four 3 × 3 convolutions
//! of 256 with ReLU → a 2 × 2 stride-2 transposed convolution with ReLU → a 1 × 1 convolution to
//! one 28 × 28 logit map per class. Its targets are the ground-truth masks cut into each positive
//! RoI by RoIAlign at 28 × 28; its loss is the binary cross-entropy of the map of the RoI's class,
//! averaged over the positives' pixels. At test the map of each detection's class becomes
//! probabilities, pasted back at the image's size by [`crate::paste`].

use burn::nn::Initializer;
use burn::nn::conv::{Conv2d, ConvTranspose2d, ConvTranspose2dConfig};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::{relu, sigmoid};
use ela_data::masks::BitMask;

use crate::init::{Init, conv};
use crate::losses::binary_cross_entropy_with_logits;
use crate::nms::{host_f32, indices};
use crate::paste::PasteRule;
use crate::roi_align::{MultiLevelRoiAlign, Roi, RoiAlignConfig, roi_align_plane};
use crate::roi_head::Background;

/// The mask branch's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskHeadConfig {
    /// RoIAlign over P2–P5 (14 × 14).
    pub align: MultiLevelRoiAlign,
    /// Side of the predicted maps and the targets (28).
    pub size: usize,
    /// 3 × 3 convolutions (4).
    pub convs: usize,
    /// Their channels (256).
    pub channels: usize,
    /// Targets binarized at 0.5 after RoIAlign (MMDetection) or kept soft (torchvision).
    pub binarize_targets: bool,
    /// Test: how masks are pasted back.
    pub paste: PasteRule,
    /// Test: the binarization threshold (0.5).
    pub threshold: f32,
}

impl MaskHeadConfig {
    /// MMDetection 2.x's `mask_rcnn_r50_fpn_1x`.
    pub fn mmdet() -> Self {
        Self {
            align: MultiLevelRoiAlign {
                output: 14,
                strides: vec![4, 8, 16, 32],
                torchvision: false,
            },
            size: 28,
            convs: 4,
            channels: 256,
            binarize_targets: true,
            paste: PasteRule::Mmdet,
            threshold: 0.5,
        }
    }

    /// torchvision's `maskrcnn_resnet50_fpn`.
    pub fn torchvision() -> Self {
        Self {
            align: MultiLevelRoiAlign {
                torchvision: true,
                ..Self::mmdet().align
            },
            binarize_targets: false,
            paste: PasteRule::Torchvision,
            ..Self::mmdet()
        }
    }

    /// Builds the branch for `in_channels` features and `maps` output maps (the classes, plus
    /// torchvision's background map).
    pub fn init(&self, in_channels: usize, maps: usize, device: &Device) -> MaskHead {
        let convs = (0..self.convs)
            .map(|i| {
                let input = if i == 0 { in_channels } else { self.channels };
                conv([input, self.channels], 3, Init::KaimingFanOut, device)
            })
            .collect();
        let c = self.channels;
        let mut upsample = ConvTranspose2dConfig::new([c, c], [2, 2])
            .with_stride([2, 2])
            .init(device);
        // Burn's transposed convolution passes no fans to its initializer: give them here
        // (PyTorch's fan-out of a `[in, out, 2, 2]` weight is `in · 4`).
        upsample.weight = Init::KaimingFanOut.initializer().init_with(
            [c, c, 2, 2],
            Some(c * 4),
            Some(c * 4),
            device,
        );
        upsample.bias = Some(Initializer::Zeros.init([c], device));
        MaskHead {
            convs,
            upsample,
            logits: conv([self.channels, maps], 1, Init::KaimingFanOut, device),
        }
    }
}

/// The mask branch's layers.
#[derive(Module, Debug)]
pub struct MaskHead {
    /// The 3 × 3 convolutions.
    pub convs: Vec<Conv2d>,
    /// 2 × upsampling.
    pub upsample: ConvTranspose2d,
    /// One map per class.
    pub logits: Conv2d,
}

impl MaskHead {
    /// One logit map per class of every RoI.
    ///
    /// # Shapes
    /// - `features`: `[rois, channels, 14, 14]`
    /// - output: `[rois, maps, 28, 28]`
    pub fn forward(&self, features: Tensor<4>) -> Tensor<4> {
        let x = self.convs.iter().fold(features, |x, c| relu(c.forward(x)));
        self.logits.forward(relu(self.upsample.forward(x)))
    }
}

/// The map a 0-based class is predicted in.
pub fn map_of(background: Background, class: usize) -> usize {
    match background {
        Background::Last => class,
        Background::First => class + 1,
    }
}

/// Maps of a mask head for `classes` object classes.
pub fn map_count(background: Background, classes: usize) -> usize {
    match background {
        Background::Last => classes,
        Background::First => classes + 1,
    }
}

/// One positive RoI of the mask branch: its image, its box in that image's pixels, its class
/// and the ground-truth mask it was matched to.
#[derive(Debug, Clone, Copy)]
pub struct MaskSample<'a> {
    /// RoI (image and proposal box).
    pub roi: Roi,
    /// 0-based class.
    pub class: usize,
    /// The matched ground truth's mask, at the image's (resized) size.
    pub mask: &'a BitMask,
}

/// The `size × size` target of each sample: its mask cut out by RoIAlign (MMCV's aligned,
/// adaptive sampling for MMDetection, binarized at 0.5; torchvision's unaligned, adaptive, soft).
pub fn mask_targets(config: &MaskHeadConfig, samples: &[MaskSample<'_>]) -> Vec<f32> {
    let align = RoiAlignConfig {
        output: (config.size, config.size),
        spatial_scale: 1.0,
        sampling_ratio: 0,
        aligned: !config.align.torchvision,
    };
    let mut out = Vec::with_capacity(samples.len() * config.size * config.size);
    for s in samples {
        let plane: Vec<f32> = s.mask.data.iter().map(|&v| f32::from(v)).collect();
        let cut = roi_align_plane(&plane, (s.mask.height, s.mask.width), s.roi.bbox, &align);
        if config.binarize_targets {
            out.extend(cut.into_iter().map(|v| if v >= 0.5 { 1.0 } else { 0.0 }));
        } else {
            out.extend(cut);
        }
    }
    out
}

/// The mask loss: mean binary cross-entropy of each sample's class map against its target.
pub fn mask_loss(
    config: &MaskHeadConfig,
    background: Background,
    samples: &[MaskSample<'_>],
    logits: Tensor<4>,
) -> Tensor<1> {
    let device = logits.device();
    if samples.is_empty() {
        return logits.sum() * 0.0;
    }
    let channels: Vec<usize> = samples
        .iter()
        .map(|s| map_of(background, s.class))
        .collect();
    let [k, maps, h, w] = logits.dims();
    let rows: Vec<usize> = channels
        .iter()
        .enumerate()
        .map(|(i, &c)| i * maps + c)
        .collect();
    let picked = logits
        .reshape([k * maps, h * w])
        .select(0, indices(&rows, &device))
        .reshape([k * h * w]);
    let targets = mask_targets(config, samples);
    let targets = Tensor::<1>::from_data(TensorData::new(targets, [k * h * w]), &device);
    binary_cross_entropy_with_logits(picked, targets).mean()
}

/// Test: the probability maps (`size · size` each, row-major) of each detection's class.
pub fn mask_probabilities(
    background: Background,
    logits: Tensor<4>,
    classes: &[usize],
) -> Vec<Vec<f32>> {
    let [k, maps, h, w] = logits.dims();
    if k == 0 {
        return Vec::new();
    }
    let device = logits.device();
    let rows: Vec<usize> = classes
        .iter()
        .enumerate()
        .map(|(i, &c)| i * maps + map_of(background, c))
        .collect();
    let probs = sigmoid(
        logits
            .reshape([k * maps, h * w])
            .select(0, indices(&rows, &device)),
    );
    host_f32(probs)
        .chunks_exact(h * w)
        .map(<[f32]>::to_vec)
        .collect()
}

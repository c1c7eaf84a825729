//! Importing torchvision's Faster R-CNN or Mask R-CNN (`fasterrcnn_resnet50_fpn`'s or
//! `maskrcnn_resnet50_fpn`'s `state_dict`, a `.pth` file as `torch.save` writes it, or the same
//! tensors in a `.safetensors` file) into a detector built with
//! [`DetectorConfig::torchvision`](crate::DetectorConfig) or `torchvision_mask`:
//! torchvision's names mapped onto ours (`backbone.body.*` → the ResNet, `backbone.fpn.
//! inner_blocks/layer_blocks` → `fpn.lateral/output`, `rpn.head.*` → `rpn.*`, `roi_heads.
//! box_head/box_predictor` → `head.*`, `roi_heads.mask_head/mask_predictor` → `mask.*`); burn-store's PyTorch adapter renames BatchNorm
//! `weight/bias` to `gamma/beta` and transposes linear weights. Every parameter must be found
//! and every tensor of the file used, or the import fails naming what did not match.

use std::path::Path;

use burn::store::{ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore};

use crate::DetectError;
use crate::Detector;
use crate::backbone::apply_settings;

/// torchvision's names → ours.
const FROM_TORCHVISION: [(&str, &str); 14] = [
    (r"^backbone\.body\.", "backbone.resnet."),
    (r"\.downsample\.0\.", ".downsample.conv."),
    (r"\.downsample\.1\.", ".downsample.bn."),
    (
        r"^backbone\.fpn\.inner_blocks\.(\d+)\.0\.",
        "fpn.lateral.$1.",
    ),
    (
        r"^backbone\.fpn\.layer_blocks\.(\d+)\.0\.",
        "fpn.output.$1.",
    ),
    (r"^rpn\.head\.conv\.0\.0\.", "rpn.conv."),
    (r"^rpn\.head\.cls_logits\.", "rpn.cls."),
    (r"^rpn\.head\.bbox_pred\.", "rpn.reg."),
    (r"^roi_heads\.box_head\.", "head."),
    (r"^roi_heads\.box_predictor\.cls_score\.", "head.cls."),
    (r"^roi_heads\.box_predictor\.bbox_pred\.", "head.reg."),
    (r"^roi_heads\.mask_head\.(\d+)\.0\.", "mask.convs.$1."),
    (
        r"^roi_heads\.mask_predictor\.conv5_mask\.",
        "mask.upsample.",
    ),
    (
        r"^roi_heads\.mask_predictor\.mask_fcn_logits\.",
        "mask.logits.",
    ),
];

impl Detector {
    /// Loads a torchvision Faster R-CNN or Mask R-CNN `state_dict`; returns the number of tensors
    /// applied.
    /// The backbone's frozen stages and frozen statistics are kept as configured.
    pub fn load_torchvision(&mut self, path: &Path) -> Result<usize, DetectError> {
        let err = |message: String| DetectError::File {
            path: path.to_path_buf(),
            what: "torchvision detector weights",
            message,
        };
        let safetensors = ela_model::weights::is_safetensors(path)?;
        let frozen = self.backbone.frozen_stages;
        let result = if safetensors {
            let mut store = FROM_TORCHVISION
                .iter()
                .fold(SafetensorsStore::from_file(path), |s, (a, b)| {
                    s.with_key_remapping(*a, *b)
                })
                .with_from_adapter(PyTorchToBurnAdapter)
                .map_indices_contiguous(false)
                .allow_partial(true)
                .validate(false);
            self.load_from(&mut store).map_err(|e| err(e.to_string()))?
        } else {
            let mut store = FROM_TORCHVISION
                .iter()
                .fold(PytorchStore::from_file(path), |s, (a, b)| {
                    s.with_key_remapping(*a, *b)
                })
                .map_indices_contiguous(false)
                .allow_partial(true)
                .validate(false);
            self.load_from(&mut store).map_err(|e| err(e.to_string()))?
        };
        if !result.errors.is_empty() {
            return Err(err(format!("{:?}", result.errors)));
        }
        let missing: Vec<&String> = result
            .missing
            .iter()
            .map(|(p, _)| p)
            .filter(|p| !p.starts_with("backbone.resnet.fc."))
            .collect();
        let unused: Vec<&String> = result
            .unused
            .iter()
            .filter(|k| !k.ends_with("num_batches_tracked"))
            .collect();
        if !missing.is_empty() || !unused.is_empty() {
            return Err(err(format!(
                "does not match the detector: missing {missing:?}, unused {unused:?}"
            )));
        }
        let resnet = self.backbone.resnet.clone();
        self.backbone.resnet = apply_settings(resnet, frozen, true);
        Ok(result.applied.len())
    }
}

//! `ela-detect`: object detection on the ELA ResNets — Faster R-CNN and Mask R-CNN with FPN in
//! the paper's MMDetection 2.x setting (§4.2, Table 5) and torchvision presets for weight import.
//!
//! Owns: box operations (IoU, NMS, the delta coder), RoIAlign, anchors, FPN, RPN, the RoI box
//! head, the mask branch and mask pasting, the detector, and COCO evaluation. Knows nothing of training loops, run directories or
//! reports: the training crate drives it, and the records crate stores what it returns.

pub mod anchors;
pub mod assign;
pub mod backbone;
pub mod boxes;
pub mod coder;
pub mod detector;
pub mod eval;
pub mod fpn;
mod init;
pub mod losses;
pub mod mask_head;
pub mod nms;
pub mod paste;
pub mod roi_align;
pub mod roi_head;
pub mod rpn;
pub mod weights;

mod error;

pub use boxes::{box_area, box_iof, box_iou, clip_boxes};
pub use coder::DeltaCoder;
pub use detector::{Detector, DetectorConfig, DetectorLosses};
pub use error::DetectError;
pub use eval::{CocoStats, IouType, evaluate, evaluate_files};
pub use fpn::{Fpn, FpnConfig};
pub use mask_head::MaskHeadConfig;
pub use nms::{batched_nms, nms};
pub use paste::{PasteRule, paste_mask, paste_probabilities};
pub use roi_align::{MultiLevelRoiAlign, Roi, RoiAlignConfig, roi_align};
pub use roi_head::{BoxHead, BoxHeadConfig, Detection};
pub use rpn::{RpnHead, RpnHeadConfig, Targets};

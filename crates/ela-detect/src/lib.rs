//! `ela-detect`: object detection on the ELA ResNets — Faster R-CNN with FPN in the paper's
//! MMDetection 2.x setting (§4.2, Table 5) and a torchvision preset for weight import.
//!
//! Owns: box operations (IoU, NMS, the delta coder), RoIAlign, anchors, FPN, RPN, the RoI box
//! head, the detector, and COCO evaluation. Knows nothing of training loops, run directories or
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
pub mod nms;
pub mod roi_align;
pub mod roi_head;
pub mod rpn;
pub mod weights;

mod error;

pub use boxes::{box_area, box_iof, box_iou, clip_boxes};
pub use coder::DeltaCoder;
pub use detector::{DetectorConfig, DetectorLosses, FasterRcnn};
pub use error::DetectError;
pub use eval::{CocoStats, IouType, evaluate, evaluate_files};
pub use nms::{batched_nms, nms};
pub use roi_align::{MultiLevelRoiAlign, Roi, RoiAlignConfig, roi_align};
pub use roi_head::Detection;
pub use rpn::Targets;

//! torchvision's COCO detectors (`fasterrcnn_resnet50_fpn`, `maskrcnn_resnet50_fpn`) as a
//! [`TrainedDetector`]: their `state_dict` (`torch.save(model.state_dict())`'s `.pth`, or
//! `.safetensors`) loaded into the torchvision preset of the detector, with torchvision's input
//! transform (`GeneralizedRCNNTransform`) and its labels, COCO's category ids 1–90.

use std::path::Path;

use anyhow::{Context, Result};
use burn::prelude::*;
use ela_data::coco::CocoCategory;
use ela_data::detection::DetectionPipeline;
use ela_detect::DetectorConfig;

use crate::infer::TrainedDetector;
use crate::model::DetectionModel;

/// The architectures `--arch` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum TorchvisionArch {
    /// `torchvision.models.detection.fasterrcnn_resnet50_fpn`.
    FasterrcnnResnet50Fpn,
    /// `torchvision.models.detection.maskrcnn_resnet50_fpn`.
    MaskrcnnResnet50Fpn,
}

/// The names of torchvision's labels 1–90 (COCO's category ids; `N/A` where COCO has none), as
/// `FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]` lists them after the background.
pub const COCO_LABELS: [&str; 90] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "N/A",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "N/A",
    "backpack",
    "umbrella",
    "N/A",
    "N/A",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "N/A",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "N/A",
    "dining table",
    "N/A",
    "N/A",
    "toilet",
    "N/A",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "N/A",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// COCO's categories as torchvision labels them: id i + 1 is label i + 1.
pub fn coco_categories() -> Vec<CocoCategory> {
    COCO_LABELS
        .iter()
        .enumerate()
        .map(|(i, name)| CocoCategory {
            id: i as u64 + 1,
            name: name.to_string(),
            supercategory: String::new(),
        })
        .collect()
}

impl TrainedDetector {
    /// torchvision's `arch` with the weights in `path`, on `device`: a file whose tensors do not
    /// fit the architecture is an error naming the file and what did not match.
    pub fn torchvision(arch: TorchvisionArch, path: &Path, device: &Device) -> Result<Self> {
        let config = match arch {
            TorchvisionArch::FasterrcnnResnet50Fpn => DetectorConfig::torchvision(90),
            TorchvisionArch::MaskrcnnResnet50Fpn => DetectorConfig::torchvision_mask(90),
        };
        let mut detector = config.init(device)?;
        detector
            .load_torchvision(path)
            .with_context(|| format!("--weights with --arch {}", arch.name()))?;
        let categories = coco_categories();
        let ids = categories.iter().map(|c| c.id).collect();
        Ok(Self {
            model: DetectionModel::new(detector, ids),
            pipeline: DetectionPipeline::torchvision(),
            categories,
            files: vec![path.to_path_buf()],
            run: None,
        })
    }
}

impl TorchvisionArch {
    /// Its torchvision name.
    pub fn name(self) -> &'static str {
        match self {
            Self::FasterrcnnResnet50Fpn => "fasterrcnn_resnet50_fpn",
            Self::MaskrcnnResnet50Fpn => "maskrcnn_resnet50_fpn",
        }
    }
}

//! The flags of the commands that are the binary's own (training's, benchmarks' and
//! reproduction's are their crates').

use std::path::PathBuf;

use anyhow::{Context, Result};
use ela_data::fetch::FetchName;
use ela_model::registry::ModelEntry;
use ela_model::{Arch, ElaResNetConfig};
use ela_train::backend::Backend;
use ela_train::classify::{DatasetName, Method, PruneArgs};
use ela_train::runtime::TaskName;

#[derive(clap::Args)]
pub struct DetectArgs {
    /// A detection run's directory, or a model file (`model.bpk`, `checkpoint/model-K.bpk`)
    /// inside one; with --arch, a torchvision `state_dict` (`.pth` as `torch.save` writes it,
    /// or `.safetensors`).
    #[arg(long)]
    pub weights: PathBuf,
    /// The torchvision detector the --weights are a `state_dict` of; it runs as torchvision's
    /// model in eval mode does, its input transform included, and its labels are COCO's
    /// category ids.
    #[arg(long, value_enum)]
    pub arch: Option<ela_detect_train::torchvision::TorchvisionArch>,
    /// The image (PNG or JPEG).
    #[arg(long)]
    pub image: PathBuf,
    /// Write the picture with the detections here (PNG).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the detections here instead of printing them.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The picture shows detections scoring at least this.
    #[arg(long, default_value_t = 0.3)]
    pub show_threshold: f32,
    /// The image id written in the detections.
    #[arg(long, default_value_t = 0)]
    pub image_id: u64,
    /// Backend.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: Backend,
    /// Device index.
    #[arg(long, default_value_t = 0)]
    pub device: usize,
}

#[derive(clap::Args)]
pub struct EvalCocoArgs {
    /// COCO instances JSON (images, annotations, categories).
    #[arg(long)]
    pub gt: PathBuf,
    /// COCO results JSON: an array of {image_id, category_id, bbox | segmentation, score}.
    #[arg(long)]
    pub dt: PathBuf,
    /// Compare boxes (bbox) or masks (segm).
    #[arg(long, default_value = "bbox")]
    pub iou_type: ela_detect::IouType,
}

#[derive(clap::Args)]
pub struct AgreeArgs {
    /// The backend under test.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: Backend,
    /// Its device index.
    #[arg(long, default_value_t = 0)]
    pub device: usize,
    /// Compare with the CPU's values in this folder (made by --write-reference, on any
    /// machine) instead of computing them in this process.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Only compute the CPU's values of every case and write them into this folder.
    #[arg(long, conflicts_with = "reference")]
    pub write_reference: Option<PathBuf>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ReportArgs {
    /// The runs' task; default: theirs (every run must be of one task).
    #[arg(long, value_enum)]
    pub task: Option<TaskName>,
    /// Run directories of one task; with several, the report compares them.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Report directory (default: `report` inside the first run directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct FetchArgs {
    /// Dataset.
    #[arg(value_enum)]
    pub dataset: FetchName,
    /// Target directory; the dataset lands in DIR/<dataset> (where `train` looks by default).
    #[arg(long, default_value = "data")]
    pub dir: PathBuf,
    /// Base URL of a mirror holding the same file names.
    #[arg(long)]
    pub mirror: Option<String>,
    /// ImageNet: the folder holding ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar and
    /// ILSVRC2012_devkit_t12.tar.gz, as downloaded from image-net.org.
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// ImageNet: accept archives holding a part of ILSVRC2012 (the final count check then only
    /// requires that every image was placed).
    #[arg(long)]
    pub subset: bool,
}

#[derive(clap::Args)]
pub struct ModelArgs {
    /// A registered model (see `ela models`): sets --arch, --depth and --attention.
    #[arg(long)]
    pub model: Option<String>,
    /// ResNet family: cifar or imagenet.
    #[arg(long, default_value = "cifar")]
    pub arch: Arch,
    /// ResNet depth: 9n + 2 for cifar; 18, 34, 50, 101 or 152 for imagenet.
    #[arg(long, default_value_t = 20)]
    pub depth: usize,
    /// Layer attention (ela builds MRLA-B).
    #[arg(long, value_enum, default_value = "ela")]
    pub attention: Method,
    /// Classes of the head.
    #[arg(long, default_value_t = 10)]
    pub num_classes: usize,
    /// Input channels.
    #[arg(long, default_value_t = 3)]
    pub in_channels: usize,
    /// Channels per attention head. Default: the official code's (32 for ImageNet MRLA-L, 16
    /// otherwise).
    #[arg(long)]
    pub dim_per_head: Option<usize>,
}

impl ModelArgs {
    /// The registry's configuration (the official code's head size, stem and last-BN
    /// initialization), with --in-channels and --dim-per-head applied.
    pub fn config(&self) -> Result<ElaResNetConfig> {
        let entry = match &self.model {
            Some(name) => ela_model::registry::find(name).context("--model")?,
            None => ModelEntry::new(self.arch, self.depth, self.attention.attention(), false),
        };
        let config = entry
            .config(self.num_classes)
            .with_in_channels(self.in_channels);
        Ok(match self.dim_per_head {
            Some(d) => config.with_dim_per_head(d),
            None => config,
        })
    }
}

#[derive(clap::Args)]
pub struct PrunePlanArgs {
    /// KL log: a JSON array of per-block scores (null where none), or a run's pruning.json.
    #[arg(long)]
    pub kl: PathBuf,
    /// With a pruning.json: which window (1-based; default: the last).
    #[arg(long)]
    pub window: Option<usize>,
    #[command(flatten)]
    pub prune: PruneArgs,
}

#[derive(clap::Args)]
pub struct ForwardArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Weights (safetensors, PyTorch names).
    #[arg(long)]
    pub weights: PathBuf,
    /// Input safetensors holding `input` ([B, C, H, W], f32).
    #[arg(long)]
    pub input: PathBuf,
    /// Output safetensors to write `logits` to.
    #[arg(long)]
    pub output: PathBuf,
    /// Blocks to skip (overrides the flags stored with the weights), e.g. `1,3`.
    #[arg(long, value_delimiter = ',')]
    pub skip: Option<Vec<usize>>,
    /// Backend.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: Backend,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// The task; default: the run directory's, `detect` with --arch, `classify` with --model.
    #[arg(long, value_enum)]
    pub task: Option<TaskName>,
    /// A run directory of ours; or a weights file: torchvision's detector `state_dict` (`.pth`,
    /// `.safetensors`) with --arch, a classifier's (ours, an official MRLA checkpoint,
    /// torchvision's) with --model.
    #[arg(long)]
    pub weights: PathBuf,
    /// Detection: the torchvision architecture of --weights.
    #[arg(long, value_enum)]
    pub arch: Option<ela_detect_train::torchvision::TorchvisionArch>,
    /// Classification: the registered model of --weights (`ela models`: resnet50,
    /// resnet50_mrlab, …).
    #[arg(long)]
    pub model: Option<String>,
    /// Classification: the dataset. Default: the run's.
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetName>,
    /// The dataset's folder: detection, COCO 2017's (`annotations/instances_val2017.json`,
    /// `val2017/`) or the digit set's; classification, as `train --data-dir`. Default: the run's.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Evaluate the first N images (ImageNet: N spread over the classes). Default: the run's
    /// validation limit, else all.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Images per batch. Default: the run's, else 2 (detection) or 64 (classification).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Data-loader threads (classification).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Detection: where the scored detections are written (COCO results).
    #[arg(long, default_value = "eval-detections.json")]
    pub detections: PathBuf,
    /// Also write the printed JSON object here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Backend.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: Backend,
    /// Device index.
    #[arg(long, default_value_t = 0)]
    pub device: usize,
}

//! `ela bench --task detect --pytorch`: our Faster R-CNN R-50 FPN in torchvision's setting
//! (`DetectorConfig::torchvision`: plain ResNet-50, stem and `layer1` frozen, frozen BatchNorm
//! statistics, 91 labels) against torchvision's `fasterrcnn_resnet50_fpn` built the same way
//! (`bench/pytorch/detect.py`), on the same input size, batch and CPU threads, one after the
//! other in one run: the training step (forward, the four losses, backward, SGD) and inference
//! (eval mode). Medians over the rounds, and the Burn / PyTorch ratios.

use std::time::Instant;

use anyhow::Result;
use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use ela_detect::DetectorConfig;
use ela_train::backend;
use rand::{SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use crate::detect::{DetectBenchConfig, random_targets, size};
use crate::pytorch::script_json;

/// Labels of torchvision's COCO detectors: 90 classes and the background.
const CLASSES: usize = 90;

/// Median and every timed round of one measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timed {
    /// Median seconds.
    pub median: f64,
    /// Every timed round's seconds.
    pub steps: Vec<f64>,
}

/// What `bench/pytorch/detect.py` reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TorchvisionTimes {
    /// `pytorch <version>, torchvision <version>`.
    pub framework: String,
    /// Device and threads.
    pub device: String,
    /// Parameters of its model.
    pub parameters: usize,
    /// Training step.
    pub train: Timed,
    /// Inference.
    pub inference: Timed,
}

/// Ours and torchvision's, side by side.
#[derive(Debug, Clone, Serialize)]
pub struct DetectComparison {
    /// The setting, as text.
    pub setup: String,
    /// Our parameters.
    pub parameters: usize,
    /// Our training step.
    pub train: Timed,
    /// Our inference.
    pub inference: Timed,
    /// torchvision's.
    pub torchvision: TorchvisionTimes,
}

impl DetectComparison {
    /// A markdown table.
    pub fn table(&self) -> String {
        let t = &self.torchvision;
        format!(
            "{}\ntorchvision: {} ({}); {} parameters, ours {}\n\n\
             | pass | Burn s | torchvision s | Burn / torchvision |\n|---|---|---|---|\n\
             | training step | {:.3} | {:.3} | {:.2} |\n| inference | {:.3} | {:.3} | {:.2} |\n",
            self.setup,
            t.framework,
            t.device,
            t.parameters,
            self.parameters,
            self.train.median,
            t.train.median,
            self.train.median / t.train.median,
            self.inference.median,
            t.inference.median,
            self.inference.median / t.inference.median
        )
    }
}

fn timed(steps: Vec<f64>) -> Timed {
    let mut sorted = steps.clone();
    sorted.sort_by(f64::total_cmp);
    Timed {
        median: sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN),
        steps,
    }
}

/// Times ours, then runs torchvision's with `python` on the same setting.
pub fn run_against_torchvision(
    config: &DetectBenchConfig,
    python: &str,
) -> Result<DetectComparison> {
    let (h, w) = size(config)?;
    let device = backend::device(config.backend, config.device)?.autodiff();
    device.seed(config.seed);
    let mut model = DetectorConfig::torchvision(CLASSES).init(&device)?;
    let mut optim = SgdConfig::new().init();
    let images = Tensor::<4>::random(
        [config.batch_size, 3, h, w],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let mut rng = StdRng::seed_from_u64(config.seed);
    let targets = random_targets(config, (h, w), CLASSES, &mut rng);
    let sizes = vec![(h, w); config.batch_size];
    let (mut train, mut inference) = (Vec::new(), Vec::new());
    for round in 0..config.warmup + config.rounds {
        let mut step_rng = StdRng::seed_from_u64(config.seed + round as u64);
        let start = Instant::now();
        let losses = model.losses(images.clone(), &sizes, &targets, false, &mut step_rng)?;
        let grads = GradientsParams::from_grads(losses.total().backward(), &model);
        model = optim.step(1e-4, model, grads);
        let _: f32 = model.rpn.cls.weight.val().sum().into_scalar();
        let train_seconds = start.elapsed().as_secs_f64();
        let eval = model.valid();
        let start = Instant::now();
        let detections = eval.detect(images.clone().inner(), &sizes);
        let _ = detections.iter().map(Vec::len).sum::<usize>();
        if round >= config.warmup {
            train.push(train_seconds);
            inference.push(start.elapsed().as_secs_f64());
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let args: Vec<String> = [
        ("--size", format!("{h},{w}")),
        ("--batch-size", config.batch_size.to_string()),
        ("--objects", config.objects.to_string()),
        ("--rounds", config.rounds.to_string()),
        ("--warmup", config.warmup.to_string()),
        ("--threads", threads.to_string()),
        ("--seed", config.seed.to_string()),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_string(), value])
    .collect();
    let torchvision: TorchvisionTimes = script_json(python, "detect.py", &args)?;
    Ok(DetectComparison {
        setup: format!(
            "Faster R-CNN R-50 FPN, torchvision's setting, {} images of {h}x{w}, {} objects each, \
             backend {:?} ({threads} threads), {} rounds after {} warm-up",
            config.batch_size, config.objects, config.backend, config.rounds, config.warmup
        ),
        parameters: model.parameter_count(),
        train: timed(train),
        inference: timed(inference),
        torchvision,
    })
}

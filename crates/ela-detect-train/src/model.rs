//! The detection task's model: a [`Detector`] with Burn's train and inference steps, the probe
//! of ELA's pruning step, and the dataset's category ids, so that its detections come out as
//! COCO results.

use burn::prelude::*;
use burn::tensor::FloatDType;
use burn::train::metric::{Adaptor, ItemLazy, LossInput};
use burn::train::{InferenceStep, TrainOutput, TrainStep};
use burn_std::ExecutionError;
use ela_detect::{Detector, DetectorLosses};
use ela_model::{ModelError, Prunable, StageLayout};
use ela_train::pruning::ScoreProbe;
use ela_train::runtime::{StepOutput, TaskModel};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::data::DetectBatch;
use crate::evaluate::CocoResult;

/// The losses a step logs, in this order (the mask loss is 0 without a mask branch).
pub const LOSSES: [&str; 5] = [
    "loss_rpn_cls",
    "loss_rpn_bbox",
    "loss_cls",
    "loss_bbox",
    "loss_mask",
];

/// A detector as the runtime trains it.
#[derive(Module, Debug)]
pub struct DetectionModel {
    /// The detector.
    pub detector: Detector,
    /// The COCO category id of each class index.
    pub category_ids: Vec<u64>,
    #[module(skip)]
    probe: Option<ScoreProbe>,
    /// Factor on the loss before the backward pass (not on the logged losses).
    #[module(skip)]
    grad_scale: Option<f32>,
}

impl DetectionModel {
    /// A detector whose classes are the COCO categories `category_ids`, in class-index order.
    pub fn new(detector: Detector, category_ids: Vec<u64>) -> Self {
        Self {
            detector,
            category_ids,
            probe: None,
            grad_scale: None,
        }
    }

    /// The detections of a batch as COCO results: in each image's original pixels, with the
    /// dataset's category ids, and (Mask R-CNN) each mask pasted and encoded.
    pub fn results(&self, batch: DetectBatch) -> Vec<CocoResult> {
        let config = &self.detector.config;
        let detections = self.detector.detect(batch.images, &batch.sizes);
        batch
            .images_meta
            .iter()
            .zip(detections)
            .flat_map(|(meta, dets)| {
                dets.iter()
                    .map(|d| {
                        let category = self.category_ids[d.class];
                        CocoResult::new(config, &meta.item, meta.original, category, d)
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// A training step's output: the losses, and this batch's per-block KL scores.
pub struct DetectStepOutput {
    /// The five losses of [`LOSSES`], `[5]` in f32 off the autodiff graph.
    pub parts: Tensor<1>,
    /// Their sum, `[1]` off the autodiff graph.
    pub loss: Tensor<1>,
    /// `[num_blocks]` KL scores (0 for unscored blocks), during windows.
    pub scores: Option<Tensor<1>>,
    /// Images in the batch.
    pub items: usize,
}

impl StepOutput for DetectStepOutput {
    fn sums(&self) -> Tensor<1> {
        self.parts.clone()
    }

    fn items(&self) -> usize {
        self.items
    }

    fn loss(&self) -> Tensor<1> {
        self.loss.clone()
    }

    fn take_scores(&mut self) -> Option<Tensor<1>> {
        self.scores.take()
    }
}

impl ItemLazy for DetectStepOutput {
    fn sync(self) -> Result<Self, ExecutionError> {
        Ok(Self {
            scores: None,
            ..self
        })
    }
}

impl Adaptor<LossInput> for DetectStepOutput {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.loss.clone())
    }
}

/// An evaluation step's output: the batch's detections as COCO results.
#[derive(Debug, Clone)]
pub struct Detections(pub Vec<CocoResult>);

impl ItemLazy for Detections {
    fn sync(self) -> Result<Self, ExecutionError> {
        Ok(self)
    }
}

impl TrainStep for DetectionModel {
    type Input = DetectBatch;
    type Output = DetectStepOutput;

    fn step(&self, batch: DetectBatch) -> TrainOutput<DetectStepOutput> {
        let device = batch.images.device();
        let probe = self.probe.as_ref().filter(|p| p.collecting());
        let items = batch.sizes.len();
        let mut rng = StdRng::seed_from_u64(batch.seed);
        let losses = self.detector.losses(
            batch.images,
            &batch.sizes,
            &batch.targets,
            probe.is_some(),
            &mut rng,
        );
        let losses = match losses {
            Ok(losses) => losses,
            // The data pipeline gives every box a mask; targets that do not fit the detector
            // make a non-finite loss, which stops the run at this step.
            Err(err) => {
                eprintln!("error: {err}");
                let nan = Tensor::<1>::from_floats([f32::NAN], &device).require_grad();
                DetectorLosses {
                    rpn_cls: nan.clone(),
                    rpn_bbox: nan.clone(),
                    cls: nan.clone(),
                    bbox: nan,
                    mask: None,
                    attention: Vec::new(),
                }
            }
        };
        let scores =
            probe.and_then(|p| p.scores(self.detector.skip_flags(), losses.attention.clone()));
        let zero = Tensor::<1>::zeros([1], &device);
        let mask = losses.mask.clone().unwrap_or(zero);
        let parts = Tensor::cat(
            vec![
                losses.rpn_cls.clone(),
                losses.rpn_bbox.clone(),
                losses.cls.clone(),
                losses.bbox.clone(),
                mask,
            ],
            0,
        )
        .without_autodiff()
        .cast(FloatDType::F32);
        let total = losses.total();
        let grads = match self.grad_scale {
            Some(factor) => (total.clone() * factor).backward(),
            None => total.backward(),
        };
        let item = DetectStepOutput {
            parts,
            loss: total.without_autodiff(),
            scores,
            items,
        };
        TrainOutput::new(self, grads, item)
    }
}

impl InferenceStep for DetectionModel {
    type Input = DetectBatch;
    type Output = Detections;

    fn step(&self, batch: DetectBatch) -> Detections {
        Detections(self.results(batch))
    }
}

impl Prunable for DetectionModel {
    fn layout(&self) -> StageLayout {
        self.detector.layout()
    }

    fn skip_flags(&self) -> Vec<bool> {
        self.detector.skip_flags()
    }

    fn set_skip_flags(&self, flags: &[bool]) -> Result<(), ModelError> {
        self.detector.set_skip_flags(flags)
    }
}

impl TaskModel for DetectionModel {
    fn with_probe(mut self, probe: ScoreProbe) -> Self {
        self.probe = Some(probe);
        self
    }

    fn with_grad_scale(mut self, factor: f32) -> Self {
        self.grad_scale = (factor != 1.0).then_some(factor);
        self
    }

    fn parameter_counts(&self) -> (usize, usize) {
        (
            self.detector.parameter_count(),
            self.detector.trainable_parameter_count(),
        )
    }
}

//! The training wrapper around [`ElaResNet`]: Burn's train and inference steps, and the probe
//! that turns each training forward pass's attention weights into per-block KL scores.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::train::metric::{AccuracyInput, Adaptor, ItemLazy, LossInput};
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use burn_std::ExecutionError;
use ela_model::ElaResNet;
use ela_prune::{KlDirection, SkipMask, StageLayout, kl::block_scores};

use crate::data::ImageBatch;

/// Settings of the redundancy-score probe (SPEC §3.1).
#[derive(Debug, Clone)]
pub struct ScoreProbe {
    collect: Arc<AtomicBool>,
    layout: StageLayout,
    eps: f64,
    direction: KlDirection,
}

impl ScoreProbe {
    /// A probe for models of `layout`, initially off.
    pub fn new(layout: StageLayout, eps: f64, direction: KlDirection) -> Self {
        Self {
            collect: Arc::new(AtomicBool::new(false)),
            layout,
            eps,
            direction,
        }
    }

    /// Switches score collection on (window epochs) or off (every other epoch pays nothing).
    pub fn set_collecting(&self, on: bool) {
        self.collect.store(on, Ordering::Relaxed);
    }

    fn collecting(&self) -> bool {
        self.collect.load(Ordering::Relaxed)
    }
}

/// An [`ElaResNet`] trained with cross-entropy.
#[derive(Module, Debug)]
pub struct ElaClassifier {
    /// The network.
    pub net: ElaResNet,
    #[module(skip)]
    probe: Option<ScoreProbe>,
}

impl ElaClassifier {
    /// Wraps a network; with a probe, window epochs also emit KL scores.
    pub fn new(net: ElaResNet, probe: Option<ScoreProbe>) -> Self {
        Self { net, probe }
    }

    fn loss(&self, logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits, targets)
    }
}

/// A training step's output: what Burn's metrics read, plus this batch's per-block KL scores.
pub struct ElaTrainOutput {
    /// Loss, logits and targets.
    pub classification: ClassificationOutput,
    /// `[num_blocks]` scores off the autodiff graph (0 for unscored blocks), during windows.
    pub scores: Option<(Tensor<1>, Vec<bool>)>,
}

impl ItemLazy for ElaTrainOutput {
    fn sync(self) -> Result<Self, ExecutionError> {
        Ok(Self {
            classification: self.classification.sync()?,
            scores: None,
        })
    }
}

impl Adaptor<AccuracyInput> for ElaTrainOutput {
    fn adapt(&self) -> AccuracyInput {
        self.classification.adapt()
    }
}

impl Adaptor<LossInput> for ElaTrainOutput {
    fn adapt(&self) -> LossInput {
        self.classification.adapt()
    }
}

impl TrainStep for ElaClassifier {
    type Input = ImageBatch;
    type Output = ElaTrainOutput;

    fn step(&self, batch: ImageBatch) -> TrainOutput<ElaTrainOutput> {
        let probe = self.probe.as_ref().filter(|p| p.collecting());
        let out = match probe {
            Some(_) => self.net.forward_with_attention(batch.images),
            None => ela_model::ForwardOutput {
                logits: self.net.forward(batch.images),
                attention: Vec::new(),
            },
        };
        let scores = probe.and_then(|p| {
            let mask = SkipMask::from_flags(&p.layout, self.net.skip_flags()).ok()?;
            let attention: Vec<Option<Tensor<4>>> = out
                .attention
                .into_iter()
                .map(|a| a.map(Tensor::without_autodiff))
                .collect();
            block_scores(&p.layout, &mask, &attention, p.eps, p.direction)
        });
        let loss = self.loss(out.logits.clone(), batch.targets.clone());
        let item = ElaTrainOutput {
            classification: ClassificationOutput::new(loss.clone(), out.logits, batch.targets),
            scores,
        };
        TrainOutput::new(self, loss.backward(), item)
    }
}

impl ElaClassifier {
    /// An inference step that also returns each block's attention weights (MRLA-B), or none.
    pub fn evaluate(
        &self,
        batch: ImageBatch,
        attention: bool,
    ) -> (ClassificationOutput, Vec<Option<Tensor<4>>>) {
        if !attention {
            return (InferenceStep::step(self, batch), Vec::new());
        }
        let out = self.net.forward_with_attention(batch.images);
        let loss = self.loss(out.logits.clone(), batch.targets.clone());
        (
            ClassificationOutput::new(loss, out.logits, batch.targets),
            out.attention,
        )
    }
}

impl InferenceStep for ElaClassifier {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> ClassificationOutput {
        let logits = self.net.forward(batch.images);
        let loss = self.loss(logits.clone(), batch.targets.clone());
        ClassificationOutput::new(loss, logits, batch.targets)
    }
}

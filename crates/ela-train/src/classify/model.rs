//! The classification task's model: [`ElaResNet`] with cross-entropy, Burn's train and
//! inference steps, and the probe that turns each training forward pass's attention weights
//! into per-block KL scores.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::tensor::FloatDType;
use burn::train::metric::{AccuracyInput, Adaptor, ItemLazy, LossInput};
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use burn_std::ExecutionError;
use ela_model::{ElaResNet, ModelError, Prunable, StageLayout};

use crate::pruning::ScoreProbe;
use crate::runtime::{StepOutput, TaskModel};
use ela_data::dataset::ImageBatch;

/// An [`ElaResNet`] trained with cross-entropy.
#[derive(Module, Debug)]
pub struct ElaClassifier {
    /// The network.
    pub net: ElaResNet,
    #[module(skip)]
    probe: Option<ScoreProbe>,
    /// Label smoothing of the cross-entropy (SPEC §4: 0.1 on ImageNet).
    #[module(skip)]
    label_smoothing: Option<f32>,
    /// Factor on the loss before the backward pass (not on the reported loss).
    #[module(skip)]
    grad_scale: Option<f32>,
}

impl ElaClassifier {
    /// Wraps a network (the runtime gives it the probe of ELA's pruning step).
    pub fn new(net: ElaResNet) -> Self {
        Self {
            net,
            probe: None,
            label_smoothing: None,
            grad_scale: None,
        }
    }

    /// Scales the gradients by `factor`: with `n` data-parallel devices whose gradients are
    /// summed, `1 / n` makes the sum the gradient of the mean loss over the global batch.
    pub fn with_grad_scale(mut self, factor: f32) -> Self {
        self.grad_scale = (factor != 1.0).then_some(factor);
        self
    }

    /// Cross-entropy against targets smoothed by `alpha`: `(1 − α)·one-hot + α / classes`, as
    /// PyTorch's `CrossEntropyLoss(label_smoothing=α)`; 0 is plain cross-entropy. It applies to
    /// the training loss and to the reported validation loss (accuracy is unaffected), as in
    /// torchvision's reference training script.
    pub fn with_label_smoothing(mut self, alpha: f32) -> Self {
        self.label_smoothing = (alpha > 0.0).then_some(alpha);
        self
    }

    /// The loss of `logits` against `targets` (mean over the batch).
    pub fn loss(&self, logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        CrossEntropyLossConfig::new()
            .with_smoothing(self.label_smoothing)
            .init(&logits.device())
            .forward(logits, targets)
    }
}

/// A training step's output: what Burn's metrics read, plus this batch's per-block KL scores.
pub struct ElaTrainOutput {
    /// Loss, logits and targets.
    pub classification: ClassificationOutput,
    /// `[num_blocks]` scores off the autodiff graph (0 for unscored blocks), during windows.
    pub scores: Option<Tensor<1>>,
}

/// A batch's summed loss and correct predictions, `[2]` in f32 off the autodiff graph: what an
/// epoch sums (in f32 whatever the training precision: an f16 sum of a whole epoch would
/// overflow or round away the last batches).
pub fn batch_sums(out: &ClassificationOutput) -> Tensor<1> {
    let batch = out.targets.dims()[0];
    let loss = out.loss.clone().without_autodiff().cast(FloatDType::F32) * batch as f64;
    let predicted = out
        .output
        .clone()
        .without_autodiff()
        .argmax(1)
        .reshape([batch]);
    let correct = predicted
        .equal(out.targets.clone().without_autodiff())
        .int()
        .sum()
        .float()
        .cast(FloatDType::F32);
    Tensor::cat(vec![loss, correct], 0)
}

impl StepOutput for ElaTrainOutput {
    fn sums(&self) -> Tensor<1> {
        batch_sums(&self.classification)
    }

    fn items(&self) -> usize {
        self.classification.targets.dims()[0]
    }

    fn loss(&self) -> Tensor<1> {
        self.classification.loss.clone()
    }

    fn take_scores(&mut self) -> Option<Tensor<1>> {
        self.scores.take()
    }
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
        let scores = probe.and_then(|p| p.scores(self.net.skip_flags(), out.attention));
        let loss = self.loss(out.logits.clone(), batch.targets.clone());
        let item = ElaTrainOutput {
            classification: ClassificationOutput::new(loss.clone(), out.logits, batch.targets),
            scores,
        };
        let grads = match self.grad_scale {
            Some(factor) => (loss * factor).backward(),
            None => loss.backward(),
        };
        TrainOutput::new(self, grads, item)
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

impl Prunable for ElaClassifier {
    fn layout(&self) -> StageLayout {
        self.net.layout()
    }

    fn skip_flags(&self) -> Vec<bool> {
        self.net.skip_flags()
    }

    fn set_skip_flags(&self, flags: &[bool]) -> Result<(), ModelError> {
        self.net.set_skip_flags(flags)
    }
}

impl TaskModel for ElaClassifier {
    fn with_probe(mut self, probe: ScoreProbe) -> Self {
        self.probe = Some(probe);
        self
    }

    fn with_grad_scale(self, factor: f32) -> Self {
        ElaClassifier::with_grad_scale(self, factor)
    }

    fn parameter_counts(&self) -> (usize, usize) {
        let n = self.net.parameter_count();
        (n, n)
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

#[cfg(test)]
mod tests {
    use super::*;
    use ela_model::ElaResNetConfig;

    #[test]
    fn label_smoothing_matches_pytorch() {
        // torch.nn.CrossEntropyLoss(label_smoothing=0.1)(
        //     torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]]), torch.tensor([0, 1]))
        // -> 1.6054563522338867 (without smoothing: 1.5754563808441162)
        let device = Device::flex();
        let net = ElaResNetConfig::new(11, 3).init(&device).unwrap();
        let logits = Tensor::<2>::from_data([[2.0f32, -1.0, 0.5], [0.1, 0.2, 3.0]], &device);
        let targets = Tensor::<1, Int>::from_data([0i64, 1], &device);
        let loss = |c: &ElaClassifier| -> f32 {
            c.loss(logits.clone(), targets.clone()).into_scalar::<f32>()
        };
        let plain = ElaClassifier::new(net);
        assert!((loss(&plain) - 1.575_456_4).abs() < 1e-5);
        let smoothed = plain.with_label_smoothing(0.1);
        assert!((loss(&smoothed) - 1.605_456_4).abs() < 1e-5);
        assert!((loss(&smoothed.with_label_smoothing(0.0)) - 1.575_456_4).abs() < 1e-5);
    }
}

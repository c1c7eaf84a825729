//! One epoch's training sums, kept on the main device and read back once: the task's values,
//! ELA's KL scores, and the first step whose loss was not finite.

use burn::prelude::*;
use burn::tensor::FloatDType;

use super::task::StepOutput;
use crate::pruning::ScoreSums;

/// `first_bad`'s value while every loss of the epoch is finite.
const NO_BAD_STEP: f64 = 1e9;

/// Sums over one epoch's training batches.
#[derive(Default)]
pub struct TrainSums {
    values: Option<Tensor<1>>,
    items: usize,
    batches: usize,
    scores: ScoreSums,
    /// The first step whose loss was NaN or infinite ([`NO_BAD_STEP`] while there is none):
    /// tracked on the device, with no read-back per step.
    first_bad: Option<Tensor<1>>,
}

/// What an epoch's sums hold, read back.
pub struct EpochSums {
    /// The task's summed values.
    pub values: Vec<f64>,
    /// Images.
    pub items: usize,
    /// Batches (one per device per step).
    pub batches: usize,
    /// ELA's KL scores, for the pruning controller.
    pub scores: ScoreSums,
    /// The first step (1-based, in the epoch) whose loss was not finite, if any.
    pub first_bad: Option<usize>,
}

impl TrainSums {
    /// Adds one batch's output, computed on `device` or on a data-parallel worker's, at
    /// optimizer step `step` (1-based in the epoch).
    pub fn add(&mut self, item: &mut impl StepOutput, device: &Device, step: usize) {
        let values = item.sums().to_device(device);
        self.values = Some(match self.values.take() {
            Some(v) => v + values,
            None => values,
        });
        self.items += item.items();
        self.batches += 1;
        let bad = item
            .loss()
            .to_device(device)
            .without_autodiff()
            .is_finite()
            .bool_not()
            .float()
            .cast(FloatDType::F32);
        let at = bad.clone() * step as f64 + (bad.neg() + 1.0) * NO_BAD_STEP;
        self.first_bad = Some(match self.first_bad.take() {
            Some(f) => f.min_pair(at),
            None => at,
        });
        if let Some(scores) = item.take_scores() {
            self.scores.add(scores, device);
        }
    }

    /// The sums, read back (the epoch's read-backs).
    pub fn read(self) -> EpochSums {
        let values = self.values.map_or_else(Vec::new, read_back);
        let bad = self
            .first_bad
            .map_or(NO_BAD_STEP, |t| t.into_scalar::<f32>() as f64);
        EpochSums {
            values,
            items: self.items,
            batches: self.batches,
            scores: self.scores,
            first_bad: (bad < 0.5 * NO_BAD_STEP).then_some(bad as usize),
        }
    }
}

/// The values of a `[k]` f32 tensor of sums, read back.
pub fn read_back(sums: Tensor<1>) -> Vec<f64> {
    sums.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default()
        .into_iter()
        .map(f64::from)
        .collect()
}

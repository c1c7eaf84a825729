//! The learning-rate schedule of every task, stepped once per optimizer step as Burn's learner
//! does: a shape over the epochs (steps after given epochs, or cosine decay) with an optional
//! linear warm-up counted in iterations or epochs.
//!
//! - Classification (SPEC §4): ×0.1 after 50% and 75% of the epochs (CIFAR: after 90 and 135 of
//!   180), or cosine decay after a warm-up of a few epochs from `base / W` to `base`.
//! - Detection (MMDetection's 1x): ×0.1 after epochs 8 and 11 of 12, with mmcv's linear warm-up
//!   over the first 500 iterations from `0.001 × lr`.

use burn::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use burn::optim::LearningRate;
use serde::{Deserialize, Serialize};

/// The rate's shape over the epochs, after the warm-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Shape {
    /// `base × gamma^m`, where m counts the epochs of `after` already finished: the rate drops
    /// after each of those epochs (1-based; PyTorch's `MultiStepLR` stepped per epoch).
    Steps {
        /// Epochs after which the rate drops.
        after: Vec<usize>,
        /// Factor per drop.
        gamma: f64,
    },
    /// Cosine decay from `base` to `min_lr` over the iterations after the warm-up.
    Cosine {
        /// Final learning rate.
        min_lr: f64,
    },
}

/// How long a warm-up lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Length {
    /// So many epochs of iterations.
    Epochs(usize),
    /// So many iterations.
    Iterations(usize),
}

/// Where a linear warm-up starts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "kebab-case")]
pub enum WarmupStart {
    /// Step i of W runs at `base × (i + 1) / W`, whatever the shape says (the classification
    /// recipes').
    Zero,
    /// mmcv's linear warm-up: step i of W runs at the shape's rate times
    /// `1 − (1 − i / W)(1 − ratio)` (MMDetection's, ratio 0.001).
    Ratio {
        /// The factor of the first step.
        ratio: f64,
    },
}

/// A linear warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Warmup {
    /// How long.
    pub length: Length,
    /// From what.
    pub start: WarmupStart,
}

/// A run's learning-rate schedule, as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    /// Base learning rate.
    pub base: f64,
    /// The shape over the epochs.
    pub shape: Shape,
    /// The warm-up, if any.
    pub warmup: Option<Warmup>,
}

impl LrSchedule {
    /// The schedule of a run of `epochs` epochs of `iters_per_epoch` optimizer steps each,
    /// ready for Burn's learner.
    pub fn stepped(&self, epochs: usize, iters_per_epoch: usize) -> EpochSchedule {
        let per_epoch = iters_per_epoch.max(1);
        let warmup_iters = self.warmup.map_or(0, |w| match w.length {
            Length::Epochs(e) => e * per_epoch,
            Length::Iterations(i) => i,
        });
        EpochSchedule {
            spec: self.clone(),
            warmup_iters,
            iters_per_epoch: per_epoch,
            total_iters: epochs * per_epoch,
            iteration: 0,
        }
    }
}

/// An [`LrSchedule`] over a run's optimizer steps, with its position (what a checkpoint keeps).
#[derive(Debug, Clone)]
pub struct EpochSchedule {
    spec: LrSchedule,
    warmup_iters: usize,
    iters_per_epoch: usize,
    total_iters: usize,
    iteration: usize,
}

impl EpochSchedule {
    /// The rate of 0-based optimizer step `i`.
    pub fn lr_at(&self, i: usize) -> f64 {
        let base = self.spec.base;
        let warm = self.warmup_iters;
        let start = self.spec.warmup.map(|w| w.start);
        if i < warm && start == Some(WarmupStart::Zero) {
            return base * (i + 1) as f64 / warm as f64;
        }
        let epoch = i / self.iters_per_epoch;
        let regular = match &self.spec.shape {
            Shape::Steps { after, gamma } => {
                let passed = after.iter().filter(|&&m| epoch >= m).count();
                base * gamma.powi(passed as i32)
            }
            Shape::Cosine { min_lr } => {
                let span = (self.total_iters.saturating_sub(warm)).max(1) as f64;
                let progress = (i.saturating_sub(warm) as f64 / span).min(1.0);
                min_lr + 0.5 * (base - min_lr) * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        };
        match start {
            Some(WarmupStart::Ratio { ratio }) if i < warm => {
                let k = (1.0 - i as f64 / warm as f64) * (1.0 - ratio);
                regular * (1.0 - k)
            }
            _ => regular,
        }
    }

    /// Optimizer steps taken.
    pub fn iteration(&self) -> usize {
        self.iteration
    }
}

impl LrScheduler for EpochSchedule {
    fn step(&mut self) -> LearningRate {
        let lr = self.lr_at(self.iteration);
        self.iteration += 1;
        lr
    }

    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new().with_scalar("iteration", self.iteration as u64)
    }

    fn load_record(&mut self, record: LrSchedulerRecord) {
        if let Some(i) = record.scalar::<u64>("iteration") {
            self.iteration = i as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(after: &[usize], warmup: Option<Warmup>) -> LrSchedule {
        LrSchedule {
            base: 0.1,
            shape: Shape::Steps {
                after: after.to_vec(),
                gamma: 0.1,
            },
            warmup,
        }
    }

    #[test]
    fn steps_drop_after_the_given_epochs() {
        let mut s = steps(&[90, 135], None).stepped(180, 10);
        let lrs: Vec<f64> = (0..1800).map(|_| s.step()).collect();
        assert_eq!(lrs[0], 0.1);
        assert_eq!(lrs[899], 0.1, "last step of epoch 90");
        assert!((lrs[900] - 0.01).abs() < 1e-15, "first step of epoch 91");
        assert!((lrs[1350] - 0.001).abs() < 1e-15);
        let mut fresh = steps(&[90, 135], None).stepped(180, 10);
        fresh.load_record(s.to_record());
        assert_eq!(fresh.iteration(), 1800);
    }

    #[test]
    fn cosine_warms_up_from_zero_then_decays_to_the_minimum() {
        let spec = LrSchedule {
            base: 0.4,
            shape: Shape::Cosine { min_lr: 0.0 },
            warmup: Some(Warmup {
                length: Length::Epochs(1),
                start: WarmupStart::Zero,
            }),
        };
        let s = spec.stepped(5, 4);
        assert!((s.lr_at(0) - 0.1).abs() < 1e-12);
        assert!((s.lr_at(3) - 0.4).abs() < 1e-12);
        assert!((s.lr_at(4) - 0.4).abs() < 1e-12, "decay starts at the peak");
        assert!((s.lr_at(12) - 0.2).abs() < 1e-12, "half-way");
        assert!(s.lr_at(19) < 0.01);
    }

    #[test]
    fn a_warm_up_from_zero_ramps_linearly_into_the_steps() {
        let warmup = Warmup {
            length: Length::Epochs(1),
            start: WarmupStart::Zero,
        };
        let s = steps(&[3], Some(warmup)).stepped(4, 5);
        for (i, want) in [(0, 0.02), (1, 0.04), (4, 0.1), (5, 0.1), (14, 0.1)] {
            assert!(
                (s.lr_at(i) - want).abs() < 1e-12,
                "step {i}: {}",
                s.lr_at(i)
            );
        }
        assert!((s.lr_at(15) - 0.01).abs() < 1e-12, "after epoch 3");
    }

    /// MMDetection's 1x schedule: mmcv's linear warm-up over 500 iterations from 0.001 × lr,
    /// ×0.1 after epochs 8 and 11 (`lr_config = dict(policy='step', warmup='linear',
    /// warmup_iters=500, warmup_ratio=0.001, step=[8, 11])`).
    #[test]
    fn mmdetection_one_x_warms_up_from_a_ratio_and_steps_after_epochs_8_and_11() {
        let spec = LrSchedule {
            base: 0.02,
            shape: Shape::Steps {
                after: vec![8, 11],
                gamma: 0.1,
            },
            warmup: Some(Warmup {
                length: Length::Iterations(500),
                start: WarmupStart::Ratio { ratio: 0.001 },
            }),
        };
        let s = spec.stepped(12, 1000);
        assert!((s.lr_at(0) - 0.02 * 0.001).abs() < 1e-12);
        assert!((s.lr_at(250) - 0.02 * (1.0 - 0.5 * 0.999)).abs() < 1e-12);
        assert_eq!(s.lr_at(500), 0.02);
        assert_eq!(s.lr_at(7999), 0.02, "the last step of epoch 8");
        assert!((s.lr_at(8000) - 0.002).abs() < 1e-12);
        assert!((s.lr_at(11_999) - 0.0002).abs() < 1e-12);
    }
}

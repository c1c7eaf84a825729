//! Learning-rate schedules of SPEC §4, stepped once per iteration as Burn's learner does.

use burn::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use burn::optim::LearningRate;
use serde::{Deserialize, Serialize};

/// Which schedule, in epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ScheduleKind {
    /// `lr × gamma^m` after each milestone epoch m passed (PyTorch's MultiStepLR per epoch).
    MultiStep {
        /// Epochs (0-based count of finished epochs) at which the rate drops.
        milestones: Vec<usize>,
        /// Factor per milestone.
        gamma: f64,
    },
    /// Cosine decay to `min_lr` after the warm-up, evaluated per iteration.
    Cosine {
        /// Final learning rate.
        min_lr: f64,
    },
}

/// A schedule over a run of `epochs × iters_per_epoch` optimizer steps, with an optional linear
/// warm-up from `base / warmup_iters` to `base` over the first `warmup_epochs`.
#[derive(Debug, Clone)]
pub struct EpochSchedule {
    base: f64,
    kind: ScheduleKind,
    warmup_iters: usize,
    iters_per_epoch: usize,
    total_iters: usize,
    iteration: usize,
}

impl EpochSchedule {
    /// A schedule from the base rate.
    pub fn new(
        base: f64,
        kind: ScheduleKind,
        warmup_epochs: usize,
        epochs: usize,
        iters_per_epoch: usize,
    ) -> Self {
        Self {
            base,
            kind,
            warmup_iters: warmup_epochs * iters_per_epoch.max(1),
            iters_per_epoch: iters_per_epoch.max(1),
            total_iters: epochs * iters_per_epoch.max(1),
            iteration: 0,
        }
    }

    /// The rate of 0-based optimizer step `i`.
    pub fn lr_at(&self, i: usize) -> f64 {
        let epoch = i / self.iters_per_epoch;
        let warm = self.warmup_iters;
        if i < warm {
            return self.base * (i + 1) as f64 / warm as f64;
        }
        match &self.kind {
            ScheduleKind::MultiStep { milestones, gamma } => {
                let passed = milestones.iter().filter(|&&m| epoch >= m).count();
                self.base * gamma.powi(passed as i32)
            }
            ScheduleKind::Cosine { min_lr } => {
                let span = (self.total_iters - warm).max(1) as f64;
                let progress = ((i - warm) as f64 / span).min(1.0);
                min_lr
                    + 0.5 * (self.base - min_lr) * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
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

    #[test]
    fn multistep_drops_after_the_milestone_epochs() {
        let kind = ScheduleKind::MultiStep {
            milestones: vec![90, 135],
            gamma: 0.1,
        };
        let mut s = EpochSchedule::new(0.1, kind, 0, 180, 10);
        let lrs: Vec<f64> = (0..1800).map(|_| s.step()).collect();
        assert_eq!(lrs[0], 0.1);
        assert_eq!(lrs[899], 0.1, "last step of epoch 90");
        assert!((lrs[900] - 0.01).abs() < 1e-15, "first step of epoch 91");
        assert!((lrs[1350] - 0.001).abs() < 1e-15);
        let restored = {
            let mut fresh = EpochSchedule::new(0.1, s.kind.clone(), 0, 180, 10);
            fresh.load_record(s.to_record());
            fresh
        };
        assert_eq!(restored.iteration, 1800);
    }

    #[test]
    fn cosine_warms_up_then_decays_to_the_minimum() {
        let kind = ScheduleKind::Cosine { min_lr: 0.0 };
        let s = EpochSchedule::new(0.4, kind, 1, 5, 4);
        assert!((s.lr_at(0) - 0.1).abs() < 1e-12);
        assert!((s.lr_at(3) - 0.4).abs() < 1e-12);
        assert!((s.lr_at(4) - 0.4).abs() < 1e-12, "decay starts at the peak");
        assert!((s.lr_at(12) - 0.2).abs() < 1e-12, "half-way");
        assert!(s.lr_at(19) < 0.01);
    }

    #[test]
    fn warmup_ramps_linearly_into_the_multistep_rate() {
        let kind = ScheduleKind::MultiStep {
            milestones: vec![3],
            gamma: 0.1,
        };
        let s = EpochSchedule::new(0.1, kind, 1, 4, 5);
        let lrs: Vec<f64> = (0..20).map(|i| s.lr_at(i)).collect();
        for (i, want) in [(0, 0.02), (1, 0.04), (4, 0.1), (5, 0.1), (14, 0.1)] {
            assert!((lrs[i] - want).abs() < 1e-12, "step {i}: {}", lrs[i]);
        }
        assert!((lrs[15] - 0.01).abs() < 1e-12, "milestone after epoch 3");
    }
}

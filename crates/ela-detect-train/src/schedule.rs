//! MMDetection's 1x learning rate: `lr · 0.1^k` where `k` counts the step epochs passed (after
//! epochs 8 and 11 of 12, scaled to the run's length), multiplied during the first
//! `warmup_iters` iterations by mmcv's linear warm-up `1 - (1 - i / warmup) · (1 - ratio)`.

use serde::{Deserialize, Serialize};

/// The schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSchedule {
    /// Base learning rate.
    pub lr: f64,
    /// Epochs (1-based) after which the rate is multiplied by `gamma`.
    pub steps: Vec<usize>,
    /// Step factor.
    pub gamma: f64,
    /// Warm-up iterations.
    pub warmup_iters: usize,
    /// Warm-up start ratio.
    pub warmup_ratio: f64,
}

impl StepSchedule {
    /// The 1x schedule's steps (8 and 11 of 12) scaled to `epochs`.
    pub fn one_x(lr: f64, epochs: usize, warmup_iters: usize) -> Self {
        let scaled = |e: usize| ((e * epochs) as f64 / 12.0).round().max(1.0) as usize;
        let mut steps = vec![scaled(8), scaled(11)];
        steps.dedup();
        steps.retain(|&s| s < epochs);
        Self {
            lr,
            steps,
            gamma: 0.1,
            warmup_iters,
            warmup_ratio: 0.001,
        }
    }

    /// The rate at global iteration `iter` (0-based) of epoch `epoch` (1-based).
    pub fn lr_at(&self, epoch: usize, iter: usize) -> f64 {
        let passed = self.steps.iter().filter(|&&s| epoch > s).count();
        let regular = self.lr * self.gamma.powi(passed as i32);
        if iter < self.warmup_iters {
            let k = (1.0 - iter as f64 / self.warmup_iters as f64) * (1.0 - self.warmup_ratio);
            regular * (1.0 - k)
        } else {
            regular
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_x_matches_mmdetection() {
        let s = StepSchedule::one_x(0.02, 12, 500);
        assert_eq!(s.steps, vec![8, 11]);
        assert!((s.lr_at(1, 0) - 0.02 * 0.001).abs() < 1e-12);
        assert!((s.lr_at(1, 250) - 0.02 * (1.0 - 0.5 * 0.999)).abs() < 1e-12);
        assert_eq!(s.lr_at(1, 500), 0.02);
        assert_eq!(s.lr_at(8, 9000), 0.02);
        assert!((s.lr_at(9, 9000) - 0.002).abs() < 1e-12);
        assert!((s.lr_at(12, 9000) - 0.0002).abs() < 1e-12);
        assert_eq!(StepSchedule::one_x(0.02, 6, 0).steps, vec![4]);
    }
}

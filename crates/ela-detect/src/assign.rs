//! Training targets: MMDetection's `MaxIoUAssigner` and `RandomSampler`.
//!
//! The assigner's IoU matrix and its reductions run on the device; the host reads three vectors
//! per image (each box's best IoU and its ground truth, and the low-quality match), never the
//! matrix. A box is negative below `neg_iou`, positive from `pos_iou`, ignored between; with
//! `low_quality`, every box whose IoU with a ground truth equals that ground truth's best (and
//! is at least `min_pos_iou`) becomes positive for it, the highest-indexed ground truth winning,
//! as MMDetection loops over them in order.

use burn::prelude::*;
use rand::{RngExt, rngs::StdRng};

use crate::boxes::box_iou;
use crate::nms::{host_f32, host_i64};

/// What a box was assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assigned {
    /// Between the thresholds: no loss.
    Ignored,
    /// Background.
    Negative,
    /// Matched to this ground truth (0-based).
    Positive(usize),
}

/// IoU thresholds of an assigner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AssignerConfig {
    /// Positive from this IoU.
    pub pos_iou: f32,
    /// Negative below this IoU.
    pub neg_iou: f32,
    /// Low-quality matches: each ground truth's best boxes are positive when their IoU is at
    /// least this; `None` turns them off.
    pub low_quality: Option<f32>,
}

impl AssignerConfig {
    /// The RPN's (0.7, 0.3, low-quality from 0.3).
    pub fn rpn() -> Self {
        Self {
            pos_iou: 0.7,
            neg_iou: 0.3,
            low_quality: Some(0.3),
        }
    }

    /// The Faster R-CNN RoI head's (0.5, 0.5, no low-quality matches).
    pub fn roi() -> Self {
        Self {
            pos_iou: 0.5,
            neg_iou: 0.5,
            low_quality: None,
        }
    }

    /// Assigns `boxes` `[N, 4]` to `gt` `[G, 4]`.
    pub fn assign(&self, boxes: Tensor<2>, gt: Tensor<2>) -> Vec<Assigned> {
        let n = boxes.dims()[0];
        let g = gt.dims()[0];
        if g == 0 || n == 0 {
            return vec![Assigned::Negative; n];
        }
        let device = boxes.device();
        let iou = box_iou(boxes, gt);
        let best = host_f32(iou.clone().max_dim(1));
        let best_gt = host_i64(iou.clone().argmax(1));
        let low: Option<Vec<i64>> = self.low_quality.map(|min_iou| {
            let gt_best = iou.clone().max_dim(0);
            let usable = gt_best.clone().greater_equal_elem(min_iou).int();
            let ids = Tensor::<1, Int>::arange(1..g as i64 + 1, &device).reshape([1, g]);
            let hit = iou.equal(gt_best.expand([n, g])).int() * usable.expand([n, g]);
            host_i64((hit * ids.expand([n, g])).max_dim(1))
        });
        (0..n)
            .map(|i| {
                if let Some(low) = &low
                    && low[i] > 0
                {
                    return Assigned::Positive(low[i] as usize - 1);
                }
                if best[i] >= self.pos_iou {
                    Assigned::Positive(best_gt[i] as usize)
                } else if best[i] < self.neg_iou {
                    Assigned::Negative
                } else {
                    Assigned::Ignored
                }
            })
            .collect()
    }
}

/// `RandomSampler`: at most `num · pos_fraction` positives, the rest negatives, drawn uniformly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerConfig {
    /// Boxes per image.
    pub num: usize,
    /// Largest fraction of positives.
    pub pos_fraction: f32,
}

impl SamplerConfig {
    /// The RPN's: 256, half positive.
    pub fn rpn() -> Self {
        Self {
            num: 256,
            pos_fraction: 0.5,
        }
    }

    /// The RoI head's: 512, a quarter positive.
    pub fn roi() -> Self {
        Self {
            num: 512,
            pos_fraction: 0.25,
        }
    }

    /// Sampled positive and negative box indices.
    pub fn sample(&self, assigned: &[Assigned], rng: &mut StdRng) -> (Vec<usize>, Vec<usize>) {
        let pos: Vec<usize> = (0..assigned.len())
            .filter(|&i| matches!(assigned[i], Assigned::Positive(_)))
            .collect();
        let neg: Vec<usize> = (0..assigned.len())
            .filter(|&i| assigned[i] == Assigned::Negative)
            .collect();
        let pos = choose(pos, (self.num as f32 * self.pos_fraction) as usize, rng);
        let neg = choose(neg, self.num - pos.len(), rng);
        (pos, neg)
    }
}

/// `k` of `items` drawn without replacement (all of them when there are no more than `k`).
fn choose(mut items: Vec<usize>, k: usize, rng: &mut StdRng) -> Vec<usize> {
    if items.len() <= k {
        return items;
    }
    for i in 0..k {
        let j = rng.random_range(i..items.len());
        items.swap(i, j);
    }
    items.truncate(k);
    items
}

//! The delta box coder (MMDetection's `DeltaXYWHBBoxCoder`, torchvision's `BoxCoder`): a box
//! relative to a reference box as centre shifts in units of the reference's size and log size
//! ratios, normalized by `means` and `stds`. torchvision's weights are `1 / stds`: (1, 1, 1, 1)
//! is the RPN's stds (1, 1, 1, 1), (10, 10, 5, 5) the RoI head's (0.1, 0.1, 0.2, 0.2).

use burn::prelude::*;

use crate::boxes::{clip_boxes, columns};

/// Width and height log-ratios are clamped at this (log(1000 / 16)) when decoding. MMDetection
/// clamps both ways (`[-r, r]`), torchvision only from above.
pub const MAX_LOG_RATIO: f32 = 4.135_166_6;

/// Encodes and decodes boxes as normalized deltas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeltaCoder {
    /// Subtracted from the raw deltas `(dx, dy, dw, dh)` before dividing by `stds`.
    pub means: [f32; 4],
    /// Raw deltas are divided by these.
    pub stds: [f32; 4],
    /// `dw`, `dh` are clamped to at most this when decoding.
    pub max_log_ratio: f32,
    /// ... and to at least this (MMDetection `-max_log_ratio`, torchvision `-inf`).
    pub min_log_ratio: f32,
}

impl DeltaCoder {
    /// The RPN's coder: means 0, stds 1.
    pub fn rpn() -> Self {
        Self {
            means: [0.0; 4],
            stds: [1.0; 4],
            max_log_ratio: MAX_LOG_RATIO,
            min_log_ratio: -MAX_LOG_RATIO,
        }
    }

    /// The RoI box head's coder: means 0, stds (0.1, 0.1, 0.2, 0.2).
    pub fn roi() -> Self {
        Self {
            means: [0.0; 4],
            stds: [0.1, 0.1, 0.2, 0.2],
            max_log_ratio: MAX_LOG_RATIO,
            min_log_ratio: -MAX_LOG_RATIO,
        }
    }

    /// torchvision's `BoxCoder`: the same, with `dw`, `dh` clamped only from above.
    pub fn torchvision(self) -> Self {
        Self {
            min_log_ratio: f32::NEG_INFINITY,
            ..self
        }
    }

    /// Deltas `[N, 4]` that take `reference` boxes to `target` boxes (both `[N, 4]`).
    pub fn encode(&self, reference: Tensor<2>, target: Tensor<2>) -> Tensor<2> {
        let (px, py, pw, ph) = centre_size(reference);
        let (gx, gy, gw, gh) = centre_size(target);
        let raw = [
            (gx - px) / pw.clone(),
            (gy - py) / ph.clone(),
            (gw / pw).log(),
            (gh / ph).log(),
        ];
        let normalized: Vec<Tensor<2>> = raw
            .into_iter()
            .enumerate()
            .map(|(i, d)| (d - self.means[i]) / self.stds[i])
            .collect();
        Tensor::cat(normalized, 1)
    }

    /// Boxes `[N, 4]` from `reference` boxes and `deltas` (both `[N, 4]`), clipped to
    /// `(height, width)` when given.
    pub fn decode(
        &self,
        reference: Tensor<2>,
        deltas: Tensor<2>,
        clip: Option<(usize, usize)>,
    ) -> Tensor<2> {
        let (px, py, pw, ph) = centre_size(reference);
        let [dx, dy, dw, dh] = columns(deltas);
        let d = |t: Tensor<2>, i: usize| t * self.stds[i] + self.means[i];
        let (dx, dy) = (d(dx, 0), d(dy, 1));
        let (lo, hi) = (self.min_log_ratio, self.max_log_ratio);
        let clamp = |t: Tensor<2>| t.clamp_max(hi).clamp_min(lo);
        let (dw, dh) = (clamp(d(dw, 2)), clamp(d(dh, 3)));
        let gx = px + pw.clone() * dx;
        let gy = py + ph.clone() * dy;
        let gw = pw * dw.exp();
        let gh = ph * dh.exp();
        let boxes = Tensor::cat(
            vec![
                gx.clone() - gw.clone() * 0.5,
                gy.clone() - gh.clone() * 0.5,
                gx + gw * 0.5,
                gy + gh * 0.5,
            ],
            1,
        );
        match clip {
            Some((height, width)) => clip_boxes(boxes, height, width),
            None => boxes,
        }
    }
}

/// Centres and sizes as `[N, 1]` columns.
fn centre_size(boxes: Tensor<2>) -> (Tensor<2>, Tensor<2>, Tensor<2>, Tensor<2>) {
    let [x1, y1, x2, y2] = columns(boxes);
    let w = x2 - x1.clone();
    let h = y2 - y1.clone();
    (x1 + w.clone() * 0.5, y1 + h.clone() * 0.5, w, h)
}

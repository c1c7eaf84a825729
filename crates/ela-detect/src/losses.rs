//! The detection losses, elementwise on the device.

use burn::prelude::*;
use burn::tensor::activation::{log_sigmoid, log_softmax};

/// `-[y log σ(x) + (1 - y) log(1 - σ(x))]` per element.
pub fn binary_cross_entropy_with_logits(logits: Tensor<1>, labels: Tensor<1>) -> Tensor<1> {
    let pos = log_sigmoid(logits.clone());
    let neg = log_sigmoid(-logits);
    -(labels.clone() * pos + (-labels + 1.0) * neg)
}

/// Softmax cross-entropy of `[K, C]` logits against class indices, summed.
pub fn cross_entropy_sum(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let k = labels.dims()[0];
    let picked = log_softmax(logits, 1).gather(1, labels.reshape([k, 1]));
    -picked.sum()
}

/// `Σ |a - b|`.
pub fn l1_sum(a: Tensor<2>, b: Tensor<2>) -> Tensor<1> {
    (a - b).abs().sum()
}

/// `Σ smooth_l1(a - b)` with threshold `beta` (torchvision's `smooth_l1_loss`).
pub fn smooth_l1_sum(a: Tensor<2>, b: Tensor<2>, beta: f32) -> Tensor<1> {
    let d = (a - b).abs();
    let small = d.clone().lower_elem(beta);
    let quadratic = d.clone().powf_scalar(2.0) * (0.5 / beta);
    let linear = d - 0.5 * beta;
    linear.mask_where(small, quadratic).sum()
}

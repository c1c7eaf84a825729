//! Non-maximum suppression (`torchvision.ops.nms` / `batched_nms`). The IoU matrix and its
//! threshold are computed on the device; only the `[n, n]` "overlaps too much" flags and the
//! scores come to the host for the greedy pass, one class (or level) at a time, so a batched
//! call over many groups never builds one matrix over all boxes.

use burn::prelude::*;
use burn::tensor::TensorData;

use crate::boxes::box_iou;

/// Indices of the boxes kept, by decreasing score: each box suppresses the lower-scored ones
/// whose IoU with it is above `iou_threshold`.
pub fn nms(boxes: Tensor<2>, scores: Tensor<1>, iou_threshold: f32) -> Tensor<1, Int> {
    let device = boxes.device();
    let n = boxes.dims()[0];
    let order = descending(&host_f32(scores));
    let keep: Vec<usize> = greedy(boxes, &order, iou_threshold)
        .into_iter()
        .map(|i| order[i])
        .collect();
    debug_assert!(keep.len() <= n);
    indices(&keep, &device)
}

/// NMS within each group of `groups` (class or pyramid level) independently; the kept indices
/// of all groups together, by decreasing score.
pub fn batched_nms(
    boxes: Tensor<2>,
    scores: Tensor<1>,
    groups: Tensor<1, Int>,
    iou_threshold: f32,
) -> Tensor<1, Int> {
    let device = boxes.device();
    let scores_host = host_f32(scores);
    let groups_host = host_i64(groups);
    let mut members: std::collections::BTreeMap<i64, Vec<usize>> = Default::default();
    for (i, g) in groups_host.iter().enumerate() {
        members.entry(*g).or_default().push(i);
    }
    let mut keep = Vec::new();
    for (_, mut idx) in members {
        idx.sort_by(|&a, &b| scores_host[b].total_cmp(&scores_host[a]).then(a.cmp(&b)));
        let group = boxes.clone().select(0, indices(&idx, &device));
        let local: Vec<usize> = (0..idx.len()).collect();
        keep.extend(
            greedy(group, &local, iou_threshold)
                .into_iter()
                .map(|i| idx[i]),
        );
    }
    keep.sort_by(|&a, &b| scores_host[b].total_cmp(&scores_host[a]).then(a.cmp(&b)));
    indices(&keep, &device)
}

/// The greedy pass over boxes visited in `order` (positions into `boxes`); returns positions
/// into `order` of the boxes kept.
fn greedy(boxes: Tensor<2>, order: &[usize], iou_threshold: f32) -> Vec<usize> {
    let n = order.len();
    if n == 0 {
        return Vec::new();
    }
    let device = boxes.device();
    let sorted = boxes.select(0, indices(order, &device));
    let overlaps: Vec<bool> = box_iou(sorted.clone(), sorted)
        .greater_elem(iou_threshold)
        .into_data()
        .try_to_vec::<bool>()
        .expect("a bool tensor reads as bool");
    let mut suppressed = vec![false; n];
    let mut keep = Vec::new();
    for i in 0..n {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        let row = &overlaps[i * n..(i + 1) * n];
        for j in i + 1..n {
            suppressed[j] |= row[j];
        }
    }
    keep
}

/// Positions sorted by decreasing value, ties by position.
pub fn descending(values: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    order
}

/// An index tensor on `device`.
pub fn indices(idx: &[usize], device: &Device) -> Tensor<1, Int> {
    let data: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(data, [idx.len()]), device)
}

/// A float tensor's values on the host.
pub fn host_f32<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("converted to f32")
}

/// An int tensor's values on the host.
pub fn host_i64<const D: usize>(t: Tensor<D, Int>) -> Vec<i64> {
    t.into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .expect("converted to i64")
}

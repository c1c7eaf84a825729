//! Box geometry on the device: boxes are `[N, 4]` as `(x1, y1, x2, y2)` in pixels, with width
//! `x2 - x1` (no "+1", as in torchvision and MMDetection 2.x).

use burn::prelude::*;

/// The four coordinates of `[N, 4]` boxes as `[N, 1]` columns.
pub fn columns(boxes: Tensor<2>) -> [Tensor<2>; 4] {
    let [x1, y1, x2, y2] = [0, 1, 2, 3].map(|i| boxes.clone().narrow(1, i, 1));
    [x1, y1, x2, y2]
}

/// Areas `[N]`.
pub fn box_area(boxes: Tensor<2>) -> Tensor<1> {
    let [x1, y1, x2, y2] = columns(boxes);
    let n = x1.dims()[0];
    ((x2 - x1) * (y2 - y1)).reshape([n])
}

/// Pairwise intersection over union `[N, M]` (`torchvision.ops.box_iou`).
pub fn box_iou(a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
    let (inter, area_a, area_b) = intersection(a, b);
    let union = area_a + area_b - inter.clone();
    inter / union
}

/// Pairwise intersection over the area of `a`'s boxes `[N, M]`: COCO's overlap for crowd
/// regions, and MMDetection's `iof`.
pub fn box_iof(a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
    let (inter, area_a, _) = intersection(a, b);
    inter / area_a.clamp_min(f32::MIN_POSITIVE)
}

/// Intersections `[N, M]` and the areas as `[N, 1]` and `[1, M]`.
fn intersection(a: Tensor<2>, b: Tensor<2>) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
    let n = a.dims()[0];
    let m = b.dims()[0];
    let [ax1, ay1, ax2, ay2] = columns(a.clone());
    let [bx1, by1, bx2, by2] = columns(b.clone()).map(|c| c.reshape([1, m]));
    let w = (ax2.min_pair(bx2.clone().expand([n, m])) - ax1.max_pair(bx1.clone().expand([n, m])))
        .clamp_min(0.0);
    let h = (ay2.min_pair(by2.clone().expand([n, m])) - ay1.max_pair(by1.clone().expand([n, m])))
        .clamp_min(0.0);
    let area_a = box_area(a).reshape([n, 1]);
    let area_b = ((bx2 - bx1) * (by2 - by1)).reshape([1, m]);
    (w * h, area_a, area_b)
}

/// Clips boxes to an image of `height × width` (coordinates in `[0, width]`, `[0, height]`).
pub fn clip_boxes(boxes: Tensor<2>, height: usize, width: usize) -> Tensor<2> {
    let [x1, y1, x2, y2] = columns(boxes);
    let (w, h) = (width as f32, height as f32);
    Tensor::cat(
        vec![
            x1.clamp(0.0, w),
            y1.clamp(0.0, h),
            x2.clamp(0.0, w),
            y2.clamp(0.0, h),
        ],
        1,
    )
}

/// Which boxes have both sides at least `min_size`.
pub fn large_enough(boxes: Tensor<2>, min_size: f32) -> Tensor<1, Bool> {
    let [x1, y1, x2, y2] = columns(boxes);
    let n = x1.dims()[0];
    let w = (x2 - x1).reshape([n]);
    let h = (y2 - y1).reshape([n]);
    w.greater_equal_elem(min_size)
        .bool_and(h.greater_equal_elem(min_size))
}

//! Anchors (MMDetection's `AnchorGenerator(scales=[8], ratios=[0.5, 1, 2], strides=[4, 8, 16,
//! 32, 64])`, torchvision's `AnchorGenerator(sizes=(32, …, 512), aspect_ratios=(0.5, 1, 2))`):
//! per level, base anchors of size `stride · scale` and ratio `h / w = r`, centred on 0 (so at
//! the top-left corner of each cell), shifted by `stride` over the feature map. The order is
//! position-major, base-anchor-minor, as the heads' outputs are flattened. torchvision rounds the
//! base anchors to integers; MMDetection does not.

use burn::prelude::*;
use burn::tensor::TensorData;

/// Anchor layout of every pyramid level.
#[derive(Debug, Clone, PartialEq)]
pub struct AnchorGenerator {
    /// Stride of each level (P2–P6: 4, 8, 16, 32, 64).
    pub strides: Vec<usize>,
    /// Height-to-width ratios.
    pub ratios: Vec<f32>,
    /// Anchor sizes in units of the stride.
    pub scales: Vec<f32>,
    /// Round base anchors to integers (torchvision).
    pub round: bool,
}

impl AnchorGenerator {
    /// MMDetection 2.x's RPN anchors.
    pub fn mmdet() -> Self {
        Self {
            strides: vec![4, 8, 16, 32, 64],
            ratios: vec![0.5, 1.0, 2.0],
            scales: vec![8.0],
            round: false,
        }
    }

    /// torchvision's (sizes 32–512 = 8 · stride, rounded).
    pub fn torchvision() -> Self {
        Self {
            round: true,
            ..Self::mmdet()
        }
    }

    /// Base anchors per location.
    pub fn per_location(&self) -> usize {
        self.ratios.len() * self.scales.len()
    }

    /// The base anchors of one level, ratio-major.
    pub fn base_anchors(&self, level: usize) -> Vec<[f32; 4]> {
        let size = self.strides[level] as f32;
        let mut out = Vec::with_capacity(self.per_location());
        for &ratio in &self.ratios {
            let h_ratio = ratio.sqrt();
            let w_ratio = 1.0 / h_ratio;
            for &scale in &self.scales {
                let w = size * w_ratio * scale;
                let h = size * h_ratio * scale;
                let mut a = [-0.5 * w, -0.5 * h, 0.5 * w, 0.5 * h];
                if self.round {
                    a = a.map(f32::round);
                }
                out.push(a);
            }
        }
        out
    }

    /// Anchors of one level over a `height × width` map, `[height · width · A]` boxes.
    pub fn level_anchors(&self, level: usize, height: usize, width: usize) -> Vec<[f32; 4]> {
        let stride = self.strides[level] as f32;
        let base = self.base_anchors(level);
        let mut out = Vec::with_capacity(height * width * base.len());
        for y in 0..height {
            for x in 0..width {
                let (sx, sy) = (x as f32 * stride, y as f32 * stride);
                out.extend(
                    base.iter()
                        .map(|b| [b[0] + sx, b[1] + sy, b[2] + sx, b[3] + sy]),
                );
            }
        }
        out
    }

    /// Which anchors of one level lie on the image rather than its padding: the cell's row and
    /// column are below `ceil(image / stride)` (MMDetection's `valid_flags`).
    pub fn level_valid(
        &self,
        level: usize,
        size: (usize, usize),
        image: (usize, usize),
    ) -> Vec<bool> {
        let stride = self.strides[level];
        let valid_h = image.0.div_ceil(stride).min(size.0);
        let valid_w = image.1.div_ceil(stride).min(size.1);
        let a = self.per_location();
        let mut out = Vec::with_capacity(size.0 * size.1 * a);
        for y in 0..size.0 {
            for x in 0..size.1 {
                out.extend(std::iter::repeat_n(y < valid_h && x < valid_w, a));
            }
        }
        out
    }
}

/// `[N, 4]` boxes on the device.
pub fn boxes_tensor(boxes: &[[f32; 4]], device: &Device) -> Tensor<2> {
    let flat: Vec<f32> = boxes.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [boxes.len(), 4]), device)
}

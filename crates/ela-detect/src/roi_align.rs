//! RoIAlign (He et al. 2017) in both conventions: MMCV's (`aligned = true`, adaptive sampling),
//! which MMDetection 2.x uses, and torchvision's detection default (`aligned = false`, two
//! samples per bin side). Burn has no RoIAlign; this one is written so that gradients reach the
//! features and only device work touches them:
//!
//! 1. On the host, from each RoI's box alone: bilinear RoIAlign is separable — every sample
//!    point of a bin is `(y, x)` from a Cartesian grid, its weight is `wy(y) · wx(x)`, and the
//!    zero of an out-of-range sample is the zero of one factor. So an output bin is
//!    `Σ_{r,s} Ay[p, r] · F[r, s] · Ax[s, q]` with `Ay` the row weights averaged over the bin's
//!    samples (and `Ax` likewise), non-zero only on the rows and columns the RoI touches.
//! 2. On the device: gather each RoI's window of the feature map (one `select`, whose backward
//!    scatter-adds into the features) and contract it with `Ay` and `Ax` (two batched matmuls).
//!
//! The sample rule is torchvision's and MMCV's kernel, term for term: bin size `roi / pooled`
//! (an unaligned RoI at least 1 × 1), samples `(i + 0.5) · bin / grid`, a sample outside
//! `[-1, size]` contributes 0, one below 0 reads at 0, one at or past `size - 1` reads the last
//! row; the bin's sum is divided by `grid_h · grid_w`.

use burn::prelude::*;
use burn::tensor::TensorData;

use crate::nms::indices;

/// One RoI: the image it belongs to and its box `(x1, y1, x2, y2)` in input-image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Roi {
    /// Index of the image in the batch.
    pub batch: usize,
    /// `(x1, y1, x2, y2)`.
    pub bbox: [f32; 4],
}

/// RoIAlign's settings for one feature map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoiAlignConfig {
    /// Output `(height, width)`.
    pub output: (usize, usize),
    /// Feature-map pixels per input pixel (1 / stride).
    pub spatial_scale: f32,
    /// Samples per bin side; 0 = adaptive (`ceil(roi_size / output_size)`).
    pub sampling_ratio: usize,
    /// Half-pixel offset (MMCV `aligned = True`); without it a RoI is at least 1 × 1.
    pub aligned: bool,
}

impl RoiAlignConfig {
    /// MMDetection 2.x: `aligned = True`, adaptive sampling.
    pub fn mmdet(output: usize, spatial_scale: f32) -> Self {
        Self {
            output: (output, output),
            spatial_scale,
            sampling_ratio: 0,
            aligned: true,
        }
    }

    /// torchvision's detection models: `aligned = False`, sampling ratio 2.
    pub fn torchvision(output: usize, spatial_scale: f32) -> Self {
        Self {
            output: (output, output),
            spatial_scale,
            sampling_ratio: 2,
            aligned: false,
        }
    }
}

/// One axis of one RoI: the first feature row (or column) its window starts at and, per output
/// bin, the weight of each row of the window.
struct AxisWeights {
    start: usize,
    /// `[pooled][window]`, window = `len`.
    weights: Vec<Vec<f32>>,
    len: usize,
}

/// Bilinear taps of one sample coordinate along an axis of `size` pixels: `(low, high, weight
/// of low, weight of high)`, or `None` when the sample lies outside `[-1, size]`.
fn taps(coord: f32, size: usize) -> Option<(usize, usize, f32, f32)> {
    if coord < -1.0 || coord > size as f32 {
        return None;
    }
    let c = coord.max(0.0);
    let low = c.floor() as usize;
    if low >= size - 1 {
        return Some((size - 1, size - 1, 1.0, 0.0));
    }
    let l = c - low as f32;
    Some((low, low + 1, 1.0 - l, l))
}

/// Row (or column) weights of one RoI along one axis.
fn axis_weights(
    start: f32,
    length: f32,
    pooled: usize,
    sampling: usize,
    size: usize,
) -> AxisWeights {
    let bin = length / pooled as f32;
    let grid = if sampling > 0 {
        sampling
    } else {
        (length / pooled as f32).ceil().max(0.0) as usize
    };
    let mut entries: Vec<Vec<(usize, f32)>> = vec![Vec::new(); pooled];
    for (p, bin_entries) in entries.iter_mut().enumerate() {
        for i in 0..grid {
            let coord = start + p as f32 * bin + (i as f32 + 0.5) * bin / grid as f32;
            if let Some((low, high, wl, wh)) = taps(coord, size) {
                bin_entries.push((low, wl / grid as f32));
                bin_entries.push((high, wh / grid as f32));
            }
        }
    }
    let lo = entries.iter().flatten().map(|e| e.0).min().unwrap_or(0);
    let hi = entries.iter().flatten().map(|e| e.0).max().unwrap_or(0);
    let len = hi - lo + 1;
    let weights = entries
        .into_iter()
        .map(|bin_entries| {
            let mut row = vec![0.0; len];
            for (index, w) in bin_entries {
                row[index - lo] += w;
            }
            row
        })
        .collect();
    AxisWeights {
        start: lo,
        weights,
        len,
    }
}

/// RoIAlign of `rois` on one feature map, differentiable with respect to the features.
///
/// # Shapes
/// - `features`: `[batch, channels, height, width]`; each RoI names its image of the batch
/// - output: `[rois, channels, out_h, out_w]`
pub fn roi_align(features: Tensor<4>, rois: &[Roi], config: &RoiAlignConfig) -> Tensor<4> {
    let [batch, channels, height, width] = features.dims();
    let (ph, pw) = config.output;
    let device = features.device();
    let k = rois.len();
    if k == 0 {
        return Tensor::zeros([0, channels, ph, pw], &device);
    }
    let offset = if config.aligned { 0.5 } else { 0.0 };
    let scale = config.spatial_scale;
    let axes: Vec<(AxisWeights, AxisWeights)> = rois
        .iter()
        .map(|roi| {
            assert!(
                roi.batch < batch,
                "RoI of image {} in a batch of {batch}",
                roi.batch
            );
            let [x1, y1, x2, y2] = roi.bbox;
            let (sx, sy) = (x1 * scale - offset, y1 * scale - offset);
            let (mut rw, mut rh) = (x2 * scale - offset - sx, y2 * scale - offset - sy);
            if !config.aligned {
                rw = rw.max(1.0);
                rh = rh.max(1.0);
            }
            (
                axis_weights(sy, rh, ph, config.sampling_ratio, height),
                axis_weights(sx, rw, pw, config.sampling_ratio, width),
            )
        })
        .collect();
    // RoIs are processed in groups of similar window sizes (rounded up to powers of two), so
    // that a few large RoIs do not pad every small one's window to their size.
    let mut groups: std::collections::BTreeMap<(usize, usize), Vec<usize>> = Default::default();
    for (i, (rows, cols)) in axes.iter().enumerate() {
        let key = (rows.len.next_power_of_two(), cols.len.next_power_of_two());
        groups.entry(key).or_default().push(i);
    }
    if groups.len() == 1 {
        return gather_contract(features, rois, &axes, config.output);
    }
    let mut parts = Vec::with_capacity(groups.len());
    let mut order = Vec::with_capacity(k);
    let mut axes: Vec<Option<(AxisWeights, AxisWeights)>> = axes.into_iter().map(Some).collect();
    for members in groups.into_values() {
        let group_rois: Vec<Roi> = members.iter().map(|&i| rois[i]).collect();
        let group_axes: Vec<(AxisWeights, AxisWeights)> = members
            .iter()
            .map(|&i| axes[i].take().expect("each RoI is in one group"))
            .collect();
        parts.push(gather_contract(
            features.clone(),
            &group_rois,
            &group_axes,
            config.output,
        ));
        order.extend(members);
    }
    let mut inverse = vec![0; k];
    for (position, &roi) in order.iter().enumerate() {
        inverse[roi] = position;
    }
    Tensor::cat(parts, 0).select(0, indices(&inverse, &device))
}

/// The device part for RoIs whose weights are computed: gather each window, contract with the
/// row and column weights.
fn gather_contract(
    features: Tensor<4>,
    rois: &[Roi],
    axes: &[(AxisWeights, AxisWeights)],
    (ph, pw): (usize, usize),
) -> Tensor<4> {
    let [batch, channels, height, width] = features.dims();
    let device = features.device();
    let k = rois.len();
    let wy = axes.iter().map(|a| a.0.len).max().unwrap_or(1);
    let wx = axes.iter().map(|a| a.1.len).max().unwrap_or(1);

    let mut pixels = Vec::with_capacity(k * wy * wx);
    let mut ay = vec![0.0f32; k * ph * wy];
    let mut ax = vec![0.0f32; k * wx * pw];
    for (i, (roi, (rows, cols))) in rois.iter().zip(axes).enumerate() {
        for r in 0..wy {
            let y = (rows.start + r).min(height - 1);
            for c in 0..wx {
                let x = (cols.start + c).min(width - 1);
                pixels.push((roi.batch * height + y) * width + x);
            }
        }
        for (p, row) in rows.weights.iter().enumerate() {
            ay[(i * ph + p) * wy..][..rows.len].copy_from_slice(row);
        }
        for (q, col) in cols.weights.iter().enumerate() {
            for (s, w) in col.iter().enumerate() {
                ax[(i * wx + s) * pw + q] = *w;
            }
        }
    }
    let ay = Tensor::<3>::from_data(TensorData::new(ay, [k, ph, wy]), &device);
    let ax = Tensor::<3>::from_data(TensorData::new(ax, [k, wx, pw]), &device);

    // [B, C, H, W] → [B·H·W, C]: one row per pixel, gathered per window.
    let table = features
        .permute([0, 2, 3, 1])
        .reshape([batch * height * width, channels]);
    let windows = table
        .select(0, indices(&pixels, &device))
        .reshape([k, wy, wx * channels]);
    // Rows: [K, ph, wy] @ [K, wy, wx·C] → [K, ph, wx, C].
    let rows = ay.matmul(windows).reshape([k, ph, wx, channels]);
    // Columns: [K, ph·C, wx] @ [K, wx, pw] → [K, ph, C, pw].
    let rows = rows.permute([0, 1, 3, 2]).reshape([k, ph * channels, wx]);
    rows.matmul(ax)
        .reshape([k, ph, channels, pw])
        .permute([0, 2, 1, 3])
}

/// RoIAlign over pyramid levels (MMDetection's `SingleRoIExtractor`, torchvision's
/// `MultiScaleRoIAlign`): each RoI is read from level `floor(log2(sqrt(w · h) / 56 + 1e-6))`
/// (clamped to the levels given), i.e. P2 below 112 pixels, P5 from 448.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiLevelRoiAlign {
    /// Output side (7 for boxes, 14 for masks).
    pub output: usize,
    /// Strides of the levels read (P2–P5: 4, 8, 16, 32).
    pub strides: Vec<usize>,
    /// MMCV's convention (aligned, adaptive) or torchvision's.
    pub torchvision: bool,
}

impl MultiLevelRoiAlign {
    /// The level each RoI is read from.
    pub fn levels(&self, rois: &[Roi]) -> Vec<usize> {
        rois.iter()
            .map(|r| {
                let [x1, y1, x2, y2] = r.bbox;
                let scale = ((x2 - x1) * (y2 - y1)).max(0.0).sqrt();
                let level = (scale / 56.0 + 1e-6).log2().floor();
                level.clamp(0.0, (self.strides.len() - 1) as f32) as usize
            })
            .collect()
    }

    /// RoIAlign of every RoI on its pyramid level (by box scale), in the order of `rois`.
    ///
    /// # Shapes
    /// - `features[l]`: `[batch, channels, h_l, w_l]`, the levels of `strides`
    /// - output: `[rois, channels, output, output]`
    pub fn forward(&self, features: &[Tensor<4>], rois: &[Roi]) -> Tensor<4> {
        let levels = self.levels(rois);
        let mut parts = Vec::new();
        let mut order = Vec::with_capacity(rois.len());
        for (l, stride) in self.strides.iter().enumerate() {
            let members: Vec<usize> = (0..rois.len()).filter(|&i| levels[i] == l).collect();
            if members.is_empty() {
                continue;
            }
            let scale = 1.0 / *stride as f32;
            let config = if self.torchvision {
                RoiAlignConfig::torchvision(self.output, scale)
            } else {
                RoiAlignConfig::mmdet(self.output, scale)
            };
            let level_rois: Vec<Roi> = members.iter().map(|&i| rois[i]).collect();
            parts.push(roi_align(features[l].clone(), &level_rois, &config));
            order.extend(members);
        }
        if parts.is_empty() {
            let [_, c, _, _] = features[0].dims();
            return Tensor::zeros([0, c, self.output, self.output], &features[0].device());
        }
        // Back from level order to RoI order.
        let mut inverse = vec![0; order.len()];
        for (position, &roi) in order.iter().enumerate() {
            inverse[roi] = position;
        }
        Tensor::cat(parts, 0).select(0, indices(&inverse, &features[0].device()))
    }
}

/// RoIAlign of one RoI on one host plane (`height × width`, row-major) with the same sample
/// rule as [`roi_align`]: what cuts mask targets out of ground-truth bitmaps (MMDetection's
/// `BitmapMasks.crop_and_resize`, torchvision's `project_masks_on_boxes`). Returns
/// `out_h · out_w` values, row-major.
pub fn roi_align_plane(
    plane: &[f32],
    (height, width): (usize, usize),
    bbox: [f32; 4],
    config: &RoiAlignConfig,
) -> Vec<f32> {
    let (ph, pw) = config.output;
    let offset = if config.aligned { 0.5 } else { 0.0 };
    let scale = config.spatial_scale;
    let [x1, y1, x2, y2] = bbox;
    let (sx, sy) = (x1 * scale - offset, y1 * scale - offset);
    let (mut rw, mut rh) = (x2 * scale - offset - sx, y2 * scale - offset - sy);
    if !config.aligned {
        rw = rw.max(1.0);
        rh = rh.max(1.0);
    }
    let rows = axis_weights(sy, rh, ph, config.sampling_ratio, height);
    let cols = axis_weights(sx, rw, pw, config.sampling_ratio, width);
    // Rows first: [ph, window columns], then the column weights.
    let mut out = vec![0.0f32; ph * pw];
    let mut partial = vec![0.0f32; cols.len];
    for (p, row_weights) in rows.weights.iter().enumerate() {
        partial.fill(0.0);
        for (r, &wr) in row_weights.iter().enumerate() {
            if wr == 0.0 {
                continue;
            }
            let line = &plane[(rows.start + r).min(height - 1) * width..][..width];
            for (s, acc) in partial.iter_mut().enumerate() {
                *acc += wr * line[(cols.start + s).min(width - 1)];
            }
        }
        for (q, col_weights) in cols.weights.iter().enumerate() {
            out[p * pw + q] = col_weights.iter().zip(&partial).map(|(w, v)| w * v).sum();
        }
    }
    out
}

//! Pasting a detection's `M × M` mask probabilities back into the image at its box, in the two
//! conventions the presets follow:
//!
//! - **MMDetection** (`FCNMaskHead._do_paste_mask`): every image pixel centre `(x + 0.5,
//!   y + 0.5)` within a pixel of the box is mapped into the mask, `u = (x + 0.5 − x1) / (x2 −
//!   x1) · M − 0.5`, and read bilinearly with zeros outside the mask (`grid_sample`,
//!   `align_corners=False`, zero padding); binarized with `≥ 0.5`.
//! - **torchvision** (`paste_masks_in_image`): the mask gets a border of zeros (`M + 2`), the
//!   box grows by `(M + 2) / M` about its centre and is truncated to integers, the padded mask
//!   is resized bilinearly (`interpolate`, `align_corners=False`) to the box's
//!   `(x2 − x1 + 1) × (y2 − y1 + 1)` pixels and copied in; torchvision's COCO evaluation
//!   binarizes with `> 0.5`.

use ela_data::masks::BitMask;

/// Which paste rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasteRule {
    /// MMDetection's `grid_sample` paste, `≥` threshold.
    Mmdet,
    /// torchvision's padded resize-and-copy, `>` threshold.
    Torchvision,
}

/// The pasted probabilities of one detection: `height · width` values, row-major, zero away
/// from the box. `probs` is `m × m`, row-major; `bbox` is `(x1, y1, x2, y2)` in the image's
/// pixels.
pub fn paste_probabilities(
    probs: &[f32],
    m: usize,
    bbox: [f32; 4],
    (height, width): (usize, usize),
    rule: PasteRule,
) -> Vec<f32> {
    match rule {
        PasteRule::Mmdet => paste_mmdet(probs, m, bbox, (height, width)),
        PasteRule::Torchvision => paste_torchvision(probs, m, bbox, (height, width)),
    }
}

/// The binary mask of one detection at the image's size.
pub fn paste_mask(
    probs: &[f32],
    m: usize,
    bbox: [f32; 4],
    (height, width): (usize, usize),
    rule: PasteRule,
    threshold: f32,
) -> BitMask {
    let soft = paste_probabilities(probs, m, bbox, (height, width), rule);
    let data = soft
        .into_iter()
        .map(|p| match rule {
            PasteRule::Mmdet => u8::from(p >= threshold),
            PasteRule::Torchvision => u8::from(p > threshold),
        })
        .collect();
    BitMask {
        height,
        width,
        data,
    }
}

/// Bilinear taps of a `grid_sample` coordinate with zero padding: `(index, weight)` pairs of
/// the taps inside `[0, size)`.
fn zero_padded_taps(coord: f32, size: usize) -> [(usize, f32); 2] {
    let low = coord.floor();
    let frac = coord - low;
    let tap = |i: f32, w: f32| {
        if i >= 0.0 && (i as usize) < size {
            (i as usize, w)
        } else {
            (0, 0.0)
        }
    };
    [tap(low, 1.0 - frac), tap(low + 1.0, frac)]
}

fn paste_mmdet(probs: &[f32], m: usize, bbox: [f32; 4], (h, w): (usize, usize)) -> Vec<f32> {
    let mut out = vec![0.0f32; h * w];
    let [x1, y1, x2, y2] = bbox;
    // Only pixels within one of the box are read (MMDetection's `skip_empty`).
    let x_lo = ((x1.floor() - 1.0).max(0.0) as usize).min(w);
    let y_lo = ((y1.floor() - 1.0).max(0.0) as usize).min(h);
    let x_hi = ((x2.ceil() + 1.0).max(0.0) as usize).min(w);
    let y_hi = ((y2.ceil() + 1.0).max(0.0) as usize).min(h);
    let (bw, bh) = (x2 - x1, y2 - y1);
    let axis = |pixel: usize, start: f32, length: f32| {
        // grid = (p + 0.5 − start) / length · 2 − 1; unnormalized = ((grid + 1) · m − 1) / 2.
        let grid = (pixel as f32 + 0.5 - start) / length * 2.0 - 1.0;
        zero_padded_taps(((grid + 1.0) * m as f32 - 1.0) / 2.0, m)
    };
    let cols: Vec<[(usize, f32); 2]> = (x_lo..x_hi).map(|x| axis(x, x1, bw)).collect();
    for y in y_lo..y_hi {
        let rows = axis(y, y1, bh);
        for (i, x) in (x_lo..x_hi).enumerate() {
            let mut v = 0.0;
            for (r, wr) in rows {
                for (c, wc) in cols[i] {
                    v += wr * wc * probs[r * m + c];
                }
            }
            out[y * w + x] = v;
        }
    }
    out
}

/// PyTorch's `interpolate(mode="bilinear", align_corners=False)` taps of output index `dst`
/// along an axis resized from `input` to `output` samples.
fn interpolate_taps(dst: usize, input: usize, output: usize) -> (usize, usize, f32) {
    let scale = input as f32 / output as f32;
    let src = (scale * (dst as f32 + 0.5) - 0.5).max(0.0);
    let low = (src.floor() as usize).min(input - 1);
    let high = (low + 1).min(input - 1);
    let frac = src - low as f32;
    (low, high, frac)
}

fn paste_torchvision(probs: &[f32], m: usize, bbox: [f32; 4], (h, w): (usize, usize)) -> Vec<f32> {
    let mut out = vec![0.0f32; h * w];
    // The mask with a border of zeros.
    let padded_side = m + 2;
    let mut padded = vec![0.0f32; padded_side * padded_side];
    for r in 0..m {
        padded[(r + 1) * padded_side + 1..][..m].copy_from_slice(&probs[r * m..][..m]);
    }
    // `expand_boxes` by (M + 2) / M, then `.to(int64)` (truncation toward zero).
    let scale = padded_side as f32 / m as f32;
    let [x1, y1, x2, y2] = bbox;
    let (half_w, half_h) = ((x2 - x1) * 0.5 * scale, (y2 - y1) * 0.5 * scale);
    let (cx, cy) = ((x2 + x1) * 0.5, (y2 + y1) * 0.5);
    let b = [cx - half_w, cy - half_h, cx + half_w, cy + half_h].map(|v| v.trunc() as i64);
    let bw = (b[2] - b[0] + 1).max(1) as usize;
    let bh = (b[3] - b[1] + 1).max(1) as usize;
    let x0 = b[0].max(0);
    let x_end = (b[2] + 1).min(w as i64);
    let y0 = b[1].max(0);
    let y_end = (b[3] + 1).min(h as i64);
    let cols: Vec<(usize, usize, f32)> = (0..bw)
        .map(|x| interpolate_taps(x, padded_side, bw))
        .collect();
    for y in y0..y_end {
        let (r0, r1, fy) = interpolate_taps((y - b[1]) as usize, padded_side, bh);
        for x in x0..x_end {
            let (c0, c1, fx) = cols[(x - b[0]) as usize];
            let top =
                padded[r0 * padded_side + c0] * (1.0 - fx) + padded[r0 * padded_side + c1] * fx;
            let bottom =
                padded[r1 * padded_side + c0] * (1.0 - fx) + padded[r1 * padded_side + c1] * fx;
            out[y as usize * w + x as usize] = top * (1.0 - fy) + bottom * fy;
        }
    }
    out
}

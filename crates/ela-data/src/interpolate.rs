//! PyTorch's `interpolate(mode="bilinear", align_corners=False)` without antialiasing, on
//! float planes: what torchvision's detection transform resizes its normalized images with.
//!
//! Output pixel `(y, x)` samples the source at `((y + 0.5) · h_in / h_out − 0.5, (x + 0.5) ·
//! w_in / w_out − 0.5)`, clamped at 0, between its two neighbours per axis (the last row and
//! column are repeated), as `upsample_bilinear2d` computes it in f32.

/// One axis' source rows (or columns) and weights for `output` samples of `input`.
fn axis(input: usize, output: usize) -> Vec<(usize, usize, f32, f32)> {
    let scale = input as f32 / output as f32;
    (0..output)
        .map(|d| {
            let src = (scale * (d as f32 + 0.5) - 0.5).max(0.0);
            let i0 = (src as usize).min(input - 1);
            let i1 = if i0 + 1 < input { i0 + 1 } else { i0 };
            let l1 = src - i0 as f32;
            (i0, i1, 1.0 - l1, l1)
        })
        .collect()
}

/// Resizes `channels` planes of `height × width` (CHW, row-major) to `out_height × out_width`.
pub fn bilinear(
    planes: &[f32],
    channels: usize,
    (height, width): (usize, usize),
    (out_height, out_width): (usize, usize),
) -> Vec<f32> {
    let rows = axis(height, out_height);
    let cols = axis(width, out_width);
    let mut out = vec![0.0f32; channels * out_height * out_width];
    for c in 0..channels {
        let src = &planes[c * height * width..][..height * width];
        let dst = &mut out[c * out_height * out_width..][..out_height * out_width];
        for (y, &(y0, y1, h0, h1)) in rows.iter().enumerate() {
            for (x, &(x0, x1, w0, w1)) in cols.iter().enumerate() {
                let top = w0 * src[y0 * width + x0] + w1 * src[y0 * width + x1];
                let bottom = w0 * src[y1 * width + x0] + w1 * src[y1 * width + x1];
                dst[y * out_width + x] = h0 * top + h1 * bottom;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `torch.nn.functional.interpolate(torch.arange(12.).reshape(1, 1, 3, 4), size=(2, 6),
    /// mode="bilinear", align_corners=False)`:
    /// `[[1.0000, 1.5000, 2.1667, 2.8333, 3.5000, 4.0000],
    ///   [7.0000, 7.5000, 8.1667, 8.8333, 9.5000, 10.0000]]` (torch 2.9.1)
    #[test]
    fn bilinear_matches_pytorch() {
        let input: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let out = bilinear(&input, 1, (3, 4), (2, 6));
        let want = [
            1.0, 1.5, 2.1667, 2.8333, 3.5, 4.0, 7.0, 7.5, 8.1667, 8.8333, 9.5, 10.0,
        ];
        for (o, w) in out.iter().zip(want) {
            assert!((o - w).abs() < 1e-4, "{out:?}");
        }
    }
}

//! The detection input pipeline of MMDetection 2.x's COCO configs: resize to fit the scale
//! (1333 × 800) keeping the aspect ratio, horizontal flip with probability 0.5, normalize with
//! the ImageNet mean and std (RGB, 0–255 scale), pad to a multiple of 32; a batch pads its images
//! to the largest among them; batches are grouped by orientation (MMDetection's `GroupSampler`).

use burn::prelude::*;
use burn::tensor::TensorData;
use image::RgbImage;
use rand::{RngExt, rngs::StdRng};
use serde::{Deserialize, Serialize};

use crate::coco::DetectionTargets;
use crate::masks::BitMask;

/// The pipeline's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectionPipeline {
    /// `(long, short)`: the image is scaled by `min(long / max(w, h), short / min(w, h))`.
    pub scale: (usize, usize),
    /// Probability of a horizontal flip (training).
    pub flip: f32,
    /// Per-channel mean, RGB, 0–255.
    pub mean: [f32; 3],
    /// Per-channel std, RGB, 0–255.
    pub std: [f32; 3],
    /// Padded sizes are multiples of this.
    pub pad_divisor: usize,
    /// Also rasterize the objects' masks (Mask R-CNN's `with_mask`).
    #[serde(default)]
    pub masks: bool,
    /// How images are brought to the scale.
    #[serde(default)]
    pub rescale: Rescale,
}

/// How an image is brought to the detector's scale: both scale it by `min(long / max(w, h),
/// short / min(w, h))`, and differ in rounding and interpolation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rescale {
    /// MMDetection's: mmcv's `imrescale` (sizes rounded to the nearest pixel), bilinear on the
    /// 8-bit image, then normalized.
    #[default]
    Mmdet,
    /// torchvision's `GeneralizedRCNNTransform`: normalized (on the 0–1 scale), then
    /// `interpolate(scale_factor, "bilinear", align_corners=False, recompute_scale_factor=True)`
    /// in f32 (sizes floored).
    Torchvision,
}

impl DetectionPipeline {
    /// MMDetection's COCO pipeline.
    pub fn mmdet() -> Self {
        Self {
            scale: (1333, 800),
            flip: 0.5,
            mean: [123.675, 116.28, 103.53],
            std: [58.395, 57.12, 57.375],
            pad_divisor: 32,
            masks: false,
            rescale: Rescale::Mmdet,
        }
    }

    /// torchvision's detection transform (`min_size=800, max_size=1333`, ImageNet mean and std,
    /// batches padded to a multiple of 32).
    pub fn torchvision() -> Self {
        Self {
            flip: 0.0,
            rescale: Rescale::Torchvision,
            ..Self::mmdet()
        }
    }
}

/// One image after the pipeline.
#[derive(Debug, Clone)]
pub struct DetectionItem {
    /// The COCO image id.
    pub image_id: u64,
    /// Normalized CHW pixels of the resized image (not yet padded).
    pub pixels: Vec<f32>,
    /// `(height, width)` after resizing.
    pub size: (usize, usize),
    /// `(width, height)` factors from the original image.
    pub scale_factor: (f32, f32),
    /// Whether it was flipped.
    pub flipped: bool,
    /// Boxes and labels in resized (and flipped) pixels.
    pub targets: DetectionTargets,
    /// With [`DetectionPipeline::masks`]: each box's mask at the resized size (and flipped),
    /// resized with nearest neighbours as MMDetection's `BitmapMasks`; an object without a
    /// segmentation is its box.
    pub masks: Vec<BitMask>,
}

impl DetectionItem {
    /// A box of this item's pixels back in the original image's pixels.
    pub fn to_original(&self, b: [f32; 4]) -> [f32; 4] {
        let [mut x1, y1, mut x2, y2] = b;
        if self.flipped {
            let w = self.size.1 as f32;
            (x1, x2) = (w - x2, w - x1);
        }
        let (sw, sh) = self.scale_factor;
        [x1 / sw, y1 / sh, x2 / sw, y2 / sh]
    }
}

impl DetectionPipeline {
    /// The resized `(width, height)` of a `width × height` image (mmcv's `imrescale`).
    pub fn resized(&self, width: usize, height: usize) -> (usize, usize) {
        let (long, short) = (
            self.scale.0.max(self.scale.1),
            self.scale.0.min(self.scale.1),
        );
        let factor =
            (long as f64 / width.max(height) as f64).min(short as f64 / width.min(height) as f64);
        let size = |v: usize| match self.rescale {
            Rescale::Mmdet => ((v as f64 * factor + 0.5) as usize).max(1),
            Rescale::Torchvision => ((v as f64 * factor).floor() as usize).max(1),
        };
        (size(width), size(height))
    }

    /// The image's normalized CHW pixels at `(nh, nw)`, flipped horizontally with `flipped`.
    fn pixels(&self, image: &RgbImage, (nh, nw): (usize, usize), flipped: bool) -> Vec<f32> {
        let plane = nh * nw;
        let mut pixels = vec![0.0f32; 3 * plane];
        match self.rescale {
            Rescale::Mmdet => {
                let (w, h) = (image.width() as usize, image.height() as usize);
                let resized = if (nw, nh) == (w, h) {
                    image.clone()
                } else {
                    resize_bilinear(image, nw as u32, nh as u32)
                };
                for y in 0..nh {
                    for x in 0..nw {
                        let p = resized.get_pixel(x as u32, y as u32).0;
                        for c in 0..3 {
                            pixels[c * plane + y * nw + x] =
                                (p[c] as f32 - self.mean[c]) / self.std[c];
                        }
                    }
                }
            }
            Rescale::Torchvision => {
                // torchvision's constants, on the 0–1 scale.
                let (w, h) = (image.width() as usize, image.height() as usize);
                let mean = self.mean.map(|m| m / 255.0);
                let std = self.std.map(|s| s / 255.0);
                let mut normalized = vec![0.0f32; 3 * h * w];
                for (x, y, p) in image.enumerate_pixels() {
                    for c in 0..3 {
                        normalized[(c * h + y as usize) * w + x as usize] =
                            (p.0[c] as f32 / 255.0 - mean[c]) / std[c];
                    }
                }
                pixels = crate::interpolate::bilinear(&normalized, 3, (h, w), (nh, nw));
            }
        }
        if flipped {
            for row in pixels.chunks_exact_mut(nw) {
                row.reverse();
            }
        }
        pixels
    }

    /// Resizes, flips (when `rng` is given and draws it), normalizes; fails only on a
    /// segmentation that cannot be rasterized (its reason).
    pub fn apply(
        &self,
        image_id: u64,
        image: &RgbImage,
        targets: &DetectionTargets,
        rng: Option<&mut StdRng>,
    ) -> Result<DetectionItem, String> {
        let (w, h) = (image.width() as usize, image.height() as usize);
        let (nw, nh) = self.resized(w, h);
        let (sw, sh) = (nw as f32 / w as f32, nh as f32 / h as f32);
        let flipped = rng.is_some_and(|r| r.random::<f32>() < self.flip);
        let map = |b: &[f32; 4]| {
            let mut b = [b[0] * sw, b[1] * sh, b[2] * sw, b[3] * sh];
            b = [
                b[0].clamp(0.0, nw as f32),
                b[1].clamp(0.0, nh as f32),
                b[2].clamp(0.0, nw as f32),
                b[3].clamp(0.0, nh as f32),
            ];
            if flipped {
                [nw as f32 - b[2], b[1], nw as f32 - b[0], b[3]]
            } else {
                b
            }
        };
        let pixels = self.pixels(image, (nh, nw), flipped);
        let boxes: Vec<[f32; 4]> = targets.boxes.iter().map(map).collect();
        let masks = if self.masks {
            self.masks(targets, (h, w), (nh, nw), flipped, &boxes)
                .map_err(|e| format!("image {image_id}: {e}"))?
        } else {
            Vec::new()
        };
        Ok(DetectionItem {
            image_id,
            pixels,
            size: (nh, nw),
            scale_factor: (sw, sh),
            flipped,
            targets: DetectionTargets {
                boxes,
                labels: targets.labels.clone(),
                crowd: targets.crowd.iter().map(map).collect(),
                masks: targets.masks.clone(),
            },
            masks,
        })
    }

    /// Every box's mask rasterized at the original `(h, w)`, resized to `(nh, nw)`, flipped.
    fn masks(
        &self,
        targets: &DetectionTargets,
        (h, w): (usize, usize),
        (nh, nw): (usize, usize),
        flipped: bool,
        boxes: &[[f32; 4]],
    ) -> Result<Vec<BitMask>, String> {
        (0..boxes.len())
            .map(|i| match targets.masks.get(i).and_then(Option::as_ref) {
                Some(seg) => {
                    let m = BitMask::from_segmentation(seg, h, w)
                        .map_err(|e| format!("object {i}: {e}"))?
                        .resize_nearest(nh, nw);
                    Ok(if flipped { m.flip_horizontal() } else { m })
                }
                None => Ok(BitMask::from_box(boxes[i], nh, nw)),
            })
            .collect()
    }

    /// Pads items to a common size (the largest, rounded up to the divisor) and stacks them:
    /// `[B, 3, H, W]`, zeros in the padding.
    pub fn collate(&self, items: &[DetectionItem], device: &Device) -> Tensor<4> {
        let d = self.pad_divisor.max(1);
        let h = items
            .iter()
            .map(|i| i.size.0)
            .max()
            .unwrap_or(d)
            .div_ceil(d)
            * d;
        let w = items
            .iter()
            .map(|i| i.size.1)
            .max()
            .unwrap_or(d)
            .div_ceil(d)
            * d;
        let mut data = vec![0.0f32; items.len() * 3 * h * w];
        for (b, item) in items.iter().enumerate() {
            let (ih, iw) = item.size;
            for c in 0..3 {
                for y in 0..ih {
                    let src = &item.pixels[(c * ih + y) * iw..][..iw];
                    data[((b * 3 + c) * h + y) * w..][..iw].copy_from_slice(src);
                }
            }
        }
        Tensor::from_data(TensorData::new(data, [items.len(), 3, h, w]), device)
    }
}

/// Bilinear resize without antialiasing (OpenCV's `INTER_LINEAR`, what mmcv uses).
pub fn resize_bilinear(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    use fast_image_resize as fr;
    let src = fr::images::ImageRef::new(
        image.width(),
        image.height(),
        image.as_raw(),
        fr::PixelType::U8x3,
    )
    .expect("an RGB image's buffer is width × height × 3 bytes");
    let mut dst = fr::images::Image::new(width, height, fr::PixelType::U8x3);
    let options =
        fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Interpolation(fr::FilterType::Bilinear));
    fr::Resizer::new()
        .resize(&src, &mut dst, &options)
        .expect("source and destination are both RGB and non-empty");
    RgbImage::from_raw(width, height, dst.into_vec()).expect("width × height × 3 bytes")
}

/// Batches of image positions for one epoch, each batch of one orientation (landscape
/// `w > h`, or not), as MMDetection's `GroupSampler`: each group shuffled and filled up to a
/// whole number of batches with repeats drawn from itself, then the batches shuffled.
pub fn group_batches(sizes: &[(usize, usize)], batch: usize, rng: &mut StdRng) -> Vec<Vec<usize>> {
    let batch = batch.max(1);
    let mut batches = Vec::new();
    for landscape in [false, true] {
        let mut group: Vec<usize> = (0..sizes.len())
            .filter(|&i| (sizes[i].1 > sizes[i].0) == landscape)
            .collect();
        if group.is_empty() {
            continue;
        }
        shuffle(&mut group, rng);
        let n = group.len();
        while !group.len().is_multiple_of(batch) {
            group.push(group[rng.random_range(0..n)]);
        }
        batches.extend(group.chunks(batch).map(<[usize]>::to_vec));
    }
    shuffle(&mut batches, rng);
    batches
}

fn shuffle<T>(items: &mut [T], rng: &mut StdRng) {
    for i in (1..items.len()).rev() {
        let j = rng.random_range(0..=i);
        items.swap(i, j);
    }
}

//! Binary instance masks: rasterized from COCO segmentations (polygons, compressed or
//! uncompressed RLE, as pycocotools' `annToMask` does), resized with nearest neighbours and
//! flipped as MMDetection's `BitmapMasks` are, and encoded back to COCO's compressed RLE for
//! results files. The RLE work is `hotcoco`'s port of pycocotools' `maskApi`.

use hotcoco::mask as rle;
use serde::{Deserialize, Serialize};

use crate::coco::{RleCounts, Segmentation};

/// A `height × width` binary mask, row-major, one byte (0 or 1) per pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitMask {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// `height · width` bytes, row by row.
    pub data: Vec<u8>,
}

/// A mask as COCO's results files hold it: `{"size": [h, w], "counts": "<compressed>"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompressedRle {
    /// `[height, width]`.
    pub size: [usize; 2],
    /// pycocotools' compressed counts string.
    pub counts: String,
}

impl BitMask {
    /// All zeros.
    pub fn zeros(height: usize, width: usize) -> Self {
        Self {
            height,
            width,
            data: vec![0; height * width],
        }
    }

    /// The pixels inside a box `(x1, y1, x2, y2)`, set: what stands in for an object without a
    /// segmentation.
    pub fn from_box(b: [f32; 4], height: usize, width: usize) -> Self {
        let mut m = Self::zeros(height, width);
        let clamp = |v: f32, hi: usize| (v.round().max(0.0) as usize).min(hi);
        let (x1, x2) = (clamp(b[0], width), clamp(b[2], width));
        let (y1, y2) = (clamp(b[1], height), clamp(b[3], height));
        for y in y1..y2 {
            m.data[y * width + x1..y * width + x2].fill(1);
        }
        m
    }

    /// Rasterizes a COCO segmentation of an image of `height × width` pixels. RLE sizes must
    /// match the image's.
    pub fn from_segmentation(
        seg: &Segmentation,
        height: usize,
        width: usize,
    ) -> Result<Self, String> {
        let (h, w) = (height as u32, width as u32);
        let r = match seg {
            Segmentation::Polygons(polys) => {
                rle::fr_polys(polys, h, w).map_err(|e| format!("polygon: {e}"))?
            }
            Segmentation::Rle { counts, size } => {
                if *size != [height, width] {
                    return Err(format!(
                        "RLE of size {size:?} on an image of {height}x{width}"
                    ));
                }
                match counts {
                    RleCounts::Runs(runs) => {
                        rle::check_counts(runs, h, w).map_err(|e| format!("RLE counts: {e}"))?;
                        hotcoco::types::Rle {
                            h,
                            w,
                            counts: runs.clone(),
                        }
                    }
                    RleCounts::Compressed(s) => {
                        rle::rle_from_string(s, h, w).map_err(|e| format!("RLE string: {e}"))?
                    }
                }
            }
        };
        Ok(Self::from_column_major(&rle::decode(&r), height, width))
    }

    fn from_column_major(col: &[u8], height: usize, width: usize) -> Self {
        let mut data = vec![0u8; height * width];
        for x in 0..width {
            for y in 0..height {
                data[y * width + x] = u8::from(col[x * height + y] != 0);
            }
        }
        Self {
            height,
            width,
            data,
        }
    }

    /// COCO's compressed RLE (column-major runs, starting with zeros).
    pub fn to_rle(&self) -> CompressedRle {
        let (h, w) = (self.height, self.width);
        let mut col = vec![0u8; h * w];
        for y in 0..h {
            for x in 0..w {
                col[x * h + y] = self.data[y * w + x];
            }
        }
        let r = rle::encode(&col, h as u32, w as u32).expect("the buffer is height × width");
        CompressedRle {
            size: [h, w],
            counts: rle::rle_to_string(&r),
        }
    }

    /// Resized to `height × width` with nearest neighbours (OpenCV's `INTER_NEAREST`, which
    /// mmcv's `imrescale` uses for masks: source pixel `floor(dst · src / dst_size)`).
    pub fn resize_nearest(&self, height: usize, width: usize) -> Self {
        if (height, width) == (self.height, self.width) {
            return self.clone();
        }
        let sy = self.height as f64 / height as f64;
        let sx = self.width as f64 / width as f64;
        let cols: Vec<usize> = (0..width)
            .map(|x| ((x as f64 * sx) as usize).min(self.width - 1))
            .collect();
        let mut data = Vec::with_capacity(height * width);
        for y in 0..height {
            let src = ((y as f64 * sy) as usize).min(self.height - 1) * self.width;
            data.extend(cols.iter().map(|&x| self.data[src + x]));
        }
        Self {
            height,
            width,
            data,
        }
    }

    /// Mirrored left to right.
    pub fn flip_horizontal(&self) -> Self {
        let mut data = self.data.clone();
        for row in data.chunks_exact_mut(self.width.max(1)) {
            row.reverse();
        }
        Self { data, ..*self }
    }

    /// Number of set pixels.
    pub fn area(&self) -> usize {
        self.data.iter().filter(|&&v| v != 0).count()
    }
}

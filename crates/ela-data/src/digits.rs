//! The offline detection set: real MNIST digits (the embedded sample) placed on larger canvases
//! at several scales, some overlapping, with exact boxes and masks, written as PNG images and
//! COCO instances files by a deterministic generator (same configuration and seed, same bytes).
//!
//! Each digit is scaled bilinearly from its 28 × 28 image; its mask is the scaled pixels at or
//! above half intensity and its box the mask's tight bounds (`x2 = last column + 1`), so both
//! are exact. Digits are drawn in a random bright colour over a dark noisy background and
//! composed by maximum, so an overlapped digit stays visible and keeps its whole mask. Boxes of
//! one canvas overlap by at most `max_overlap` IoU. Categories are the ten digits, ids 1–10
//! named "0"–"9". Training canvases use MNIST's training digits, validation canvases its test
//! digits.

use std::path::{Path, PathBuf};

use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use crate::coco::{
    CocoAnnotation, CocoCategory, CocoImage, CocoInstances, RleCounts, Segmentation,
};
use crate::dataset::{DataError, ImageSet, Mnist};

/// What the generator makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigitsConfig {
    /// Canvas side in pixels.
    pub canvas: usize,
    /// Training canvases.
    pub train_images: usize,
    /// Validation canvases.
    pub val_images: usize,
    /// Digits per canvas: 1 to this.
    pub max_digits: usize,
    /// Digit side in pixels: from this …
    pub min_side: usize,
    /// … to this.
    pub max_side: usize,
    /// Largest IoU between two boxes of a canvas.
    pub max_overlap: f32,
    /// Seed.
    pub seed: u64,
}

impl Default for DigitsConfig {
    fn default() -> Self {
        Self {
            canvas: 128,
            train_images: 400,
            val_images: 100,
            max_digits: 4,
            min_side: 24,
            max_side: 72,
            max_overlap: 0.3,
            seed: 2024,
        }
    }
}

/// Where a generated set lies.
#[derive(Debug, Clone, PartialEq)]
pub struct DigitsSet {
    /// The set's folder.
    pub root: PathBuf,
}

impl DigitsSet {
    /// `annotations/instances_{split}.json`.
    pub fn annotations(&self, split: &str) -> PathBuf {
        self.root
            .join("annotations")
            .join(format!("instances_{split}.json"))
    }

    /// `{split}/`, the split's images.
    pub fn images(&self, split: &str) -> PathBuf {
        self.root.join(split)
    }
}

const STAMP: &str = "digits.json";

/// Generates the set into `root` unless a complete one made with the same configuration is
/// there. The set is written into a temporary folder beside `root` and renamed into place when
/// whole, so an interrupted run leaves nothing half-written.
pub fn ensure(root: &Path, config: &DigitsConfig) -> Result<DigitsSet, DataError> {
    let set = DigitsSet {
        root: root.to_path_buf(),
    };
    let stamp = root.join(STAMP);
    if let Ok(text) = std::fs::read_to_string(&stamp) {
        if serde_json::from_str::<DigitsConfig>(&text).ok().as_ref() == Some(config) {
            return Ok(set);
        }
        return Err(DataError::Format {
            path: stamp,
            reason: "holds a digit set made with another configuration; remove the folder or \
                     choose another --data"
                .into(),
        });
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DataError::Io { path, source }
    };
    let parent = root
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let tmp = tempfile::Builder::new()
        .prefix(".digits-")
        .tempdir_in(parent)
        .map_err(io(parent))?;
    let staged = DigitsSet {
        root: tmp.path().to_path_buf(),
    };
    let mnist = Mnist::embedded();
    for (split, digits, count, salt) in [
        ("train", &mnist.train, config.train_images, 0),
        ("val", &mnist.test, config.val_images, 1),
    ] {
        let mut rng = StdRng::seed_from_u64(config.seed.wrapping_mul(2).wrapping_add(salt));
        let dir = staged.images(split);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let mut instances = CocoInstances {
            categories: (0..10)
                .map(|d| CocoCategory {
                    id: d + 1,
                    name: d.to_string(),
                    supercategory: "digit".into(),
                })
                .collect(),
            ..Default::default()
        };
        for i in 0..count {
            let id = i as u64 + 1;
            let (pixels, objects) = canvas(config, digits, &mut rng);
            let file_name = format!("{id:06}.png");
            let path = dir.join(&file_name);
            let side = config.canvas as u32;
            image::save_buffer(&path, &pixels, side, side, image::ColorType::Rgb8).map_err(
                |e| DataError::Format {
                    path: path.clone(),
                    reason: format!("cannot write: {e}"),
                },
            )?;
            instances.images.push(CocoImage {
                id,
                file_name,
                width: config.canvas,
                height: config.canvas,
            });
            for o in objects {
                let id = instances.annotations.len() as u64 + 1;
                instances.annotations.push(CocoAnnotation {
                    id,
                    image_id: instances.images.last().unwrap().id,
                    ..o
                });
            }
        }
        instances.write(&staged.annotations(split))?;
    }
    let text = serde_json::to_string_pretty(config).expect("a config serializes");
    std::fs::write(staged.root.join(STAMP), text).map_err(io(&staged.root))?;
    let staged_path = tmp.keep();
    if root.exists() {
        std::fs::remove_dir_all(root).map_err(io(root))?;
    }
    std::fs::rename(&staged_path, root).map_err(io(root))?;
    Ok(set)
}

/// One canvas: RGB bytes and its annotations (ids filled in by the caller).
fn canvas(
    config: &DigitsConfig,
    digits: &ImageSet,
    rng: &mut StdRng,
) -> (Vec<u8>, Vec<CocoAnnotation>) {
    let side = config.canvas;
    let base: u8 = rng.random_range(0..48);
    let mut pixels: Vec<u8> = (0..side * side * 3)
        .map(|_| base.saturating_add(rng.random_range(0..24)))
        .collect();
    let wanted = rng.random_range(1..=config.max_digits);
    let mut placed: Vec<[usize; 4]> = Vec::new();
    let mut objects = Vec::new();
    let mut attempts = 0;
    while placed.len() < wanted && attempts < 50 {
        attempts += 1;
        let size = rng.random_range(config.min_side..=config.max_side.min(side));
        let x0 = rng.random_range(0..=side - size);
        let y0 = rng.random_range(0..=side - size);
        let index = rng.random_range(0..digits.len());
        let glyph = scale(digits.pixels_of(index), size);
        let mask: Vec<bool> = glyph.iter().map(|&v| v >= 128).collect();
        let Some([bx0, by0, bx1, by1]) = bounds(&mask, size) else {
            continue;
        };
        let bbox = [x0 + bx0, y0 + by0, x0 + bx1, y0 + by1];
        if placed.iter().any(|p| iou(p, &bbox) > config.max_overlap) {
            continue;
        }
        let colour = [
            rng.random_range(150..=255u8),
            rng.random_range(150..=255u8),
            rng.random_range(150..=255u8),
        ];
        let mut full = vec![false; side * side];
        for y in 0..size {
            for x in 0..size {
                let v = glyph[y * size + x] as u16;
                let at = ((y0 + y) * side + x0 + x) * 3;
                for c in 0..3 {
                    let ink = (v * colour[c] as u16 / 255) as u8;
                    pixels[at + c] = pixels[at + c].max(ink);
                }
                full[(y0 + y) * side + x0 + x] = mask[y * size + x];
            }
        }
        let area = full.iter().filter(|&&m| m).count();
        placed.push(bbox);
        objects.push(CocoAnnotation {
            id: 0,
            image_id: 0,
            category_id: digits.label(index) as u64 + 1,
            bbox: [
                bbox[0] as f64,
                bbox[1] as f64,
                (bbox[2] - bbox[0]) as f64,
                (bbox[3] - bbox[1]) as f64,
            ],
            area: area as f64,
            iscrowd: 0,
            segmentation: Some(Segmentation::Rle {
                counts: RleCounts::Runs(runs(&full, side, side)),
                size: [side, side],
            }),
        });
    }
    (pixels, objects)
}

/// A 28 × 28 glyph scaled to `size × size` (bilinear, half-pixel centres).
fn scale(glyph: &[u8], size: usize) -> Vec<u8> {
    let n = 28usize;
    let ratio = n as f32 / size as f32;
    let at = |x: isize, y: isize| -> f32 {
        if x < 0 || y < 0 || x >= n as isize || y >= n as isize {
            0.0
        } else {
            glyph[y as usize * n + x as usize] as f32
        }
    };
    let mut out = vec![0u8; size * size];
    for y in 0..size {
        for x in 0..size {
            let sx = (x as f32 + 0.5) * ratio - 0.5;
            let sy = (y as f32 + 0.5) * ratio - 0.5;
            let (fx, fy) = (sx.floor(), sy.floor());
            let (lx, ly) = (sx - fx, sy - fy);
            let (ix, iy) = (fx as isize, fy as isize);
            let v = at(ix, iy) * (1.0 - lx) * (1.0 - ly)
                + at(ix + 1, iy) * lx * (1.0 - ly)
                + at(ix, iy + 1) * (1.0 - lx) * ly
                + at(ix + 1, iy + 1) * lx * ly;
            out[y * size + x] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// Tight bounds `[x1, y1, x2, y2)` of a square mask, or `None` when empty.
fn bounds(mask: &[bool], size: usize) -> Option<[usize; 4]> {
    let mut b: Option<[usize; 4]> = None;
    for y in 0..size {
        for x in 0..size {
            if mask[y * size + x] {
                b = Some(match b {
                    None => [x, y, x + 1, y + 1],
                    Some([x0, y0, x1, y1]) => [x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1)],
                });
            }
        }
    }
    b
}

fn iou(a: &[usize; 4], b: &[usize; 4]) -> f32 {
    let w = a[2].min(b[2]).saturating_sub(a[0].max(b[0]));
    let h = a[3].min(b[3]).saturating_sub(a[1].max(b[1]));
    let inter = (w * h) as f32;
    let area = |r: &[usize; 4]| ((r[2] - r[0]) * (r[3] - r[1])) as f32;
    inter / (area(a) + area(b) - inter)
}

/// COCO's uncompressed RLE of a row-major `height × width` mask: column-major runs, starting
/// with a (possibly empty) run of zeros.
pub fn runs(mask: &[bool], height: usize, width: usize) -> Vec<u32> {
    let mut out = Vec::new();
    let mut current = false;
    let mut run = 0u32;
    for x in 0..width {
        for y in 0..height {
            let v = mask[y * width + x];
            if v != current {
                out.push(run);
                current = v;
                run = 0;
            }
            run += 1;
        }
    }
    out.push(run);
    out
}

//! ImageNet-1K in the image-folder layout (`train/<wnid>/*.JPEG`, `val/<wnid>/*.JPEG`, the layout
//! torchvision's `ImageFolder` and the official MRLA training script read), decoded and augmented
//! per item (SPEC §4):
//!
//! - training: random-resized crop (scale 0.08–1, aspect ratio 3/4–4/3, torchvision's ten
//!   attempts and centre fallback), bilinear resize to 224×224, horizontal flip with p = 0.5;
//! - evaluation: bilinear resize of the shorter side to 256, centre crop 224×224.
//!
//! Resizing is PIL's antialiased bilinear filter (what torchvision applies to PIL images), with
//! `fast_image_resize`'s SIMD kernels.
//!
//! JPEGs are decoded by `zune-jpeg` (SIMD), greyscale and CMYK files converted to RGB; the one
//! PNG that ImageNet stores under a `.JPEG` name is recognized by its signature. The augmentation
//! of item `i` in epoch `k` depends on `(seed, k, i)` alone, so runs and resumed runs see the
//! same crops whatever the number of loader workers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::data::dataset::{Dataset, DatasetError};
use image::RgbImage;
use image::imageops;
use rand::{RngExt, SeedableRng, rngs::StdRng};
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use crate::dataset::{EpochClock, ImageItem, Normalization, splitmix};

/// Side of the square training and evaluation crops.
pub const CROP: usize = 224;
/// Shorter side after the evaluation resize.
pub const RESIZE: usize = 256;

/// Per-channel mean and std of ImageNet (torchvision's constants).
pub fn normalization() -> Normalization {
    Normalization {
        mean: vec![0.485, 0.456, 0.406],
        std: vec![0.229, 0.224, 0.225],
    }
}

/// The image files of one split and their class indices.
#[derive(Debug, Clone)]
pub struct FolderIndex {
    /// Class folder names (WNIDs), sorted: class `i` is `classes[i]`.
    pub classes: Vec<String>,
    /// `(file, class)`, sorted by class, then file name.
    pub files: Vec<(PathBuf, u32)>,
}

impl FolderIndex {
    /// Scans `dir/<class>/*` for image files (`.jpeg`, `.jpg`, `.png`, any case). With
    /// `classes`, the folders must be among them (a validation split indexed by the training
    /// split's classes); otherwise the sorted folder names are the classes.
    pub fn scan(dir: &Path, classes: Option<&[String]>) -> anyhow::Result<Self> {
        use anyhow::{Context, bail};
        let entries = std::fs::read_dir(dir).with_context(|| {
            format!(
                "cannot read {}: expected the image-folder layout DIR/train/<wnid>/*.JPEG and \
                 DIR/val/<wnid>/*.JPEG",
                dir.display()
            )
        })?;
        let mut folders: Vec<String> = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
            if entry.file_type()?.is_dir() {
                folders.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        folders.sort();
        if folders.is_empty() {
            bail!("{} has no class folders", dir.display());
        }
        let classes: Vec<String> = match classes {
            Some(known) => {
                if let Some(extra) = folders.iter().find(|f| !known.contains(f)) {
                    bail!(
                        "{}: class folder '{extra}' is not a class of the training split",
                        dir.display()
                    );
                }
                known.to_vec()
            }
            None => folders.clone(),
        };
        let mut files = Vec::new();
        for folder in &folders {
            let class = classes.iter().position(|c| c == folder).expect("checked") as u32;
            let sub = dir.join(folder);
            let mut names: Vec<PathBuf> = std::fs::read_dir(&sub)
                .with_context(|| format!("cannot read {}", sub.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                        matches!(e.to_ascii_lowercase().as_str(), "jpeg" | "jpg" | "png")
                    })
                })
                .collect();
            names.sort();
            files.extend(names.into_iter().map(|p| (p, class)));
        }
        if files.is_empty() {
            bail!("{} holds no .JPEG/.jpg/.png images", dir.display());
        }
        Ok(Self { classes, files })
    }
}

/// Decodes a JPEG (or PNG) file's bytes to RGB.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<RgbImage, String> {
    let fail = |e: &dyn std::fmt::Display| format!("{}: cannot decode: {e}", path.display());
    if bytes.starts_with(b"\x89PNG") {
        return image::load_from_memory(bytes)
            .map(|i| i.to_rgb8())
            .map_err(|e| fail(&e));
    }
    let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    let pixels = decoder.decode().map_err(|e| fail(&e))?;
    let info = decoder.info().ok_or_else(|| fail(&"no image header"))?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    RgbImage::from_raw(w, h, pixels).ok_or_else(|| fail(&"pixel count does not match the size"))
}

/// torchvision's `RandomResizedCrop.get_params`: `(x, y, w, h)` of the crop.
pub fn random_resized_crop(width: u32, height: u32, rng: &mut impl RngExt) -> (u32, u32, u32, u32) {
    let area = f64::from(width) * f64::from(height);
    let (log_lo, log_hi) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
    for _ in 0..10 {
        let target = area * rng.random_range(0.08..1.0);
        let ratio = rng.random_range(log_lo..log_hi).exp();
        let w = (target * ratio).sqrt().round() as u32;
        let h = (target / ratio).sqrt().round() as u32;
        if 0 < w && w <= width && 0 < h && h <= height {
            let x = rng.random_range(0..=width - w);
            let y = rng.random_range(0..=height - h);
            return (x, y, w, h);
        }
    }
    // Fallback: centre crop at the nearest allowed aspect ratio.
    let ratio = f64::from(width) / f64::from(height);
    let (w, h) = if ratio < 3.0 / 4.0 {
        (width, (f64::from(width) / (3.0 / 4.0)).round() as u32)
    } else if ratio > 4.0 / 3.0 {
        ((f64::from(height) * (4.0 / 3.0)).round() as u32, height)
    } else {
        (width, height)
    };
    let (w, h) = (w.min(width), h.min(height));
    ((width - w) / 2, (height - h) / 2, w, h)
}

/// Resizes the `(x, y, w, h)` region of `img`, taken as an image of its own (torchvision crops,
/// then resizes), to `out_w × out_h` with the antialiased bilinear filter of PIL and
/// torchvision's `resize`, SIMD-accelerated by `fast_image_resize`.
pub fn resize_region(
    img: &RgbImage,
    (x, y, w, h): (u32, u32, u32, u32),
    out_w: u32,
    out_h: u32,
) -> RgbImage {
    use fast_image_resize as fr;
    let src =
        fr::images::ImageRef::new(img.width(), img.height(), img.as_raw(), fr::PixelType::U8x3)
            .expect("an RGB image's buffer is width × height × 3 bytes");
    let region =
        fr::images::CroppedImage::new(&src, x, y, w, h).expect("crop regions lie inside the image");
    let mut dst = fr::images::Image::new(out_w, out_h, fr::PixelType::U8x3);
    let options =
        fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear));
    fr::Resizer::new()
        .resize(&region, &mut dst, &options)
        .expect("source and destination are both RGB and non-empty");
    RgbImage::from_raw(out_w, out_h, dst.into_vec()).expect("out_w × out_h × 3 bytes")
}

/// Evaluation transform: shorter side to [`RESIZE`], centre crop [`CROP`].
pub fn eval_transform(img: &RgbImage) -> RgbImage {
    let (w, h) = img.dimensions();
    let short = w.min(h) as f64;
    let scale = RESIZE as f64 / short;
    // torchvision: the shorter side becomes exactly 256, the longer int(256 · long / short).
    let (nw, nh) = if w <= h {
        (RESIZE as u32, (f64::from(h) * scale) as u32)
    } else {
        ((f64::from(w) * scale) as u32, RESIZE as u32)
    };
    let resized = resize_region(img, (0, 0, w, h), nw, nh);
    let c = CROP as u32;
    let (x, y) = (
        ((f64::from(nw) - f64::from(c)) / 2.0).round() as u32,
        ((f64::from(nh) - f64::from(c)) / 2.0).round() as u32,
    );
    imageops::crop_imm(&resized, x, y, c, c).to_image()
}

/// Training transform: random-resized crop to [`CROP`] and a random horizontal flip.
pub fn train_transform(img: &RgbImage, rng: &mut impl RngExt) -> RgbImage {
    let region = random_resized_crop(img.width(), img.height(), rng);
    let mut out = resize_region(img, region, CROP as u32, CROP as u32);
    if rng.random_bool(0.5) {
        imageops::flip_horizontal_in_place(&mut out);
    }
    out
}

/// HWC RGB to CHW bytes.
pub fn to_chw(img: &RgbImage) -> Vec<u8> {
    let plane = (img.width() * img.height()) as usize;
    let mut out = vec![0u8; 3 * plane];
    for (i, p) in img.pixels().enumerate() {
        out[i] = p[0];
        out[plane + i] = p[1];
        out[2 * plane + i] = p[2];
    }
    out
}

/// One split of an image folder, decoded and transformed per item.
#[derive(Debug, Clone)]
pub struct ImageFolderSet {
    files: Arc<Vec<(PathBuf, u32)>>,
    /// Number of classes.
    pub num_classes: usize,
    train: bool,
    seed: u64,
    clock: EpochClock,
}

impl ImageFolderSet {
    /// The split of `index`; `train` picks the training transform, whose randomness follows
    /// `(seed, clock's epoch, item)`.
    pub fn new(index: &FolderIndex, train: bool, seed: u64, clock: EpochClock) -> Self {
        Self {
            files: Arc::new(index.files.clone()),
            num_classes: index.classes.len(),
            train,
            seed,
            clock,
        }
    }

    /// The first `n` files (in class order: use it for smoke runs, not for a class-balanced
    /// subset).
    pub fn truncated(&self, n: usize) -> Self {
        let mut out = self.clone();
        out.files = Arc::new(self.files.iter().take(n).cloned().collect());
        out
    }

    /// `n` files spread evenly over the split (the midpoints `⌊(2i + 1) · len / 2n⌋` for
    /// `i < n`; all if `n` is larger), so that a subset of a class-sorted folder still holds
    /// every class in proportion.
    pub fn evenly_spaced(&self, n: usize) -> Self {
        let len = self.files.len();
        if n >= len {
            return self.clone();
        }
        let mut out = self.clone();
        out.files = Arc::new(
            (0..n)
                .map(|i| self.files[(2 * i + 1) * len / (2 * n)].clone())
                .collect(),
        );
        out
    }

    /// Number of files.
    pub fn files_len(&self) -> usize {
        self.files.len()
    }

    /// Decodes and transforms item `index`.
    pub fn item(&self, index: usize) -> Result<ImageItem, String> {
        let (path, class) = &self.files[index];
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let img = decode(path, &bytes)?;
        let out = if self.train {
            let key = splitmix(
                splitmix(self.seed ^ 0x1a6e_4e75) ^ (self.clock.get() as u64) << 32 ^ index as u64,
            );
            train_transform(&img, &mut StdRng::seed_from_u64(key))
        } else {
            eval_transform(&img)
        };
        Ok(ImageItem {
            pixels: to_chw(&out),
            label: *class as usize,
        })
    }
}

impl Dataset<ImageItem> for ImageFolderSet {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        self.item(index)
            .map_err(|e| DatasetError::new(std::io::Error::other(e)))
    }

    fn len(&self) -> usize {
        self.files.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_resized_crops_stay_inside_and_within_the_ranges() {
        let mut rng = StdRng::seed_from_u64(1);
        for (w, h) in [(500, 375), (375, 500), (64, 64), (2000, 20), (20, 2000)] {
            for _ in 0..200 {
                let (x, y, cw, ch) = random_resized_crop(w, h, &mut rng);
                assert!(
                    cw > 0 && ch > 0 && x + cw <= w && y + ch <= h,
                    "{w}x{h}: {x},{y},{cw},{ch}"
                );
                let area = f64::from(cw * ch) / f64::from(w * h);
                let fallback = (x, y) == ((w - cw) / 2, (h - ch) / 2);
                assert!(
                    fallback || (0.07..=1.0).contains(&area),
                    "{w}x{h} area {area}"
                );
            }
        }
    }

    #[test]
    fn resizing_matches_pil_bilinear() {
        // Generated with Pillow 13.0.0 (see fixtures/imagefolder/README.md):
        //   y, x = np.mgrid[0:60, 0:80]
        //   a = np.stack([(x*7 + y*3) % 256, (x*x + 2*y) % 256, (255 - 4*x + y*y) % 256],
        //                -1).astype(np.uint8)
        //   img = Image.fromarray(a)
        //   img.crop((5, 7, 55, 47)).resize((24, 20), Image.BILINEAR)  -> pil_bilinear_crop.bin
        //   img.resize((37, 28), Image.BILINEAR)                      -> pil_bilinear_full.bin
        let img = RgbImage::from_fn(80, 60, |x, y| {
            let (x, y) = (x as i64, y as i64);
            let v = |e: i64| e.rem_euclid(256) as u8;
            image::Rgb([v(x * 7 + y * 3), v(x * x + 2 * y), v(255 - 4 * x + y * y)])
        });
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imagefolder");
        for (file, region, (w, h)) in [
            ("pil_bilinear_crop.bin", (5, 7, 50, 40), (24, 20)),
            ("pil_bilinear_full.bin", (0, 0, 80, 60), (37, 28)),
        ] {
            let want = std::fs::read(dir.join(file)).unwrap();
            let got = resize_region(&img, region, w, h).into_raw();
            assert_eq!(got.len(), want.len());
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap();
            // Both round to 8 bits from fixed-point sums: at most one step apart.
            assert!(worst <= 1, "{file}: a pixel differs from PIL's by {worst}");
        }
    }

    #[test]
    fn evaluation_resizes_the_short_side_and_crops_the_centre() {
        // 512×300, left third red, the rest blue: resized to 436×256, the centre 224 crop starts
        // at x = 106, where red (x < 145 after scaling) and blue meet at column ≈ 39.
        let img = RgbImage::from_fn(512, 300, |x, _| {
            if x < 170 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            }
        });
        let out = eval_transform(&img);
        assert_eq!(out.dimensions(), (224, 224));
        assert_eq!(out.get_pixel(0, 112)[0], 255);
        assert_eq!(out.get_pixel(30, 112)[0], 255);
        assert_eq!(out.get_pixel(50, 112)[2], 255);
        assert_eq!(out.get_pixel(223, 0)[2], 255);
    }
}

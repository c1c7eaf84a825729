//! COCO instances files (`instances_*.json`): images, categories and annotations with every field
//! detection and instance segmentation need — box, `area`, `iscrowd`, and the segmentation as
//! polygons or RLE (uncompressed counts or the compressed string) — and the detection samples
//! read from them: an image's RGB pixels with its boxes, contiguous class indices and crowd
//! regions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::dataset::DataError;

/// One image entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CocoImage {
    /// Image id.
    pub id: u64,
    /// File name, relative to the image folder.
    pub file_name: String,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
}

/// One category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CocoCategory {
    /// Category id (COCO's are 1–90 with gaps).
    pub id: u64,
    /// Name.
    pub name: String,
    /// Super-category.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub supercategory: String,
}

/// RLE counts: a list (uncompressed, usual for crowd regions) or COCO's compressed string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RleCounts {
    /// Run lengths, starting with a run of zeros, column-major.
    Runs(Vec<u32>),
    /// The LEB128-like string of pycocotools' `maskApi`.
    Compressed(String),
}

/// A segmentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Segmentation {
    /// Polygons, each `[x1, y1, x2, y2, …]`.
    Polygons(Vec<Vec<f64>>),
    /// A run-length encoded mask.
    Rle {
        /// Run lengths.
        counts: RleCounts,
        /// `[height, width]`.
        size: [usize; 2],
    },
}

/// One annotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CocoAnnotation {
    /// Annotation id.
    pub id: u64,
    /// The image it belongs to.
    pub image_id: u64,
    /// Its category.
    pub category_id: u64,
    /// `[x, y, width, height]`.
    pub bbox: [f64; 4],
    /// Area of the segmentation (what COCOeval's area ranges use).
    #[serde(default)]
    pub area: f64,
    /// 1 for a crowd region.
    #[serde(default)]
    pub iscrowd: u8,
    /// Mask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segmentation: Option<Segmentation>,
}

/// A whole instances file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CocoInstances {
    /// Images.
    pub images: Vec<CocoImage>,
    /// Annotations.
    pub annotations: Vec<CocoAnnotation>,
    /// Categories.
    pub categories: Vec<CocoCategory>,
}

impl CocoInstances {
    /// Reads and checks an instances file: every annotation's image and category exist, boxes
    /// are finite with non-negative sides, ids are unique.
    pub fn read(path: &Path) -> Result<Self, DataError> {
        let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let set: Self = serde_json::from_str(&text).map_err(|e| DataError::Format {
            path: path.to_path_buf(),
            reason: format!("not a COCO instances file: {e}"),
        })?;
        set.check().map_err(|reason| DataError::Format {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(set)
    }

    /// Writes the file atomically (a temporary file renamed into place).
    pub fn write(&self, path: &Path) -> Result<(), DataError> {
        let io = |source| DataError::Io {
            path: path.to_path_buf(),
            source,
        };
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        serde_json::to_writer(std::io::BufWriter::new(tmp.as_file()), self).map_err(|e| {
            DataError::Format {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        })?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }

    fn check(&self) -> Result<(), String> {
        let mut images = HashMap::new();
        for image in &self.images {
            if images.insert(image.id, image).is_some() {
                return Err(format!("image id {} appears twice", image.id));
            }
        }
        let mut categories = std::collections::HashSet::new();
        for c in &self.categories {
            if !categories.insert(c.id) {
                return Err(format!("category id {} appears twice", c.id));
            }
        }
        for a in &self.annotations {
            if !images.contains_key(&a.image_id) {
                return Err(format!(
                    "annotation {} names image {}, which is not listed",
                    a.id, a.image_id
                ));
            }
            if !categories.contains(&a.category_id) {
                return Err(format!(
                    "annotation {} names category {}, which is not listed",
                    a.id, a.category_id
                ));
            }
            if a.bbox.iter().any(|v| !v.is_finite()) || a.bbox[2] < 0.0 || a.bbox[3] < 0.0 {
                return Err(format!(
                    "annotation {} has an invalid bbox {:?}",
                    a.id, a.bbox
                ));
            }
        }
        Ok(())
    }

    /// Category ids in increasing order: position = the detector's class index.
    pub fn category_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.categories.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids
    }

    /// Category names in class-index order.
    pub fn class_names(&self) -> Vec<String> {
        let mut cats: Vec<&CocoCategory> = self.categories.iter().collect();
        cats.sort_by_key(|c| c.id);
        cats.into_iter().map(|c| c.name.clone()).collect()
    }
}

/// One image's objects as a detector trains on them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DetectionTargets {
    /// `(x1, y1, x2, y2)` in image pixels, non-crowd objects with positive area.
    pub boxes: Vec<[f32; 4]>,
    /// Class index (position in [`CocoInstances::category_ids`]) of each box.
    pub labels: Vec<usize>,
    /// Crowd regions (MMDetection's `gt_bboxes_ignore`), unused by the default assigners.
    pub crowd: Vec<[f32; 4]>,
    /// The segmentation of each box, when its annotation has one.
    pub masks: Vec<Option<Segmentation>>,
}

/// A COCO split: its instances file, image folder and per-image targets.
#[derive(Debug, Clone)]
pub struct CocoSplit {
    /// The instances.
    pub instances: CocoInstances,
    /// Where the images are.
    pub image_dir: PathBuf,
    /// The instances file it was read from.
    pub annotation_file: PathBuf,
    /// Images kept for training or evaluation, in file order.
    pub images: Vec<CocoImage>,
    targets: HashMap<u64, DetectionTargets>,
}

impl CocoSplit {
    /// Reads a split. With `skip_empty`, images without a usable object are left out (what
    /// MMDetection's `filter_empty_gt` does for training).
    pub fn open(
        annotation_file: &Path,
        image_dir: &Path,
        skip_empty: bool,
    ) -> Result<Self, DataError> {
        let instances = CocoInstances::read(annotation_file)?;
        let class_of: HashMap<u64, usize> = instances
            .category_ids()
            .into_iter()
            .enumerate()
            .map(|(i, id)| (id, i))
            .collect();
        let mut targets: HashMap<u64, DetectionTargets> = HashMap::new();
        for a in &instances.annotations {
            let [x, y, w, h] = a.bbox.map(|v| v as f32);
            let entry = targets.entry(a.image_id).or_default();
            // MMDetection's `_parse_ann_info`: boxes under 1 pixel a side or of zero area drop.
            if w < 1.0 || h < 1.0 || a.area <= 0.0 && a.segmentation.is_some() {
                continue;
            }
            if a.iscrowd != 0 {
                entry.crowd.push([x, y, x + w, y + h]);
            } else {
                entry.boxes.push([x, y, x + w, y + h]);
                entry.labels.push(class_of[&a.category_id]);
                entry.masks.push(a.segmentation.clone());
            }
        }
        let images = instances
            .images
            .iter()
            .filter(|i| !skip_empty || targets.get(&i.id).is_some_and(|t| !t.boxes.is_empty()))
            .cloned()
            .collect();
        Ok(Self {
            instances,
            image_dir: image_dir.to_path_buf(),
            annotation_file: annotation_file.to_path_buf(),
            images,
            targets,
        })
    }

    /// The targets of an image (empty when it has no annotation).
    pub fn targets(&self, image_id: u64) -> DetectionTargets {
        self.targets.get(&image_id).cloned().unwrap_or_default()
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.instances.categories.len()
    }

    /// Reads an image as RGB `[height, width, 3]` bytes, checking its size against the entry.
    pub fn load_rgb(&self, image: &CocoImage) -> Result<RgbImage, DataError> {
        let path = self.image_dir.join(&image.file_name);
        let rgb = read_rgb(&path)?;
        if rgb.width() as usize != image.width || rgb.height() as usize != image.height {
            return Err(DataError::Format {
                path,
                reason: format!(
                    "is {}x{} but {} says {}x{}",
                    rgb.width(),
                    rgb.height(),
                    self.annotation_file.display(),
                    image.width,
                    image.height
                ),
            });
        }
        Ok(rgb)
    }
}

/// Reads a PNG or JPEG file as RGB.
pub fn read_rgb(path: &Path) -> Result<RgbImage, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    crate::imagenet::decode(path, &bytes).map_err(|reason| DataError::Format {
        path: path.to_path_buf(),
        reason,
    })
}

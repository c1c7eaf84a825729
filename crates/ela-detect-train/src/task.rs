//! Detection on the runtime: the data, the detector, its training values (the four losses, five
//! with masks, and their sum), its evaluation (detection on the validation split scored with
//! COCO's 12 box statistics, and the 12 mask ones for Mask R-CNN; the detections are kept in
//! `val_detections.json`), its records (`coco.json`, `classes.json`) and its weights file
//! (`model.bpk`).

use std::path::Path;

use anyhow::{Context, Result};
use burn::data::dataloader::DataLoaderBuilder;
use burn::prelude::*;
use burn::train::SupervisedTraining;
use burn::train::metric::LossMetric;
use ela_data::coco::CocoCategory;
use ela_data::dataset::EpochClock;
use ela_detect::backbone::apply_settings;
use ela_detect::{CocoStats, IouType};
use ela_records::{EpochRecord, RunDir, TaskKind, Value, write_atomic, write_json};
use ela_train::classify::options::Method;
use ela_train::runtime::{Loaders, Task};

use crate::config::DetectRunConfig;
use crate::data::{DetectBatch, DetectBatcher, DetectData, EvalBatches, TrainBatches};
use crate::evaluate::{CocoResult, score};
use crate::model::{DetectionModel, Detections, LOSSES};

/// The categories file a run writes beside its configuration.
pub const CLASSES_FILE: &str = "classes.json";
/// The per-epoch COCO statistics of a run.
pub const COCO_FILE: &str = "coco.json";
/// The last evaluation's detections.
pub const DETECTIONS_FILE: &str = "val_detections.json";
/// The final weights (a Burn record).
pub const MODEL_FILE: &str = "model.bpk";
/// The prefix of the mask statistics' columns (`segm_AP`, …).
const SEGM: &str = "segm_";

/// A detection run's task: its configuration and data.
pub struct Detection {
    config: DetectRunConfig,
    data: DetectData,
}

impl Detection {
    /// Whether the detector has a mask branch.
    fn masks(&self) -> bool {
        self.data.pipeline.masks
    }

    /// The dataset's categories, in class-index order.
    fn categories(&self) -> Vec<CocoCategory> {
        let mut categories = self.data.train.instances.categories.clone();
        categories.sort_by_key(|c| c.id);
        categories
    }
}

impl Task for Detection {
    type Config = DetectRunConfig;
    type Model = DetectionModel;
    type Validation = Vec<CocoResult>;

    const KIND: TaskKind = TaskKind::Detect;

    fn open(config: &DetectRunConfig, _clock: &EpochClock) -> Result<Self> {
        let data = DetectData::open(config)?;
        config.detector(data.train.num_classes())?;
        Ok(Self {
            config: config.clone(),
            data,
        })
    }

    fn config(&self) -> &DetectRunConfig {
        &self.config
    }

    fn describe(&self, model: &DetectionModel) -> String {
        let (c, d) = (&self.config, &self.data);
        let (all, trainable) = (
            model.detector.parameter_count(),
            model.detector.trainable_parameter_count(),
        );
        format!(
            "{} R-{} FPN, {} backbone, {} classes; {all} parameters ({trainable} train); {} \
             training / {} validation images",
            model.detector.config.name(),
            c.depth,
            if c.ela {
                Method::Ela.name().to_string()
            } else {
                c.attention.to_string()
            },
            d.train.num_classes(),
            d.train.images.len(),
            d.val.images.len()
        )
    }

    fn train_items(&self) -> usize {
        self.data.train.images.len()
    }

    fn model(&self, device: &Device, resuming: bool) -> Result<DetectionModel> {
        let config = &self.config;
        let detector = config.detector(self.data.train.num_classes())?;
        let mut model = detector.init(device)?;
        if let (Some(path), false) = (&config.pretrained, resuming) {
            let b = &detector.backbone;
            let mut resnet = model.backbone.resnet;
            crate::pretrained::load_backbone(&mut resnet, path, config.ela)?;
            model.backbone.resnet = apply_settings(resnet, b.frozen_stages, b.norm_eval);
        }
        let ids = self.categories().iter().map(|c| c.id).collect();
        Ok(DetectionModel::new(model, ids))
    }

    fn loaders(&self, device_batch: usize, clock: &EpochClock) -> Result<Loaders<DetectionModel>> {
        let c = &self.config;
        let batcher = DetectBatcher::new(self.data.pipeline.clone());
        let train = DataLoaderBuilder::new(batcher.clone())
            .batch_size(1)
            .num_workers(c.workers)
            .build(TrainBatches::new(
                &self.data,
                device_batch,
                c.seed,
                clock.clone(),
            ));
        let valid = DataLoaderBuilder::new(batcher)
            .batch_size(1)
            .num_workers(c.workers)
            .build(EvalBatches::new(
                &self.data.pipeline,
                self.data.val.clone(),
                c.batch_size,
            ));
        Ok(Loaders {
            train,
            train_batch: 1,
            valid,
        })
    }

    fn metrics(training: SupervisedTraining<DetectionModel>) -> SupervisedTraining<DetectionModel> {
        training.metric_train_numeric(LossMetric::new())
    }

    fn train_values(&self, sums: &[f64], _items: usize, batches: usize) -> Vec<Value> {
        let n = batches.max(1) as f64;
        let parts: Vec<f64> = (0..LOSSES.len())
            .map(|k| sums.get(k).copied().unwrap_or(0.0) / n)
            .collect();
        let kept = if self.masks() { 5 } else { 4 };
        let mut values = vec![Value::new("loss", parts[..kept].iter().sum())];
        values.extend((0..kept).map(|k| Value::new(LOSSES[k], parts[k])));
        values
    }

    fn start_validation(&self, _model: &DetectionModel) -> Vec<CocoResult> {
        Vec::new()
    }

    fn validate(
        &self,
        model: &DetectionModel,
        batch: DetectBatch,
        state: &mut Vec<CocoResult>,
    ) -> Detections {
        let results = model.results(batch);
        state.extend(results.iter().cloned());
        Detections(results)
    }

    fn finish_validation(
        &self,
        _model: &DetectionModel,
        results: Vec<CocoResult>,
        _epoch: usize,
        run: &mut RunDir,
    ) -> Result<Vec<Value>> {
        let path = run.file(DETECTIONS_FILE);
        let boxes = score(&self.data.val, &results, &path, IouType::Bbox)?;
        let mut values = stat_values("", &boxes);
        if self.masks() {
            let masks = score(&self.data.val, &results, &path, IouType::Segm)?;
            values.extend(stat_values(SEGM, &masks));
        }
        Ok(values)
    }

    fn write_records(&self, run: &RunDir, epochs: &[EpochRecord]) -> Result<()> {
        write_json(&run.file(CLASSES_FILE), &self.categories())?;
        let coco = epochs
            .iter()
            .map(|e| {
                Ok(serde_json::json!({
                    "epoch": e.epoch,
                    "bbox": stats_of(e, "")?,
                    "segm": if self.masks() { Some(stats_of(e, SEGM)?) } else { None },
                }))
            })
            .collect::<Result<Vec<_>>>()?;
        write_json(&run.file(COCO_FILE), &coco)
    }

    fn epoch_line(&self, values: &[Value]) -> String {
        let v = |name: &str| {
            values
                .iter()
                .find(|v| v.name == name)
                .map_or(f64::NAN, |v| v.value)
        };
        let mut line = format!(
            "loss {:.4} (rpn {:.4} + {:.4}, roi {:.4} + {:.4}",
            v("loss"),
            v(LOSSES[0]),
            v(LOSSES[1]),
            v(LOSSES[2]),
            v(LOSSES[3])
        );
        if self.masks() {
            line.push_str(&format!(", mask {:.4}", v(LOSSES[4])));
        }
        line.push_str(&format!(")  bbox AP {:.4} AP50 {:.4}", v("AP"), v("AP50")));
        if self.masks() {
            line.push_str(&format!(
                "  segm AP {:.4} AP50 {:.4}",
                v("segm_AP"),
                v("segm_AP50")
            ));
        }
        line
    }

    /// The detector's record without parameter ids: they key optimizer state, which final
    /// weights have none of (and Burn draws some at random), so two runs with the same seed write
    /// byte-identical files.
    fn save_model(&self, model: &DetectionModel, dir: &Path) -> Result<()> {
        let encoded = model
            .detector
            .clone()
            .into_record()
            .into_bytes()
            .context("encoding the detector's weights")?;
        let mut tensors = burn_pack::Reader::from_bytes(encoded)
            .and_then(burn_pack::Reader::into_tensors)
            .context("re-reading the detector's weights")?;
        for t in &mut tensors {
            t.param_id = None;
        }
        let bytes = burn_pack::Writer::new(tensors)
            .into_bytes()
            .context("encoding the detector's weights")?;
        write_atomic(&dir.join(MODEL_FILE), &bytes)
    }
}

/// The 12 COCO statistics as values named `<prefix>AP`, `<prefix>AP50`, ….
fn stat_values(prefix: &str, stats: &CocoStats) -> Vec<Value> {
    CocoStats::KEYS
        .iter()
        .zip(stats.to_array())
        .map(|(k, v)| Value::new(format!("{prefix}{k}"), v))
        .collect()
}

/// The 12 COCO statistics named `<prefix>AP`, … of an epoch's record.
fn stats_of(epoch: &EpochRecord, prefix: &str) -> Result<CocoStats> {
    let values: Vec<f64> = CocoStats::KEYS
        .iter()
        .map(|k| {
            epoch
                .get(&format!("{prefix}{k}"))
                .with_context(|| format!("epoch {} records no {prefix}{k}", epoch.epoch))
        })
        .collect::<Result<_>>()?;
    Ok(CocoStats::from_slice(&values)?)
}

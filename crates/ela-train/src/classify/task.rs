//! Classification on the runtime: the data, the classifier, its training values (loss and
//! accuracy), its evaluation (loss and accuracy on the test split, and for layer-attention runs
//! each block's mean attention weights, `attention.json`), and its weights file
//! (`model.safetensors`, PyTorch names).

use std::path::Path;

use anyhow::Result;
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::Dataset;
use burn::prelude::*;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{ClassificationOutput, SupervisedTraining};
use ela_data::dataset::{EpochClock, EpochShuffled, ImageBatch, ImageBatcher};
use ela_model::AttentionKind;
use ela_records::{RunDir, TaskKind, Value};

use super::attention::AttentionAccumulator;
use super::dataset::{RunData, run_data};
use super::model::{ElaClassifier, batch_sums};
use super::options::Method;
use super::pretrained::load_pretrained;
use super::resolved::RunConfig;
use crate::runtime::sums::read_back;
use crate::runtime::{Loaders, Task};

/// A classification run's task: its configuration and data.
pub struct Classification {
    config: RunConfig,
    data: RunData,
}

/// A validation pass: summed loss and correct predictions, and the attention maps.
pub struct Evaluation {
    sums: Option<Tensor<1>>,
    items: usize,
    /// Layer-attention runs also average each block's attention weights (the report's maps);
    /// the forward pass computes them anyway.
    maps: Option<AttentionAccumulator>,
}

impl Task for Classification {
    type Config = RunConfig;
    type Model = ElaClassifier;
    type Validation = Evaluation;

    const KIND: TaskKind = TaskKind::Classify;

    fn open(config: &RunConfig, clock: &EpochClock) -> Result<Self> {
        Ok(Self {
            config: config.clone(),
            data: run_data(config, clock)?,
        })
    }

    fn config(&self) -> &RunConfig {
        &self.config
    }

    fn describe(&self, model: &ElaClassifier) -> String {
        let (config, data) = (&self.config, &self.data);
        format!(
            "{} {} ResNet-{} on {} ({}: {} train / {} test images), {} parameters",
            config.attention.name(),
            config.arch,
            config.depth,
            config.dataset.name(),
            data.source,
            data.train.len(),
            data.test.len(),
            model.net.parameter_count()
        )
    }

    fn train_items(&self) -> usize {
        self.data.train.len()
    }

    fn model(&self, device: &Device, resuming: bool) -> Result<ElaClassifier> {
        let config = &self.config;
        let mut net = config
            .model_config(self.data.num_classes, self.data.shape[0])
            .init(device)?;
        if let (Some(path), false) = (&config.pretrained, resuming) {
            load_pretrained(&mut net, path, config.attention == Method::Ela)?;
        }
        Ok(ElaClassifier::new(net).with_label_smoothing(config.label_smoothing as f32))
    }

    fn loaders(&self, device_batch: usize, clock: &EpochClock) -> Result<Loaders<ElaClassifier>> {
        let (config, data) = (&self.config, &self.data);
        let batcher = ImageBatcher::new(data.shape, data.normalization.clone());
        let n_train = data.train.len();
        let train = DataLoaderBuilder::new(batcher.clone())
            .batch_size(device_batch)
            .num_workers(config.workers)
            .build(EpochShuffled::new(
                data.train.clone(),
                n_train,
                config.seed,
                clock.clone(),
            ));
        let valid = DataLoaderBuilder::new(batcher)
            .batch_size(config.batch_size)
            .num_workers(config.workers)
            .build(data.test.clone());
        Ok(Loaders {
            train,
            train_batch: device_batch,
            valid,
        })
    }

    fn metrics(training: SupervisedTraining<ElaClassifier>) -> SupervisedTraining<ElaClassifier> {
        training.metrics((AccuracyMetric::new(), LossMetric::new()))
    }

    fn train_values(&self, sums: &[f64], items: usize, _batches: usize) -> Vec<Value> {
        let (loss, acc) = means(sums, items);
        vec![Value::new("train_loss", loss), Value::new("train_acc", acc)]
    }

    fn start_validation(&self, model: &ElaClassifier) -> Evaluation {
        let net = &model.net;
        Evaluation {
            sums: None,
            items: 0,
            maps: (net.attention() == AttentionKind::MrlaB)
                .then(|| AttentionAccumulator::new(net.skip_flags().len())),
        }
    }

    fn validate(
        &self,
        model: &ElaClassifier,
        batch: ImageBatch,
        state: &mut Evaluation,
    ) -> ClassificationOutput {
        let (out, weights) = model.evaluate(batch, state.maps.is_some());
        if let Some(maps) = state.maps.as_mut() {
            maps.add(&weights);
        }
        let sums = batch_sums(&out);
        state.sums = Some(match state.sums.take() {
            Some(s) => s + sums,
            None => sums,
        });
        state.items += out.targets.dims()[0];
        out
    }

    fn finish_validation(
        &self,
        model: &ElaClassifier,
        state: Evaluation,
        epoch: usize,
        run: &mut RunDir,
    ) -> Result<Vec<Value>> {
        let sums = state.sums.map_or_else(Vec::new, read_back);
        let (loss, acc) = means(&sums, state.items);
        if let Some(maps) = state.maps {
            let net = &model.net;
            let record = maps.finish(&net.layout(), &net.skip_flags(), net.skip_mode(), epoch);
            run.record_attention(record)?;
        }
        Ok(vec![
            Value::new("test_loss", loss),
            Value::new("test_acc", acc),
        ])
    }

    fn epoch_line(&self, values: &[Value]) -> String {
        let v = |name: &str| {
            values
                .iter()
                .find(|v| v.name == name)
                .map_or(f64::NAN, |v| v.value)
        };
        format!(
            "train loss {:.4} acc {:6.2}%  test loss {:.4} acc {:6.2}%",
            v("train_loss"),
            v("train_acc"),
            v("test_loss"),
            v("test_acc")
        )
    }

    fn derived(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![
            (
                "normalization",
                serde_json::to_value(&self.data.normalization).unwrap_or_default(),
            ),
            (
                "crop_padding",
                serde_json::json!(self.config.dataset.recipe().crop_padding),
            ),
        ]
    }

    fn save_model(&self, model: &ElaClassifier, dir: &Path) -> Result<()> {
        Ok(model.net.save_safetensors(&dir.join("model.safetensors"))?)
    }
}

/// Mean loss and accuracy (%) from summed `[loss × batch, correct]` over `items` images.
fn means(sums: &[f64], items: usize) -> (f64, f64) {
    let n = items.max(1) as f64;
    let at = |i: usize| sums.get(i).copied().unwrap_or(0.0);
    (at(0) / n, 100.0 * at(1) / n)
}

//! The detection training loop: per epoch, orientation-grouped batches through the pipeline, the
//! detector's losses (four; five with Mask R-CNN's mask loss), SGD with the 1x schedule, ELA's KL scores in the window epochs and the
//! pruning decision at each window's end; then detection on the validation split and its COCO
//! statistics, the records (`metrics.csv`, `coco.json`, `pruning.json`) and an atomic checkpoint
//! (`checkpoint/model-K.bpk`, `optim-K.bpk`, `state-K.json`, the state last). `--resume DIR`
//! continues from the newest complete checkpoint.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{
    GradientsParams, ModuleOptimizer, OptimizerRecord, SgdConfig, decay::WeightDecayConfig,
};
use burn::prelude::*;
use burn::store::ModuleRecord;
use ela_data::detection::group_batches;
use ela_detect::backbone::apply_settings;
use ela_detect::rpn::Targets;
use ela_detect::{Detector, DetectorConfig, IouType};
use ela_model::Prunable;
use ela_records::lock::{RunLock, check_new_run_dir};
use ela_records::{PruningRecord, write_atomic, write_json};
use ela_train::pruning::{PruningController, ScoreProbe, ScoreSums, WindowState};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::config::{DetectRunConfig, DetectTrainArgs};
use crate::data::DetectData;
use crate::evaluate::{detect_split, score};
use crate::metrics::{self, DetectEpochMetrics};
use crate::schedule::StepSchedule;

/// Checkpoints kept.
const KEEP: usize = 2;

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct DetectSummary {
    /// Its directory.
    pub dir: PathBuf,
    /// Every epoch's metrics.
    pub epochs: Vec<DetectEpochMetrics>,
    /// Parameters (PyTorch's count).
    pub parameters: usize,
    /// Parameters that train.
    pub trainable: usize,
}

/// What the loop keeps beside Burn's records.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LoopState {
    epoch: usize,
    iteration: usize,
    skip_flags: Vec<bool>,
    window_sum: Vec<f64>,
    window_batches: usize,
    pruning: Option<PruningRecord>,
    metrics: Vec<DetectEpochMetrics>,
}

/// Trains a detector as the flags say, in a new run directory.
pub fn train(args: &DetectTrainArgs) -> Result<DetectSummary> {
    let config = args.resolve()?;
    check_new_run_dir(&config.out)?;
    let lock = RunLock::acquire(&config.out)?;
    write_json(&config.out.join("config.json"), &config)?;
    run(&config, lock, None)
}

/// Continues the run in `dir` from its newest complete checkpoint.
pub fn resume(dir: &Path) -> Result<DetectSummary> {
    let lock = RunLock::acquire_existing(dir)?;
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("--resume: cannot read {}", path.display()))?;
    let config: DetectRunConfig = serde_json::from_str(&text).with_context(|| {
        format!(
            "--resume: {} is not a detection run's configuration",
            path.display()
        )
    })?;
    let from = latest_complete(&dir.join("checkpoint"));
    run(&config, lock, from)
}

fn record_path(dir: &Path, name: &str, epoch: usize) -> PathBuf {
    dir.join(format!(
        "{name}-{epoch}.{}",
        if name == "state" { "json" } else { "bpk" }
    ))
}

/// The newest epoch with all three files.
fn latest_complete(dir: &Path) -> Option<usize> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("state-")?
                .strip_suffix(".json")?
                .parse::<usize>()
                .ok()
        })
        .filter(|&k| {
            ["model", "optim"]
                .iter()
                .all(|n| record_path(dir, n, k).exists())
        })
        .max()
}

fn sgd(config: &DetectRunConfig) -> ModuleOptimizer {
    let momentum = (config.momentum > 0.0).then(|| {
        MomentumConfig::new()
            .with_momentum(config.momentum)
            .with_dampening(0.0)
            .with_nesterov(false)
    });
    SgdConfig::new()
        .with_momentum(momentum)
        .with_weight_decay(
            (config.weight_decay > 0.0).then(|| WeightDecayConfig::new(config.weight_decay as f32)),
        )
        .init()
}

fn build_model(
    config: &DetectRunConfig,
    detector: &DetectorConfig,
    device: &Device,
) -> Result<Detector> {
    device.seed(config.seed);
    let mut model = detector.init(device)?;
    if let Some(path) = &config.pretrained {
        let b = &detector.backbone;
        let mut resnet = model.backbone.resnet;
        ela_train::train::pretrained::load_pretrained(&mut resnet, path, config.ela)?;
        model.backbone.resnet = apply_settings(resnet, b.frozen_stages, b.norm_eval);
    }
    Ok(model)
}

fn controller(config: &DetectRunConfig, model: &Detector) -> Option<PruningController> {
    let (schedule, method) = (config.schedule.clone()?, config.method?);
    let layout = model.layout();
    let probe = ScoreProbe::new(layout.clone(), config.kl_eps, config.kl_direction);
    let record = PruningRecord {
        method,
        kl_direction: config.kl_direction,
        eps: config.kl_eps,
        skip_mode: ela_model::SkipMode::Full,
        blocks_per_stage: layout.blocks_per_stage().to_vec(),
        schedule: schedule.to_string(),
        windows: Vec::new(),
        final_mask: vec![false; layout.num_blocks()],
    };
    Some(PruningController::new(schedule, method, probe, record))
}

/// A run in progress: its data, model, optimizer, pruning controller and loop state.
struct Trainer<'a> {
    config: &'a DetectRunConfig,
    dir: PathBuf,
    data: DetectData,
    detector: DetectorConfig,
    device: Device,
    model: Detector,
    optim: ModuleOptimizer,
    pruning: Option<PruningController>,
    schedule: StepSchedule,
    state: LoopState,
}

/// One epoch's summed losses and what it ended with.
struct EpochTotals {
    losses: [f64; 5],
    batches: usize,
    lr: f64,
    seconds: f64,
}

fn run(config: &DetectRunConfig, lock: RunLock, from: Option<usize>) -> Result<DetectSummary> {
    let mut t = Trainer::new(config, lock.root())?;
    if let Some(k) = from {
        t.restore(k)?;
    }
    t.announce();
    for epoch in t.state.epoch + 1..=config.epochs {
        let totals = t.train_epoch(epoch)?;
        t.finish_epoch(epoch, totals)?;
    }
    t.finish()
}

impl<'a> Trainer<'a> {
    fn new(config: &'a DetectRunConfig, dir: &Path) -> Result<Self> {
        let data = DetectData::open(config)?;
        let detector = config.detector(data.train.num_classes())?;
        let mut categories = data.train.instances.categories.clone();
        categories.sort_by_key(|c| c.id);
        write_json(&dir.join(crate::infer::CLASSES_FILE), &categories)?;
        let device = ela_train::backend::device(config.backend, config.device)?.autodiff();
        let model = build_model(config, &detector, &device)?;
        let pruning = controller(config, &model);
        let state = LoopState {
            epoch: 0,
            iteration: 0,
            skip_flags: model.skip_flags(),
            window_sum: Vec::new(),
            window_batches: 0,
            pruning: None,
            metrics: Vec::new(),
        };
        Ok(Self {
            config,
            dir: dir.to_path_buf(),
            data,
            detector,
            device,
            model,
            optim: sgd(config),
            pruning,
            schedule: StepSchedule::one_x(config.lr, config.epochs, config.warmup_iters),
            state,
        })
    }

    /// Continues from the checkpoint of epoch `k`.
    fn restore(&mut self, k: usize) -> Result<()> {
        let ckpt = self.dir.join("checkpoint");
        let read = |name: &str| -> Result<burn::tensor::Bytes> {
            let p = record_path(&ckpt, name, k);
            Ok(burn::tensor::Bytes::from_bytes_vec(
                std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?,
            ))
        };
        self.model = self
            .model
            .clone()
            .load_record(ModuleRecord::from_bytes(read("model")?)?);
        self.optim = self
            .optim
            .clone()
            .load_record(OptimizerRecord::from_bytes(read("optim")?)?);
        let p = record_path(&ckpt, "state", k);
        self.state = serde_json::from_slice(&std::fs::read(&p)?)
            .with_context(|| format!("{} is not a checkpoint state", p.display()))?;
        self.model.set_skip_flags(&self.state.skip_flags)?;
        if let Some(c) = self.pruning.as_mut() {
            let window = WindowState {
                sum: self.state.window_sum.clone(),
                batches: self.state.window_batches,
            };
            c.restore(window, self.state.pruning.clone());
        }
        println!("resumed {} after epoch {k}", self.dir.display());
        Ok(())
    }

    fn announce(&self) {
        let c = self.config;
        println!(
            "detector: {} R-{} FPN, {} backbone, {} classes; {} parameters ({} train); {} training / {} validation images",
            self.detector.name(),
            c.depth,
            if c.ela {
                "ELA".to_string()
            } else {
                c.attention.to_string()
            },
            self.data.train.num_classes(),
            self.model.parameter_count(),
            self.model.trainable_parameter_count(),
            self.data.train.images.len(),
            self.data.val.images.len()
        );
    }

    /// One epoch of training steps; in a window epoch, the KL scores summed for the controller.
    fn train_epoch(&mut self, epoch: usize) -> Result<EpochTotals> {
        let started = Instant::now();
        let scored = self.pruning.as_ref().is_some_and(|c| c.start_epoch(epoch));
        let seed = self
            .config
            .seed
            .wrapping_mul(1_000_003)
            .wrapping_add(epoch as u64);
        let mut rng = StdRng::seed_from_u64(seed);
        let sizes: Vec<(usize, usize)> = self
            .data
            .train
            .images
            .iter()
            .map(|i| (i.height, i.width))
            .collect();
        let batches = group_batches(&sizes, self.config.batch_size, &mut rng);
        let mut sums = ScoreSums::new();
        let mut totals = EpochTotals {
            losses: [0.0; 5],
            batches: batches.len(),
            lr: 0.0,
            seconds: 0.0,
        };
        for (b, batch) in batches.iter().enumerate() {
            let parts = self.step(epoch, batch, scored, &mut sums, &mut rng, &mut totals.lr)?;
            if parts.iter().any(|v| !v.is_finite()) {
                bail!(
                    "epoch {epoch}, batch {}: a loss is not finite ({parts:?}); lower --lr",
                    b + 1
                );
            }
            for (t, v) in totals.losses.iter_mut().zip(parts) {
                *t += v;
            }
            if (b + 1) % 50 == 0 || b + 1 == batches.len() {
                let n = (b + 1) as f64;
                let l = totals.losses.map(|v| v / n);
                let mask = if self.detector.mask.is_some() {
                    format!(", mask {:.4}", l[4])
                } else {
                    String::new()
                };
                println!(
                    "epoch {epoch}/{} batch {}/{} loss {:.4} (rpn {:.4} + {:.4}, roi {:.4} + {:.4}{mask}) lr {:.2e}",
                    self.config.epochs,
                    b + 1,
                    batches.len(),
                    l.iter().sum::<f64>(),
                    l[0],
                    l[1],
                    l[2],
                    l[3],
                    totals.lr
                );
            }
        }
        totals.seconds = started.elapsed().as_secs_f64();
        if let Some(c) = self.pruning.as_mut() {
            if let Some(decided) = c.end_epoch(epoch, sums, &self.model)? {
                println!("{}", decided.line());
            }
            write_json(&self.dir.join("pruning.json"), c.record())?;
        }
        Ok(totals)
    }

    /// One SGD step on one batch; returns its losses (the mask loss 0 without a mask branch).
    fn step(
        &mut self,
        epoch: usize,
        batch: &[usize],
        scored: bool,
        sums: &mut ScoreSums,
        rng: &mut StdRng,
        lr: &mut f64,
    ) -> Result<[f64; 5]> {
        let items = self.data.items(&self.data.train, batch, Some(&mut *rng))?;
        let images = self.data.pipeline.collate(&items, &self.device);
        let sizes: Vec<(usize, usize)> = items.iter().map(|i| i.size).collect();
        let targets: Vec<Targets> = items
            .into_iter()
            .map(|i| Targets {
                boxes: i.targets.boxes,
                labels: i.targets.labels,
                masks: i.masks,
            })
            .collect();
        let losses = self
            .model
            .losses(&self.detector, images, &sizes, &targets, scored, rng);
        if let Some(c) = self.pruning.as_ref().filter(|_| scored)
            && let Some(s) = c
                .probe()
                .scores(self.model.skip_flags(), losses.attention.clone())
        {
            sums.add(s, &self.device);
        }
        let zero = Tensor::<1>::zeros([1], &self.device);
        let mask = losses.mask.as_ref().unwrap_or(&zero);
        let parts = [
            &losses.rpn_cls,
            &losses.rpn_bbox,
            &losses.cls,
            &losses.bbox,
            mask,
        ]
        .map(|t| f64::from(t.clone().into_scalar::<f32>()));
        let grads = GradientsParams::from_grads(losses.total().backward(), &self.model);
        *lr = self.schedule.lr_at(epoch, self.state.iteration);
        self.model = self.optim.step(*lr, self.model.clone(), grads);
        self.state.iteration += 1;
        Ok(parts)
    }

    /// Evaluation on the validation split, the records and the checkpoint of `epoch`.
    fn finish_epoch(&mut self, epoch: usize, totals: EpochTotals) -> Result<()> {
        let inference = self.model.valid();
        let eval_device = self.device.clone().inner();
        let results = detect_split(
            &inference,
            &self.detector,
            &self.data,
            &self.data.val,
            self.config.batch_size,
            &eval_device,
        )?;
        let path = self.dir.join("val_detections.json");
        let stats = score(&self.data.val, &results, &path, IouType::Bbox)?;
        let segm = match self.detector.mask {
            Some(_) => Some(score(&self.data.val, &results, &path, IouType::Segm)?),
            None => None,
        };
        let n = totals.batches.max(1) as f64;
        let skip_flags = self.model.skip_flags();
        let l = totals.losses.map(|v| v / n);
        self.state.metrics.push(DetectEpochMetrics {
            epoch,
            lr: totals.lr,
            loss_rpn_cls: l[0],
            loss_rpn_bbox: l[1],
            loss_cls: l[2],
            loss_bbox: l[3],
            loss_mask: self.detector.mask.as_ref().map(|_| l[4]),
            coco: stats,
            segm,
            train_seconds: totals.seconds,
            skipped: (0..skip_flags.len()).filter(|&i| skip_flags[i]).collect(),
        });
        let masks = segm.map_or(String::new(), |s| {
            format!(
                ", segm AP {:.4} AP50 {:.4} AP75 {:.4}",
                s.ap, s.ap50, s.ap75
            )
        });
        println!(
            "epoch {epoch}: bbox AP {:.4} AP50 {:.4} AP75 {:.4}{masks} ({} detections, {:.1} s training)",
            stats.ap,
            stats.ap50,
            stats.ap75,
            results.len(),
            totals.seconds
        );
        metrics::write(&self.dir, &self.state.metrics)?;
        self.state.epoch = epoch;
        self.state.skip_flags = skip_flags;
        if let Some(c) = self.pruning.as_ref() {
            self.state.window_sum = c.state().sum.clone();
            self.state.window_batches = c.state().batches;
            self.state.pruning = Some(c.record().clone());
        }
        save_checkpoint(
            &self.dir.join("checkpoint"),
            &self.model,
            &self.optim,
            &self.state,
        )
    }

    fn finish(self) -> Result<DetectSummary> {
        if let Some(c) = self.pruning.as_ref() {
            c.stop();
        }
        let parameters = self.model.parameter_count();
        let trainable = self.model.trainable_parameter_count();
        write_atomic(
            &self.dir.join("model.bpk"),
            &self.model.into_record().into_bytes()?,
        )?;
        Ok(DetectSummary {
            dir: self.dir,
            epochs: self.state.metrics,
            parameters,
            trainable,
        })
    }
}

fn save_checkpoint(
    dir: &Path,
    model: &Detector,
    optim: &ModuleOptimizer,
    state: &LoopState,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let k = state.epoch;
    write_atomic(
        &record_path(dir, "model", k),
        &model.clone().into_record().into_bytes()?,
    )?;
    write_atomic(
        &record_path(dir, "optim", k),
        &optim.to_record().into_bytes()?,
    )?;
    write_json(&record_path(dir, "state", k), state)?;
    if k > KEEP {
        for name in ["state", "model", "optim"] {
            let old = record_path(dir, name, k - KEEP);
            if old.exists() {
                std::fs::remove_file(&old)
                    .with_context(|| format!("cannot remove {}", old.display()))?;
            }
        }
    }
    Ok(())
}

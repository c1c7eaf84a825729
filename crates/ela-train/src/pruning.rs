//! ELA's pruning step as one component that any training loop can drive, for any model that
//! exposes its layer-attention blocks ([`Prunable`]): classification here, detection alike.
//!
//! - [`ScoreProbe`]: the switch a model wrapper reads in its training step; while it is on (the
//!   window epochs), the step turns the forward pass's attention weights into per-block KL
//!   scores (SPEC §3.1), computed in f32 and kept on the device.
//! - [`ScoreSums`]: one epoch's scores summed on the device (one read-back per epoch).
//! - [`PruningController`]: the windows (SPEC §3.2), the pending KL sums of the window in
//!   progress, the decision at each window's end (EBQM or an ablation, SPEC §3.3–3.4), the skip
//!   mask it sets on the model, and the [`PruningRecord`] of every decision.
//!
//! The loop's part: [`PruningController::start_epoch`] before an epoch's batches, the probe's
//! scores into a [`ScoreSums`] per batch, [`PruningController::end_epoch`] after the epoch with
//! the sums and the model. Writing the record and checkpointing [`PruningController::state`] is
//! the caller's (the run directory is not this module's concern).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, bail};
use burn::prelude::*;
use burn::tensor::FloatDType;
use ela_model::prunable::Prunable;
use ela_prune::{KlDirection, PruneMethod, PruningSchedule, SkipMask, StageLayout, Window};

use ela_records::{BlockRecord, PruningRecord, WindowRecord, WindowSums};

/// The redundancy-score probe (SPEC §3.1): a switch shared between the controller and the model
/// wrapper's training step, with how the scores are computed.
#[derive(Debug, Clone)]
pub struct ScoreProbe {
    collect: Arc<AtomicBool>,
    layout: StageLayout,
    eps: f64,
    direction: KlDirection,
}

impl ScoreProbe {
    /// A probe for models of `layout`, initially off.
    pub fn new(layout: StageLayout, eps: f64, direction: KlDirection) -> Self {
        Self {
            collect: Arc::new(AtomicBool::new(false)),
            layout,
            eps,
            direction,
        }
    }

    /// Switches score collection on (window epochs) or off (every other epoch pays nothing).
    pub fn set_collecting(&self, on: bool) {
        self.collect.store(on, Ordering::Relaxed);
    }

    /// Whether the training step should return attention weights and scores now.
    pub fn collecting(&self) -> bool {
        self.collect.load(Ordering::Relaxed)
    }

    /// One batch's `[num_blocks]` KL scores (0 for blocks without an active predecessor) from
    /// each block's attention weights (`None` for blocks without retrieval), for a model with
    /// `skip_flags`; off the autodiff graph and in f32 at any training precision (ε = 1e-8
    /// underflows in f16). `None` when no block has a score.
    pub fn scores(
        &self,
        skip_flags: Vec<bool>,
        attention: Vec<Option<Tensor<4>>>,
    ) -> Option<Tensor<1>> {
        let mask = SkipMask::from_flags(&self.layout, skip_flags).ok()?;
        let attention: Vec<Option<Tensor<4>>> = attention
            .into_iter()
            .map(|a| a.map(|a| a.without_autodiff().cast(FloatDType::F32)))
            .collect();
        ela_prune::kl::block_scores(&self.layout, &mask, &attention, self.eps, self.direction)
            .map(|(scores, _)| scores)
    }
}

/// One epoch's per-block scores, summed on the device they are moved to.
#[derive(Debug, Default)]
pub struct ScoreSums {
    sum: Option<Tensor<1>>,
    batches: usize,
}

impl ScoreSums {
    /// No batch yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one batch's scores, moved to `device` (data-parallel workers' come from theirs).
    pub fn add(&mut self, scores: Tensor<1>, device: &Device) {
        let scores = scores.to_device(device);
        self.sum = Some(match self.sum.take() {
            Some(acc) => acc + scores,
            None => scores,
        });
        self.batches += 1;
    }

    /// Batches added.
    pub fn batches(&self) -> usize {
        self.batches
    }

    /// The sums, read back (the epoch's one read-back), or `None` without batches.
    fn read(self) -> Result<Option<(Vec<f32>, usize)>> {
        let Some(sum) = self.sum else {
            return Ok(None);
        };
        let values = sum
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("reading the KL scores back: {e:?}"))?;
        Ok(Some((values, self.batches)))
    }
}

/// A decision the controller took at a window's end.
#[derive(Debug, Clone)]
pub struct Decided {
    /// What was decided, as recorded.
    pub window: WindowRecord,
    /// The averaged scores per block (`None` where a block had none).
    pub scores: Vec<Option<f64>>,
    /// Every skipped block after the decision.
    pub skipped: Vec<usize>,
}

impl Decided {
    /// One line for the log: the window, its scores and what it skipped.
    pub fn line(&self) -> String {
        let shown: Vec<String> = self
            .scores
            .iter()
            .map(|s| s.map_or("-".into(), |v| format!("{v:.4}")))
            .collect();
        format!(
            "pruning window {}-{} ({} batches): KL [{}] -> skip {:?}; skipping {:?}",
            self.window.start,
            self.window.end,
            self.window.batches,
            shown.join(", "),
            self.window.newly_skipped,
            self.skipped
        )
    }
}

/// ELA's pruning step; see the module docs.
#[derive(Debug)]
pub struct PruningController {
    schedule: PruningSchedule,
    method: PruneMethod,
    layout: StageLayout,
    probe: ScoreProbe,
    window: WindowSums,
    record: PruningRecord,
}

impl PruningController {
    /// A controller deciding with `method` at the ends of `schedule`'s windows, for models of
    /// `layout` scored by `probe`, recording into `record` (whose decided windows it continues).
    pub fn new(
        schedule: PruningSchedule,
        method: PruneMethod,
        probe: ScoreProbe,
        record: PruningRecord,
    ) -> Self {
        let layout = probe.layout.clone();
        Self {
            window: WindowSums {
                sum: vec![0.0; layout.num_blocks()],
                batches: 0,
            },
            schedule,
            method,
            layout,
            probe,
            record,
        }
    }

    /// Continues from a checkpoint: the pending window sums and the decisions so far (a state
    /// for another number of blocks is not this model's and is ignored).
    pub fn restore(&mut self, window: WindowSums, record: Option<PruningRecord>) {
        if window.sum.len() == self.layout.num_blocks() {
            self.window = window;
        }
        if let Some(record) = record {
            self.record = record;
        }
    }

    /// The probe to give the model wrapper.
    pub fn probe(&self) -> &ScoreProbe {
        &self.probe
    }

    /// The windows.
    pub fn schedule(&self) -> &PruningSchedule {
        &self.schedule
    }

    /// The decision method.
    pub fn method(&self) -> &PruneMethod {
        &self.method
    }

    /// Every decision so far.
    pub fn record(&self) -> &PruningRecord {
        &self.record
    }

    /// The pending window, for a checkpoint.
    pub fn state(&self) -> &WindowSums {
        &self.window
    }

    /// Before epoch `epoch` (1-based): the probe is on in window epochs only. Returns whether
    /// this epoch is scored.
    pub fn start_epoch(&self, epoch: usize) -> bool {
        let on = self.schedule.window_of(epoch).is_some();
        self.probe.set_collecting(on);
        on
    }

    /// The probe off, for good (after the last epoch, or when training stops).
    pub fn stop(&self) {
        self.probe.set_collecting(false);
    }

    /// After epoch `epoch`: adds its score sums to the window in progress and, at a window's
    /// end, decides from the window's averaged scores, sets the resulting skip flags on `model`
    /// and records the decision, which it returns.
    pub fn end_epoch(
        &mut self,
        epoch: usize,
        sums: ScoreSums,
        model: &impl Prunable,
    ) -> Result<Option<Decided>> {
        if let Some((values, batches)) = sums.read()? {
            for (sum, v) in self.window.sum.iter_mut().zip(values) {
                *sum += f64::from(v);
            }
            self.window.batches += batches;
        }
        match self.schedule.decision_at(epoch) {
            Some(w) => {
                let window = self.schedule.windows()[w];
                self.decide(window, model).map(Some)
            }
            None => Ok(None),
        }
    }

    /// Takes one window's decision, applies it to `model`, and records it.
    fn decide(&mut self, window: Window, model: &impl Prunable) -> Result<Decided> {
        if self.window.batches == 0 {
            bail!(
                "no training batch was scored in pruning window {window}: there are no KL \
                 scores to decide from"
            );
        }
        let layout = &self.layout;
        let mut mask = SkipMask::from_flags(layout, model.skip_flags())?;
        let batches = self.window.batches as f64;
        let scores: Vec<Option<f64>> = layout
            .active_predecessors(&mask)
            .iter()
            .zip(&self.window.sum)
            .map(|(p, &sum)| p.is_some().then_some(sum / batches))
            .collect();
        let decision = self.method.decide(&scores)?;
        mask.skip(layout, &decision.skip)?;
        model.set_skip_flags(mask.flags())?;
        let blocks = (0..layout.num_blocks())
            .map(|i| {
                let (stage, position) = layout.locate(i).expect("block in layout");
                BlockRecord {
                    index: i,
                    stage,
                    position,
                    kl: scores[i],
                    normalized: decision.normalized[i],
                    mapped: decision.mapped[i],
                    skip: decision.skip.contains(&i),
                    skipped_after: mask.is_skipped(i),
                }
            })
            .collect();
        let record = WindowRecord {
            start: window.start,
            end: window.end,
            batches: self.window.batches,
            quantile: decision.quantile,
            blocks,
            newly_skipped: decision.skip.clone(),
            mask: mask.flags().to_vec(),
        };
        self.window.sum.iter_mut().for_each(|s| *s = 0.0);
        self.window.batches = 0;
        self.record.windows.push(record.clone());
        self.record.final_mask = mask.flags().to_vec();
        Ok(Decided {
            window: record,
            scores,
            skipped: mask.skipped_indices(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use ela_model::ModelError;
    use ela_prune::KlDirection;

    use super::*;

    /// A model that is nothing but prunable blocks: the controller needs no more.
    struct Blocks {
        layout: StageLayout,
        flags: Mutex<Vec<bool>>,
    }

    impl Prunable for Blocks {
        fn layout(&self) -> StageLayout {
            self.layout.clone()
        }
        fn skip_flags(&self) -> Vec<bool> {
            self.flags.lock().unwrap().clone()
        }
        fn set_skip_flags(&self, flags: &[bool]) -> Result<(), ModelError> {
            *self.flags.lock().unwrap() = flags.to_vec();
            Ok(())
        }
    }

    fn sums(batches: &[[f32; 6]], device: &Device) -> ScoreSums {
        let mut sums = ScoreSums::new();
        for b in batches {
            sums.add(Tensor::<1>::from_data(*b, device), device);
        }
        sums
    }

    #[test]
    fn the_controller_prunes_any_prunable_model_at_its_window_ends() {
        let device = Device::flex();
        let layout = StageLayout::new(vec![3, 3]).unwrap();
        let model = Blocks {
            layout: layout.clone(),
            flags: Mutex::new(vec![false; 6]),
        };
        let record = PruningRecord {
            method: PruneMethod::Fixed { k: 1 },
            kl_direction: KlDirection::PrevToNext,
            eps: 1e-8,
            skip_mode: ela_model::SkipMode::Full,
            blocks_per_stage: vec![3, 3],
            schedule: "1-2,4".into(),
            windows: Vec::new(),
            final_mask: vec![false; 6],
        };
        let probe = ScoreProbe::new(layout, 1e-8, KlDirection::PrevToNext);
        let mut controller = PruningController::new(
            PruningSchedule::parse("1-2,4", 4).unwrap(),
            PruneMethod::Fixed { k: 1 },
            probe.clone(),
            record,
        );
        // Epoch 1 of window 1-2: scored, nothing decided yet.
        assert!(controller.start_epoch(1) && probe.collecting());
        let e1 = sums(&[[0.0, 0.5, 0.3, 0.0, 0.4, 0.6]; 2], &device);
        assert!(controller.end_epoch(1, e1, &model).unwrap().is_none());
        assert_eq!(controller.state().batches, 2);
        // Epoch 2 ends the window: the mean over its 4 batches decides.
        assert!(controller.start_epoch(2));
        let e2 = sums(&[[0.0, 0.5, 0.1, 0.0, 0.4, 0.6]; 2], &device);
        let d = controller.end_epoch(2, e2, &model).unwrap().unwrap();
        assert_eq!(d.window.batches, 4);
        let kl: Vec<Option<f64>> = d.window.blocks.iter().map(|b| b.kl).collect();
        let want = [None, Some(0.5), Some(0.2), None, Some(0.4), Some(0.6)];
        for (got, want) in kl.iter().zip(want) {
            match (got, want) {
                (Some(g), Some(w)) => assert!((g - w).abs() < 1e-6, "{kl:?}"),
                (g, w) => assert_eq!(g.is_some(), w.is_some(), "{kl:?}"),
            }
        }
        assert_eq!(d.window.newly_skipped, vec![2], "the smallest mean score");
        assert_eq!(
            model.skip_flags(),
            [false, false, true, false, false, false]
        );
        assert_eq!(controller.record().windows.len(), 1);
        assert_eq!(controller.record().final_mask, model.skip_flags());
        assert_eq!(controller.state().batches, 0, "the window is spent");
        assert!(
            d.line().starts_with("pruning window 1-2 (4 batches)"),
            "{}",
            d.line()
        );
        // Epoch 3 is outside every window: no probe, no decision.
        assert!(!controller.start_epoch(3) && !probe.collecting());
        assert!(
            controller
                .end_epoch(3, ScoreSums::new(), &model)
                .unwrap()
                .is_none()
        );
        // Window 4 saw no batch: no made-up decision.
        assert!(controller.start_epoch(4));
        let err = controller
            .end_epoch(4, ScoreSums::new(), &model)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no training batch was scored"), "{err}");
        controller.stop();
        assert!(!probe.collecting());
    }
}

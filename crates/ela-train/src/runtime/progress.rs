//! Terminal progress for Burn's learner: one bar per split with the epoch, via `indicatif`;
//! and [`PassBar`], the same bar for a pass outside training.
//! When stderr is not a terminal (CI, logs), bars are hidden and only the per-epoch summary
//! lines printed by the training loop remain.

use burn::train::LearnerSummary;
use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::MetricDefinition;
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use indicatif::{ProgressBar, ProgressStyle};

/// Progress bars for training and evaluation splits.
pub struct BarRenderer {
    bar: Option<ProgressBar>,
    epoch: usize,
    total_epochs: usize,
}

impl BarRenderer {
    /// A renderer with no bar yet.
    pub fn new() -> Self {
        Self {
            bar: None,
            epoch: 0,
            total_epochs: 0,
        }
    }

    fn open(&mut self, label: String, total: usize) {
        self.close();
        self.bar = Some(bar(label, total));
    }

    fn close(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// A bar of `total` items labelled `label` (hidden when stderr is not a terminal).
fn bar(label: String, total: usize) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>16} [{bar:30}] {pos}/{len} items {elapsed_precise} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(label);
    bar
}

/// The progress of a pass outside training (an evaluation): one bar, cleared when dropped.
pub struct PassBar(ProgressBar);

impl PassBar {
    /// A bar of `total` items.
    pub fn new(label: &str, total: usize) -> Self {
        Self(bar(label.to_string(), total))
    }

    /// `done` of `total` items are done.
    pub fn update(&self, done: usize, total: usize) {
        self.0.set_length(total as u64);
        self.0.set_position(done as u64);
    }
}

impl Drop for PassBar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

impl Default for BarRenderer {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsRendererTraining for BarRenderer {
    fn update_train(&mut self, _state: MetricState) {}
    fn update_valid(&mut self, _state: MetricState) {}
    fn on_train_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        self.close();
        Ok(())
    }
}

impl MetricsRendererEvaluation for BarRenderer {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}
}

impl TrainingProgressLogger for BarRenderer {
    fn start(
        &mut self,
        total_epochs: usize,
        starting_epoch: usize,
        _: Option<usize>,
        _: Option<&str>,
    ) {
        self.total_epochs = total_epochs;
        self.epoch = starting_epoch;
    }
    fn update_epoch(&mut self, epoch: usize) {
        self.epoch = epoch + 1;
    }
    fn start_split(&mut self, split: &str, total_items: usize) {
        self.open(
            format!("epoch {}/{} {split}", self.epoch, self.total_epochs),
            total_items,
        );
    }
    fn update_split(&mut self, items_processed: usize) {
        if let Some(bar) = &self.bar {
            bar.set_position(items_processed as u64);
        }
    }
    fn end_split(&mut self) {
        self.close();
    }
    fn end(&mut self) {
        self.close();
    }
    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for BarRenderer {
    fn start_global_progress(&mut self, _total_tests: usize) {}
    fn start_test(&mut self, name: &str, total_items: usize) {
        self.open(format!("test {name}"), total_items);
    }
    fn update_test_progress(&mut self, items_processed: usize) {
        self.update_split(items_processed);
    }
    fn end_test(&mut self) {
        self.close();
    }
    fn end_global_progress(&mut self) {}
    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRenderer for BarRenderer {
    fn manual_close(&mut self) {}
    fn register_metric(&mut self, _definition: MetricDefinition) {}
}

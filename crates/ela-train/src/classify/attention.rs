//! Attention maps of a validation pass, accumulated on the device: the per-block mean weights
//! that [`ela_records::lay_out`] places into an [`AttentionRecord`].

use burn::prelude::*;
use burn::tensor::FloatDType;
use ela_model::SkipMode;
use ela_prune::StageLayout;
use ela_records::{AttentionRecord, lay_out};

/// Sums attention weights over the batches of a validation pass, on the device.
#[derive(Debug)]
pub struct AttentionAccumulator {
    sums: Vec<Option<Tensor<1>>>,
    items: usize,
}

impl AttentionAccumulator {
    /// An empty accumulator for a model of `num_blocks` blocks.
    pub fn new(num_blocks: usize) -> Self {
        Self {
            sums: vec![None; num_blocks],
            items: 0,
        }
    }

    /// Adds one batch: per block, weights `[batch, heads, 1, len]` or `None`.
    pub fn add(&mut self, attention: &[Option<Tensor<4>>]) {
        let mut batch = 0;
        for (sum, a) in self.sums.iter_mut().zip(attention) {
            let Some(a) = a else { continue };
            let [b, _, _, len] = a.dims();
            batch = b;
            // Summed over the batch, averaged over heads.
            let per_entry = a
                .clone()
                .cast(FloatDType::F32)
                .sum_dim(0)
                .mean_dim(1)
                .reshape([len]);
            *sum = Some(match sum.take() {
                Some(s) => s + per_entry,
                None => per_entry,
            });
        }
        self.items += batch;
    }

    /// Reads the sums back (one read per block) and lays them out per stage.
    pub fn finish(
        self,
        layout: &StageLayout,
        flags: &[bool],
        mode: SkipMode,
        epoch: usize,
    ) -> AttentionRecord {
        let n = self.items.max(1) as f64;
        let means: Vec<Option<Vec<f64>>> = self
            .sums
            .into_iter()
            .map(|s| {
                s.map(|t| {
                    let v: Vec<f32> = t.into_data().try_to_vec::<f32>().unwrap_or_default();
                    v.into_iter().map(|x| x as f64 / n).collect()
                })
            })
            .collect();
        lay_out(layout, flags, mode, epoch, &means)
    }
}

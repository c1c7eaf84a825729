//! The devices of a run: the main one, which holds the model, the optimizer and validation, and
//! the data-parallel workers' (the main one first).

use anyhow::{Result, bail};
use burn::tensor::Device;

use super::settings::RunSettings;
use crate::backend::{self, Backend};

/// The devices of a run.
pub struct Devices {
    /// The main device, without autodiff (the banner and summary name it).
    pub base: Device,
    /// Every worker's autodiff device; one entry without data parallelism.
    pub workers: Vec<Device>,
}

impl Devices {
    /// Opens (and probes) each configured device once, for `n_train` training items.
    pub fn open(settings: &RunSettings, n_train: usize) -> Result<Self> {
        let indices = &settings.devices;
        let (kind, precision) = (settings.backend, settings.precision);
        let base = backend::device_with(kind, indices[0], precision)?;
        // The CPU backend's logical devices are all the one CPU device.
        let same = |i: usize, j: usize| i == j || kind == Backend::Cpu;
        let mut made: Vec<(usize, Device)> = vec![(indices[0], base.clone())];
        let mut workers = Vec::with_capacity(indices.len());
        for &i in indices {
            let d = match made.iter().find(|(j, _)| same(i, *j)) {
                Some((_, d)) => d.clone(),
                None => {
                    let d = backend::device_with(kind, i, precision)?;
                    made.push((i, d.clone()));
                    d
                }
            };
            workers.push(d.autodiff());
        }
        if n_train < workers.len() {
            bail!(
                "{n_train} training item(s) cannot be shared by {} data-parallel devices",
                workers.len()
            );
        }
        Ok(Self { base, workers })
    }

    /// The main autodiff device: the model, the optimizer and validation live there.
    pub fn main(&self) -> Device {
        self.workers[0].clone()
    }

    /// Images per device of every global batch of `batch_size`.
    pub fn batch(&self, batch_size: usize) -> usize {
        batch_size / self.workers.len()
    }

    /// Optimizer steps per epoch over `items` loader items in batches of `loader_batch`: the
    /// last device's share (Burn's split gives it the remainder) sets the count.
    pub fn steps_per_epoch(&self, items: usize, loader_batch: usize) -> usize {
        let n = self.workers.len();
        let last_share = items - (n - 1) * (items / n);
        last_share.div_ceil(loader_batch.max(1))
    }
}

//! The flags every task's `train` has for where it runs: the backend, the device or the
//! data-parallel devices, and the precision.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::backend::{self, Backend, Precision};

/// Where a run trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct DeviceArgs {
    /// Backend.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: Backend,
    /// Device index of the backend.
    #[arg(long, default_value_t = 0)]
    #[serde(default)]
    pub device: usize,
    /// Train data-parallel on these device indices, e.g. `0,1,2,3`: every step each device
    /// takes --batch-size / N images of the global batch, and the averaged gradients make one
    /// optimizer step on the first device, which also validates. Default: --device alone.
    #[arg(long, value_delimiter = ',')]
    #[serde(default)]
    pub devices: Vec<usize>,
    /// Float type of every tensor: f32, or f16 / bf16 where the backend supports them (weights,
    /// gradients and optimizer state included; KL scores and epoch sums stay f32).
    #[arg(long, value_enum, default_value = "f32")]
    #[serde(default)]
    pub precision: Precision,
}

impl DeviceArgs {
    /// The training devices' indices: --devices, or --device alone.
    pub fn indices(&self) -> Vec<usize> {
        if self.devices.is_empty() {
            vec![self.device]
        } else {
            self.devices.clone()
        }
    }

    /// Checks the devices for a global batch of `batch_size` images before anything runs: each
    /// device exists once, and takes an equal share of every batch.
    pub fn check(&self, batch_size: usize) -> Result<()> {
        let indices = self.indices();
        let n = indices.len();
        if !batch_size.is_multiple_of(n) {
            bail!("--batch-size {batch_size} must be a multiple of the number of --devices ({n})");
        }
        let flag = if self.devices.is_empty() {
            "--device"
        } else {
            "--devices"
        };
        backend::check_device_indices(self.backend, &indices, flag)
    }
}

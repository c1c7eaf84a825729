//! The run directory of an ELA training and the records in it.
//!
//! It owns the files a run leaves behind and their formats: `metrics.csv`, `pruning.json`,
//! `attention.json`, KL logs, the atomic writes that put every file in place, the lock that
//! makes one process the owner of a run directory, and the guard that keeps a command from
//! writing over its own inputs. Training writes these records, reports and reproductions read
//! them. It knows nothing of tensors, devices, training or figures.
//!
//! - [`files`]: atomic writes.
//! - [`metrics`]: the `metrics.csv` file.
//! - [`detect_epochs`]: a detection run's `epochs.json`.
//! - [`pruning`]: the `pruning.json` file.
//! - [`attention`]: `attention.json` and how memory entries map to blocks.
//! - [`kl_log`]: per-block KL scores from a JSON array or a `pruning.json`.
//! - [`run_dir`]: the run directory, appending epochs and attention maps.
//! - [`lock`]: ownership of a run directory by one process (an exclusive lock).
//! - [`guard`]: no command writes over one of its inputs.
//! - [`revision`]: the source revision a run was made from.

pub mod attention;
pub mod detect_epochs;
pub mod files;
pub mod guard;
pub mod kl_log;
pub mod lock;
pub mod metrics;
pub mod pruning;
pub mod revision;
pub mod run_dir;

pub use attention::{ATTENTION_FILE, AttentionRecord, lay_out, memory_blocks, read_attention};
pub use detect_epochs::{
    DETECT_EPOCHS_FILE, DetectEpochRecord, is_detection_run, read_detect_epochs,
};
pub use files::{write_atomic, write_json};
pub use kl_log::parse_kl_log;
pub use metrics::{EpochMetrics, parse_metrics, read_metrics};
pub use pruning::{BlockRecord, PruningRecord, WindowRecord, read_pruning};
pub use revision::git_revision;
pub use run_dir::RunDir;

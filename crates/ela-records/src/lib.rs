//! The run directory of an ELA training, whatever its task, and the records in it.
//!
//! It owns the files a run leaves behind and their formats: the task tag of `config.json`, the
//! per-epoch records (`metrics.csv`), `summary.json`, the checkpoint folder's names and typed
//! state, `pruning.json`, `attention.json`, KL logs, the atomic writes that put every file in
//! place, the lock that makes one process the owner of a run directory, and the guard that keeps
//! a command from writing over its own inputs. Training writes these records; reports,
//! reproductions and evaluations read them. It knows nothing of tensors, devices, training or
//! figures, and depends on no tensor library.
//!
//! - [`task`]: the task a run directory holds.
//! - [`epochs`]: the per-epoch record of every task and `metrics.csv`.
//! - [`summary`]: `summary.json`, the one "finished" marker, and resume overrides.
//! - [`checkpoint`]: the checkpoint folder, its file names and its typed state.
//! - [`files`]: atomic writes.
//! - [`pruning`]: the `pruning.json` file.
//! - [`attention`]: `attention.json` and how memory entries map to blocks.
//! - [`kl_log`]: per-block KL scores from a JSON array or a `pruning.json`.
//! - [`run_dir`]: the run directory, appending epochs and attention maps.
//! - [`lock`]: ownership of a run directory by one process (an exclusive lock).
//! - [`guard`]: no command writes over one of its inputs.
//! - [`revision`]: the source revision a run was made from.

pub mod attention;
pub mod checkpoint;
pub mod epochs;
pub mod files;
pub mod guard;
pub mod kl_log;
pub mod lock;
pub mod pruning;
pub mod revision;
pub mod run_dir;
pub mod summary;
pub mod task;

pub use attention::{ATTENTION_FILE, AttentionRecord, lay_out, memory_blocks, read_attention};
pub use checkpoint::{CheckpointState, WindowSums, checkpoint_dir, latest_complete};
pub use epochs::{EpochRecord, METRICS_FILE, Value, metrics_csv, parse_metrics, read_metrics};
pub use files::{write_atomic, write_json};
pub use kl_log::parse_kl_log;
pub use pruning::{BlockRecord, PruningRecord, WindowRecord, read_pruning};
pub use revision::git_revision;
pub use run_dir::RunDir;
pub use summary::{ResumeOverride, RunSummary, SUMMARY_FILE, is_finished, read_summary};
pub use task::{ALL_TASKS, TaskKind, read_task, task_of};

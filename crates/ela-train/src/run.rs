//! The run directory: resolved config, revision and seed, per-epoch metrics, pruning decisions
//! and final weights. Every file is written atomically (temp file, fsync, rename), so a crash
//! never leaves a half-written file behind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::attention::AttentionRecord;
use crate::lock::{RunLock, check_contents, check_new_run_dir};

/// Per-epoch attention maps of layer-attention (MRLA-B, ELA) runs.
pub const ATTENTION_FILE: &str = "attention.json";

/// Reads `attention.json`, naming the file in any error.
pub fn read_attention(path: &Path) -> Result<Vec<AttentionRecord>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid attention log", path.display()))
}

/// Writes `bytes` to `path` atomically: a temporary sibling, fsync, then rename over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    // Temporary files are created private (0600); run files are ordinary files (0644).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("cannot set permissions of {}", path.display()))?;
    }
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot move the new {} into place", path.display()))?;
    Ok(())
}

/// Serializes `value` as pretty JSON into `path`, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let json = serde_json::to_string_pretty(value).expect("serializable");
    write_atomic(path, format!("{json}\n").as_bytes())
}

/// One row of `metrics.csv`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Training accuracy (%), on the augmented batches as seen.
    pub train_acc: f64,
    /// Test loss.
    pub test_loss: f64,
    /// Test accuracy (%).
    pub test_acc: f64,
    /// Wall seconds of the training split (forward, backward, optimizer).
    pub train_seconds: f64,
    /// Wall seconds of the whole epoch (training, evaluation, pruning step).
    pub epoch_seconds: f64,
    /// Skipped blocks during this epoch, ascending.
    pub skipped: Vec<usize>,
}

const CSV_HEADER: &str = "epoch,lr,train_loss,train_acc,test_loss,test_acc,train_seconds,epoch_seconds,num_skipped,skipped";

impl EpochMetrics {
    fn csv_row(&self) -> String {
        let skipped: Vec<String> = self.skipped.iter().map(usize::to_string).collect();
        format!(
            "{},{},{:.6},{:.4},{:.6},{:.4},{:.3},{:.3},{},{}",
            self.epoch,
            self.lr,
            self.train_loss,
            self.train_acc,
            self.test_loss,
            self.test_acc,
            self.train_seconds,
            self.epoch_seconds,
            self.skipped.len(),
            skipped.join(";")
        )
    }
}

/// One block's entry in a pruning window record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlockRecord {
    /// 0-based index over all blocks.
    pub index: usize,
    /// 0-based stage.
    pub stage: usize,
    /// 0-based position in the stage.
    pub position: usize,
    /// Averaged KL score D_t, or `null` (first block of a stage, already skipped).
    pub kl: Option<f64>,
    /// Min-max normalized score, where the method normalized it.
    pub normalized: Option<f64>,
    /// Mapped value, where the method mapped it.
    pub mapped: Option<f64>,
    /// Whether this decision skips the block.
    pub skip: bool,
    /// Whether the block is skipped after this decision (cumulative).
    pub skipped_after: bool,
}

/// One pruning window's measurement and decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowRecord {
    /// First epoch of the window (1-based).
    pub start: usize,
    /// Last epoch; the decision was applied after it.
    pub end: usize,
    /// Training batches whose scores were averaged.
    pub batches: usize,
    /// The method's quantile Q of the scores (EBQM only).
    pub quantile: Option<f64>,
    /// Per block.
    pub blocks: Vec<BlockRecord>,
    /// Blocks this decision skipped.
    pub newly_skipped: Vec<usize>,
    /// The cumulative skip mask after the decision.
    pub mask: Vec<bool>,
}

/// The whole `pruning.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PruningRecord {
    /// Decision method and its parameters.
    pub method: ela_prune::PruneMethod,
    /// KL direction.
    pub kl_direction: ela_prune::KlDirection,
    /// ε padding of the KL.
    pub eps: f64,
    /// Skip mode of the model.
    pub skip_mode: ela_model::SkipMode,
    /// Blocks per stage.
    pub blocks_per_stage: Vec<usize>,
    /// The configured windows.
    pub schedule: String,
    /// One record per window whose decision was taken.
    pub windows: Vec<WindowRecord>,
    /// The skip mask at the end of the run.
    pub final_mask: Vec<bool>,
}

/// The run directory and its files, owned by this process for as long as a clone of it lives
/// (see [`crate::lock`]).
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
    metrics: Vec<EpochMetrics>,
    attention: Vec<AttentionRecord>,
    lock: Arc<RunLock>,
}

impl RunDir {
    /// Creates (or reuses, if empty) the directory and takes its lock; refuses one that already
    /// holds a run, one that holds files of anything else, and one that another process owns.
    pub fn create(root: &Path) -> Result<Self> {
        check_new_run_dir(root)?;
        let lock = RunLock::acquire(root)?;
        // Another process may have started a run here between the check and the lock.
        check_contents(root)?;
        Ok(Self {
            root: root.to_path_buf(),
            metrics: Vec::new(),
            attention: Vec::new(),
            lock: Arc::new(lock),
        })
    }

    /// Reopens the run directory that `lock` owns to continue it with the metrics of its epochs
    /// so far (a resumed run, or none for a run started again); `metrics.csv` and
    /// `attention.json` are rewritten with exactly these epochs.
    pub fn reopen(lock: RunLock, metrics: Vec<EpochMetrics>) -> Result<Self> {
        let root = lock.root().to_path_buf();
        if !root.join("config.json").exists() {
            anyhow::bail!("{} holds no run (no config.json)", root.display());
        }
        let last = metrics.last().map_or(0, |m| m.epoch);
        let path = root.join(ATTENTION_FILE);
        let mut attention = if path.exists() {
            read_attention(&path)?
        } else {
            Vec::new()
        };
        attention.retain(|a| a.epoch <= last);
        let run = Self {
            root,
            metrics,
            attention,
            lock: Arc::new(lock),
        };
        run.write_metrics()?;
        if path.exists() {
            write_json(&path, &run.attention)?;
        }
        Ok(run)
    }

    /// Appends a validation pass's attention maps and rewrites `attention.json` atomically.
    pub fn record_attention(&mut self, record: AttentionRecord) -> Result<()> {
        self.attention.push(record);
        write_json(&self.file(ATTENTION_FILE), &self.attention)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The directory's lock, to keep it owned after this value is gone.
    pub fn lock(&self) -> Arc<RunLock> {
        self.lock.clone()
    }

    /// Path of a file in the run directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Appends an epoch's metrics and rewrites `metrics.csv` atomically.
    pub fn record_epoch(&mut self, metrics: EpochMetrics) -> Result<()> {
        self.metrics.push(metrics);
        self.write_metrics()
    }

    fn write_metrics(&self) -> Result<()> {
        let mut csv = String::from(CSV_HEADER);
        csv.push('\n');
        for m in &self.metrics {
            csv.push_str(&m.csv_row());
            csv.push('\n');
        }
        write_atomic(&self.file("metrics.csv"), csv.as_bytes())
    }

    /// Metrics recorded so far.
    pub fn metrics(&self) -> &[EpochMetrics] {
        &self.metrics
    }
}

/// The git revision of the working tree, with `-dirty` if it has changes, or `unknown`.
pub fn git_revision() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "HEAD"]) {
        Some(rev) => match run(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(s) if !s.is_empty() => format!("{rev}-dirty"),
            _ => rev,
        },
        None => "unknown".into(),
    }
}

/// Parses a KL log: a JSON array of per-block scores (numbers or `null`), or a run's
/// `pruning.json`, whose `window` (1-based; default: the last decided one) is read. `path` only
/// names the file in errors.
pub fn parse_kl_log(path: &Path, text: &str, window: Option<usize>) -> Result<Vec<Option<f64>>> {
    let value: serde_json::Value = serde_json::from_str(text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    let bad = |what: String| anyhow::anyhow!("{}: {what}", path.display());
    let scores = match &value {
        serde_json::Value::Array(items) => items.clone(),
        serde_json::Value::Object(obj) => {
            let windows = obj
                .get("windows")
                .and_then(serde_json::Value::as_array)
                .ok_or_else(|| {
                    bad("expected a JSON array of scores or a pruning.json with 'windows'".into())
                })?;
            if windows.is_empty() {
                bail!(bad("the pruning.json has no decided window yet".into()));
            }
            let w = window.unwrap_or(windows.len());
            let chosen = w
                .checked_sub(1)
                .and_then(|i| windows.get(i))
                .ok_or_else(|| {
                    bad(format!(
                        "--window {w} is not one of its {} windows",
                        windows.len()
                    ))
                })?;
            chosen["blocks"]
                .as_array()
                .ok_or_else(|| bad(format!("window {w} has no 'blocks' array")))?
                .iter()
                .map(|b| b["kl"].clone())
                .collect()
        }
        _ => bail!(bad(
            "expected a JSON array of scores or a pruning.json object".into()
        )),
    };
    scores
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            serde_json::Value::Null => Ok(None),
            serde_json::Value::Number(n) => Ok(n.as_f64()),
            other => Err(bad(format!(
                "entry {i} is {other}, expected a number or null"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_files_and_run_dirs_are_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_json(&p, &vec![1, 2]).unwrap();
        write_json(&p, &vec![3]).unwrap();
        let v: Vec<i32> = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(v, vec![3]);
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary files left behind");

        let run = dir.path().join("run");
        let mut r = RunDir::create(&run).unwrap();
        r.record_epoch(EpochMetrics {
            epoch: 1,
            lr: 0.1,
            train_loss: 1.0,
            train_acc: 50.0,
            test_loss: 0.9,
            test_acc: 60.0,
            train_seconds: 1.0,
            epoch_seconds: 1.5,
            skipped: vec![1, 3],
        })
        .unwrap();
        let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        assert_eq!(csv.lines().count(), 2);
        assert!(csv.lines().nth(1).unwrap().ends_with(",2,1;3"));
        write_json(&run.join("config.json"), &1).unwrap();
        // While its owner lives the directory is busy; after, it is a run.
        let err = RunDir::create(&run).unwrap_err().to_string();
        assert!(err.contains("in use by another ela process"), "{err}");
        drop(r);
        let err = RunDir::create(&run).unwrap_err().to_string();
        assert!(err.contains("already holds a run"), "{err}");
    }

    #[test]
    fn a_run_directory_that_cannot_be_created_is_named_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        let err = format!("{:#}", RunDir::create(&file.join("run")).unwrap_err());
        assert!(
            err.contains("cannot create run directory") && err.contains("a-file/run"),
            "{err}"
        );
        let lock = RunLock::acquire(dir.path()).unwrap();
        let err = format!("{:#}", RunDir::reopen(lock, Vec::new()).unwrap_err());
        assert!(err.contains("holds no run"), "{err}");
    }
}

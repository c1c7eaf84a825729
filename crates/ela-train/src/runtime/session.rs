//! A run's session: its directory, owned by this process, and where the run starts.
//!
//! A new run creates its directory (refusing one that holds anything but an unstarted run, and
//! one another process owns). A resumed run takes the directory's lock before it reads anything,
//! reads its task's configuration back, records what the resume changes, removes what a killed
//! write left behind, refuses a finished run, verifies the newest complete checkpoint and
//! continues from it, or, without one, starts the run again from its first epoch.

use std::path::Path;

use anyhow::{Context, Result, bail};
use ela_records::checkpoint::{CheckpointState, checkpoint_dir, latest_complete, load_state};
use ela_records::lock::RunLock;
use ela_records::{ResumeOverride, RunDir, is_finished, task_of};

use super::checkpoint::verify_records;
use super::settings::RunSettings;
use super::task::{Task, TaskConfig};

/// Where a run starts: its directory (owned) and the checkpoint it continues from, if any.
pub struct Start {
    /// The run directory.
    pub run: RunDir,
    /// The checkpoint's state a resumed run continues from.
    pub resumed: Option<CheckpointState>,
}

impl Start {
    /// Whether the run's start records are written anew: a new run, or one started again.
    pub fn fresh(&self) -> bool {
        self.resumed.is_none()
    }
}

/// The configuration of the run in the directory `lock` owns, read back from its `config.json`
/// as task `T`'s, with `lr` (if given) replacing the base learning rate from the epoch the run
/// resumes at: the change is recorded in the configuration, so a later resume keeps it.
pub fn resumed_config<T: Task>(lock: &RunLock, lr: Option<f64>) -> Result<T::Config> {
    let dir = lock.root();
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("--resume: cannot read {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("--resume: {} is not valid JSON", path.display()))?;
    let task = task_of(&value).with_context(|| format!("--resume: {}", path.display()))?;
    if task != T::KIND {
        bail!(
            "--resume: {} holds a {task} run, not a {} run",
            dir.display(),
            T::KIND
        );
    }
    let mut config: T::Config = serde_json::from_value(value).with_context(|| {
        format!(
            "--resume: {} is not a {} run's configuration",
            path.display(),
            T::KIND
        )
    })?;
    config.set_out(dir);
    if let Some(lr) = lr {
        let previous = config.settings()?.schedule.base;
        let from_epoch = latest_complete(&checkpoint_dir(dir)).map_or(1, |k| k + 1);
        println!("resuming with base learning rate {lr} from epoch {from_epoch} (was {previous})");
        config.set_lr(lr);
        config.push_override(ResumeOverride {
            from_epoch,
            lr,
            previous_lr: previous,
        });
        // The new rate is checked like any flag.
        config.settings().context("--lr")?;
    }
    Ok(config)
}

/// Creates a new run's directory, or (`resuming`, the lock of an existing one) finds the
/// newest complete checkpoint to continue from; without one the run starts again from epoch 1.
pub fn open(settings: &RunSettings, resuming: Option<RunLock>) -> Result<Start> {
    let out = &settings.out;
    let checkpoints = checkpoint_dir(out);
    let start = match resuming {
        None => Start {
            run: RunDir::create(out)?,
            resumed: None,
        },
        Some(lock) => {
            if is_finished(out) {
                bail!(
                    "--resume: {} already finished all {} epochs",
                    out.display(),
                    settings.epochs
                );
            }
            let removed = lock.remove_stale_temporaries()?;
            if removed > 0 {
                println!("removed {removed} unfinished temporary file(s) of the stopped run");
            }
            let resumed = match latest_complete(&checkpoints) {
                Some(k) => {
                    verify_records(&checkpoints, k)?;
                    let state = load_state(&checkpoints, k)?;
                    check_state(&state, settings, &checkpoints)?;
                    Some(state)
                }
                None => {
                    println!(
                        "--resume: {} holds no complete checkpoint (the run stopped during its \
                         first epoch): starting it again from epoch 1 with its configuration",
                        out.display()
                    );
                    None
                }
            };
            let epochs = resumed.as_ref().map_or_else(Vec::new, |s| s.epochs.clone());
            Start {
                run: RunDir::reopen(lock, epochs)?,
                resumed,
            }
        }
    };
    std::fs::create_dir_all(&checkpoints)
        .with_context(|| format!("cannot create {}", checkpoints.display()))?;
    Ok(start)
}

/// A checkpoint's state belongs to the run it is resumed with.
fn check_state(state: &CheckpointState, settings: &RunSettings, dir: &Path) -> Result<()> {
    if state.seed != settings.seed {
        bail!(
            "{}: the checkpoint of epoch {} was trained with seed {}, the run's configuration \
             says {}",
            dir.display(),
            state.epoch,
            state.seed,
            settings.seed
        );
    }
    if state.epoch > settings.epochs {
        bail!(
            "{}: the checkpoint of epoch {} is beyond the run's {} epochs",
            dir.display(),
            state.epoch,
            settings.epochs
        );
    }
    Ok(())
}

/// The current UTC time as `YYYYMMDD-HHMMSS`.
pub fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

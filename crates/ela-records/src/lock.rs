//! Ownership of a run directory: one `ela` process at a time.
//!
//! A run directory is owned through an exclusive advisory lock on its `.lock` file, held for the
//! whole life of the process that trains in it (`train`, and `train --resume`). The operating
//! system releases the lock when the process ends, however it ends (a crash or SIGKILL
//! included), so a stale lock never blocks a resume. A second process is refused before it
//! reads or writes anything in the directory, with the first one's process id.
//!
//! A new run also refuses a folder that is not empty and is not an `ela` run: it never writes
//! among a user's own files.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The lock file inside a run directory.
pub const LOCK_FILE: &str = ".lock";

/// The prefix of the temporary files of atomic writes (`tempfile`'s).
const TEMPORARY_PREFIX: &str = ".tmp";

/// The exclusive lock of a run directory, held until dropped or until the process ends.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    root: PathBuf,
}

impl RunLock {
    /// Creates `root` if needed and takes its lock; refused, naming the holder, while another
    /// process holds it.
    pub fn acquire(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create run directory {}", root.display()))?;
        let path = root.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("run directory {} is not writable", root.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(busy(root, &holder_of(&path))),
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        // The holder's process id, for the message of a process that is refused: a note, not
        // a record (on a full disk the run's first real write names the failure).
        file.set_len(0)
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .ok();
        Ok(Self {
            _file: file,
            root: root.to_path_buf(),
        })
    }

    /// Takes the lock of the existing run directory `root` (`--resume`): refused when it holds
    /// no run, or while another process holds it.
    pub fn acquire_existing(root: &Path) -> Result<Self> {
        if !root.join("config.json").is_file() {
            bail!(
                "--resume: {} holds no run (no config.json); start a new run with --out",
                root.display()
            );
        }
        Self::acquire(root)
    }

    /// The locked directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Removes the temporary files that a process killed in the middle of an atomic write left
    /// in the run directory and its `checkpoint/` and `report/` folders; only the lock holder
    /// may, since no write of its own is under way. Returns how many were removed.
    pub fn remove_stale_temporaries(&self) -> Result<usize> {
        let mut removed = 0;
        for dir in [
            self.root.clone(),
            self.root.join("checkpoint"),
            self.root.join("report"),
        ] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let stale = entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(TEMPORARY_PREFIX)
                    && entry.file_type().is_ok_and(|t| t.is_file());
                if stale {
                    std::fs::remove_file(entry.path())
                        .with_context(|| format!("cannot remove {}", entry.path().display()))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// The error of a run directory that another process owns (`holder`: " (process N)" or "").
fn busy(root: &Path, holder: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "run directory {} is in use by another ela process{holder}: two runs in one directory \
         would mix their checkpoints. Wait for it to end, or choose another --out",
        root.display()
    )
}

/// " (process N)" from the lock file at `path`, or nothing.
fn holder_of(path: &Path) -> String {
    match std::fs::read_to_string(path).unwrap_or_default().trim() {
        "" => String::new(),
        pid => format!(" (process {pid})"),
    }
}

/// Whether another process holds `root`'s lock (without creating the lock file): its
/// " (process N)" note, or `None`.
fn holder(root: &Path) -> Option<String> {
    let path = root.join(LOCK_FILE);
    let file = OpenOptions::new().read(true).write(true).open(&path).ok()?;
    match file.try_lock() {
        Err(TryLockError::WouldBlock) => Some(holder_of(&path)),
        _ => None,
    }
}

/// Refuses `root` for a new run unless it is missing, empty, or holds only what a start of
/// `ela` that stopped before writing `config.json` leaves (the lock file, an empty
/// `checkpoint/`). A folder holding a run is named as one, with how to continue it.
pub fn check_new_run_dir(root: &Path) -> Result<()> {
    if let Some(holder) = holder(root) {
        return Err(busy(root, &holder));
    }
    check_contents(root)
}

/// [`check_new_run_dir`] without the lock: what the folder holds.
pub fn check_contents(root: &Path) -> Result<()> {
    if root.join("config.json").exists() {
        bail!(
            "run directory {} already holds a run; choose another --out, or continue it with \
             `--resume {0}`",
            root.display()
        );
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        // Missing (created later), or not a directory (named when it is created).
        return Ok(());
    };
    let mut foreign: Vec<String> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name == LOCK_FILE
            || (name == "checkpoint"
                && std::fs::read_dir(entry.path()).is_ok_and(|mut d| d.next().is_none()));
        if !ours {
            foreign.push(name);
        }
    }
    if !foreign.is_empty() {
        foreign.sort();
        let shown: Vec<&str> = foreign.iter().take(5).map(String::as_str).collect();
        bail!(
            "--out {} is not empty and holds no ela run (it has {}{}): a run would overwrite \
             files there; choose a new or empty folder",
            root.display(),
            shown.join(", "),
            if foreign.len() > shown.len() {
                format!(" and {} more", foreign.len() - shown.len())
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("run");
        let first = RunLock::acquire(&root).unwrap();
        let err = format!("{:#}", RunLock::acquire(&root).unwrap_err());
        assert!(
            err.contains("in use by another ela process")
                && err.contains(&format!("process {}", std::process::id())),
            "{err}"
        );
        drop(first);
        RunLock::acquire(&root).unwrap();
    }

    #[test]
    fn only_empty_folders_and_unstarted_runs_take_a_new_run() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("run");
        check_new_run_dir(&root).unwrap();
        std::fs::create_dir(&root).unwrap();
        check_new_run_dir(&root).unwrap();
        std::fs::write(root.join(LOCK_FILE), b"1\n").unwrap();
        std::fs::create_dir(root.join("checkpoint")).unwrap();
        check_new_run_dir(&root).unwrap();
        std::fs::write(root.join("metrics.csv"), b"mine").unwrap();
        let err = check_new_run_dir(&root).unwrap_err().to_string();
        assert!(
            err.contains("not empty and holds no ela run") && err.contains("metrics.csv"),
            "{err}"
        );
        std::fs::write(root.join("config.json"), b"{}").unwrap();
        let err = check_new_run_dir(&root).unwrap_err().to_string();
        assert!(
            err.contains("already holds a run") && err.contains("--resume"),
            "{err}"
        );
    }

    #[test]
    fn stale_temporaries_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("run");
        let lock = RunLock::acquire(&root).unwrap();
        std::fs::create_dir(root.join("checkpoint")).unwrap();
        std::fs::write(root.join(".tmpAbC12"), b"half").unwrap();
        std::fs::write(root.join("checkpoint/.tmpXyZ"), b"half").unwrap();
        std::fs::write(root.join("checkpoint/model-1.bpk"), b"x").unwrap();
        assert_eq!(lock.remove_stale_temporaries().unwrap(), 2);
        assert!(root.join("checkpoint/model-1.bpk").exists());
        assert!(root.join(LOCK_FILE).exists());
        assert!(!root.join(".tmpAbC12").exists());
    }
}

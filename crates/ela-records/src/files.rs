//! Atomic writes: a temporary sibling, fsync, then rename, so a crash never leaves a
//! half-written file behind.
//!
//! Crash testing: with `ELA_CRASH_BEFORE_RENAME=NAME` in the environment, the process aborts in
//! the middle of the atomic write of the file named `NAME` (`model-2.bpk`, say), after its
//! temporary file is written and before the rename: exactly what a kill at that moment leaves.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

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
    crash_point(path);
    tmp.persist(path)
        .with_context(|| format!("cannot move the new {} into place", path.display()))?;
    Ok(())
}

/// Serializes `value` as pretty JSON into `path`, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let json = serde_json::to_string_pretty(value).expect("serializable");
    write_atomic(path, format!("{json}\n").as_bytes())
}

/// The environment variable of [`crash_point`].
pub const CRASH_BEFORE_RENAME: &str = "ELA_CRASH_BEFORE_RENAME";

/// Aborts the process when `path` is the file [`CRASH_BEFORE_RENAME`] names (see the module
/// docs).
fn crash_point(path: &Path) {
    if let Some(name) = std::env::var_os(CRASH_BEFORE_RENAME)
        && path.file_name() == Some(name.as_os_str())
    {
        eprintln!(
            "{CRASH_BEFORE_RENAME}: aborting before {} is moved into place",
            path.display()
        );
        std::process::abort();
    }
}

//! One run, read from its directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ela_records::{
    ATTENTION_FILE, AttentionRecord, EpochRecord, METRICS_FILE, PruningRecord, TaskKind,
    read_attention, read_metrics, read_pruning, task_of,
};

/// One finished (or stopped) run of any task, read from its directory.
#[derive(Debug, Clone)]
pub struct Run {
    /// The run directory.
    pub dir: PathBuf,
    /// A short name: the directory's last component.
    pub name: String,
    /// The run's task.
    pub task: TaskKind,
    /// The resolved `config.json`.
    pub config: serde_json::Value,
    /// `metrics.csv`, one record per epoch.
    pub metrics: Vec<EpochRecord>,
    /// `pruning.json` (ELA runs).
    pub pruning: Option<PruningRecord>,
    /// `attention.json` (MRLA-B and ELA runs).
    pub attention: Vec<AttentionRecord>,
}

impl Run {
    /// Reads a run directory; every error names the file and what is wrong with it.
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            bail!("{} is not a run directory", dir.display());
        }
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).with_context(|| {
            format!(
                "cannot read {} ({} holds no run)",
                config_path.display(),
                dir.display()
            )
        })?;
        let config: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", config_path.display()))?;
        let task = task_of(&config).with_context(|| format!("{}", config_path.display()))?;
        let metrics = read_metrics(&dir.join(METRICS_FILE))?;
        let pruning_path = dir.join("pruning.json");
        let pruning = if pruning_path.exists() {
            Some(read_pruning(&pruning_path)?)
        } else {
            None
        };
        let attention_path = dir.join(ATTENTION_FILE);
        let attention = if attention_path.exists() {
            read_attention(&attention_path)?
        } else {
            Vec::new()
        };
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| dir.display().to_string());
        Ok(Self {
            dir: dir.to_path_buf(),
            name,
            task,
            config,
            metrics,
            pruning,
            attention,
        })
    }

    pub(crate) fn setting(&self, key: &str) -> String {
        match &self.config[key] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => "-".into(),
            other => other.to_string(),
        }
    }

    /// The method: `ela`, or the attention option (a detection run's backbone's).
    pub fn method(&self) -> String {
        if self.config["ela"] == serde_json::Value::Bool(true) {
            "ela".into()
        } else {
            self.setting("attention")
        }
    }

    /// The final (last recorded) value named `name`, NaN when there is none.
    pub fn last(&self, name: &str) -> f64 {
        self.metrics.last().map_or(f64::NAN, |m| m.value(name))
    }

    /// File-name-safe form of the name.
    pub(crate) fn slug(&self) -> String {
        self.name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}

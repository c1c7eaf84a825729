//! One run, read from its directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ela_records::{
    ATTENTION_FILE, AttentionRecord, EpochMetrics, PruningRecord, read_attention, read_metrics,
    read_pruning,
};

/// One finished (or stopped) run, read from its directory.
#[derive(Debug, Clone)]
pub struct Run {
    /// The run directory.
    pub dir: PathBuf,
    /// A short name: the directory's last component.
    pub name: String,
    /// The resolved `config.json`.
    pub config: serde_json::Value,
    /// `metrics.csv`, one row per epoch.
    pub metrics: Vec<EpochMetrics>,
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
        let metrics = read_metrics(&dir.join("metrics.csv"))?;
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

//! KL logs: per-block scores as a JSON array, or a run's `pruning.json`.

use std::path::Path;

use anyhow::{Context, Result, bail};

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

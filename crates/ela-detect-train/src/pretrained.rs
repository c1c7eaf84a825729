//! `train --task detect --pretrained F`: ImageNet weights for the detector's backbone, the
//! paper's Table 5 setting. `F` is a classification run directory of ours (its
//! `model.safetensors`), a classification weights file of ours, an official MRLA checkpoint
//! (`.pth.tar`) or torchvision ResNet weights (`.pth`); the classifier head is not used. Every
//! other tensor of the backbone must come from the file and every tensor of the file must be
//! used: a backbone whose attention differs from the file's is an error that names what differs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ela_model::ElaResNet;
use ela_model::weights::LoadOptions;
use ela_train::classify::options::Method;

/// The weights file `given` names: itself, or a classification run directory's weights.
pub fn weights_file(given: &Path) -> Result<PathBuf> {
    if !given.is_dir() {
        return Ok(given.to_path_buf());
    }
    let file = given.join("model.safetensors");
    if !file.is_file() {
        bail!(
            "--pretrained: {} is a folder without model.safetensors: give a classification run \
             directory, or a weights file",
            given.display()
        );
    }
    Ok(file)
}

/// Loads `given`'s weights into the backbone `resnet` (its head left as it is); the file's skip
/// flags (a pruned ELA run's) are applied only to an ELA run (`ela`), and said so.
pub fn load_backbone(resnet: &mut ElaResNet, given: &Path, ela: bool) -> Result<()> {
    let file = weights_file(given)?;
    if let Some(trained) = trained_attention(given)
        && let Ok(method) = serde_json::from_value::<Method>(serde_json::json!(trained))
        && method.attention() != resnet.attention()
    {
        bail!(
            "--pretrained: the run in {} trained attention {trained} ({} layers), the backbone's \
             is {}: choose --attention {trained}, or weights of a network with the backbone's \
             attention",
            given.display(),
            method.attention(),
            resnet.attention()
        );
    }
    let options = LoadOptions {
        strict: false,
        skip_head: true,
        ignore_skip_flags: !ela,
    };
    let report = resnet
        .load_checkpoint(&file, &options)
        .with_context(|| format!("--pretrained {}", given.display()))?;
    if !report.missing.is_empty() || !report.unused.is_empty() {
        bail!(
            "--pretrained: {} does not fit the backbone (ImageNet ResNet-{}, attention {}){}: {}",
            file.display(),
            resnet.depth(),
            resnet.attention(),
            trained_attention(given).map_or(String::new(), |a| format!(
                "; the run in {} trained attention {a}",
                given.display()
            )),
            differences(&report.missing, &report.unused)
        );
    }
    let skipped: Vec<usize> = report
        .skip_flags
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, &s)| s.then_some(i))
        .collect();
    println!(
        "pretrained backbone: {} tensors from {}{}",
        report.applied,
        file.display(),
        match (skipped.is_empty(), ela) {
            (true, _) => String::new(),
            (false, true) => format!("; its skipped blocks {skipped:?} are skipped from the start"),
            (false, false) => format!(
                "; its skip flags (blocks {skipped:?}) are not applied: this is not an ELA run"
            ),
        }
    );
    Ok(())
}

/// The attention a classification run directory's `config.json` names, if `dir` is one.
fn trained_attention(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_str(&text).ok()?;
    config["attention"].as_str().map(str::to_string)
}

/// What differs between the backbone and the file, by layer kind (`mrla`, `se`, `bn1`, …: the
/// name's part after the block), with counts and an example of each.
fn differences(missing: &[String], unused: &[String]) -> String {
    let kinds = |names: &[String]| {
        let mut by: BTreeMap<String, (usize, String)> = BTreeMap::new();
        for name in names {
            let parts: Vec<&str> = name.split('.').collect();
            // `layer1.0.mrla.Wq.weight` → `mrla`; a stem or head tensor → its first part.
            let kind = if parts[0].starts_with("layer") && parts.len() > 2 {
                parts[2]
            } else {
                parts[0]
            };
            let entry = by.entry(kind.to_string()).or_insert((0, name.clone()));
            entry.0 += 1;
        }
        by.into_iter()
            .map(|(kind, (n, example))| format!("{kind} ({n} tensors, e.g. {example})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!(
            "the backbone has layers the file lacks: {}",
            kinds(missing)
        ));
    }
    if !unused.is_empty() {
        parts.push(format!(
            "the file has layers the backbone lacks: {}",
            kinds(unused)
        ));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_named_by_layer_kind() {
        let missing: Vec<String> = ["layer1.0.mrla.Wq.weight", "layer1.1.mrla.Wk.weight"]
            .map(String::from)
            .to_vec();
        let unused = vec!["layer2.0.se.fc1.weight".to_string()];
        let text = differences(&missing, &unused);
        assert_eq!(
            text,
            "the backbone has layers the file lacks: mrla (2 tensors, e.g. \
             layer1.0.mrla.Wq.weight); the file has layers the backbone lacks: se (1 tensors, \
             e.g. layer2.0.se.fc1.weight)"
        );
    }
}

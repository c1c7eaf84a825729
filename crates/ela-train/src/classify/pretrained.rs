//! `--pretrained`: a run that starts from a weights file.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// Loads `--pretrained` weights, with a new head when the file's has another number of classes,
/// and prints what was applied. The file's skip flags (a pruned ELA model's) are applied only to
/// an ELA run (`ela`), and said so; any other run starts with every block active.
pub fn load_pretrained(net: &mut ela_model::ElaResNet, path: &Path, ela: bool) -> Result<()> {
    use ela_model::weights::LoadOptions;
    let full = LoadOptions {
        ignore_skip_flags: !ela,
        ..LoadOptions::default()
    };
    let (report, new_head) = match net.load_checkpoint(path, &full) {
        Ok(report) => (report, false),
        Err(first) => {
            let headless = LoadOptions {
                skip_head: true,
                ..full
            };
            match net.load_checkpoint(path, &headless) {
                Ok(report) => (report, true),
                Err(_) => return Err(first).context("--pretrained"),
            }
        }
    };
    if report.applied == 0 {
        bail!(
            "--pretrained: {} has no tensor this model uses (unused: {:?})",
            path.display(),
            report.unused
        );
    }
    println!(
        "pretrained: {} tensors from {}{}",
        report.applied,
        path.display(),
        if new_head {
            format!(" (new {}-class head)", net.num_classes())
        } else {
            String::new()
        }
    );
    let skipped: Vec<usize> = report
        .skip_flags
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, &s)| s.then_some(i))
        .collect();
    if !skipped.is_empty() {
        if ela {
            println!(
                "pretrained: the file's skip flags are applied: blocks {skipped:?} are skipped \
                 from the start"
            );
        } else {
            println!(
                "pretrained: the file's skip flags (blocks {skipped:?}) are not applied: this is \
                 not an ELA run, every block attends"
            );
        }
    }
    if !report.missing.is_empty() {
        println!(
            "pretrained: not in the file, left as initialized: {}",
            report.missing.join(", ")
        );
    }
    if !report.unused.is_empty() {
        println!(
            "pretrained: in the file, not in the model: {}",
            report.unused.join(", ")
        );
    }
    Ok(())
}

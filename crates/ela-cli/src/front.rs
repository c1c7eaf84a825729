//! The front door: which task a command line is for, and the command line's flags for that task.
//!
//! `--task` is an argument of the commands that have one (`train`, `bench`, `reproduce`,
//! `report`, `eval`). The task is known before anything else is parsed: from `--task` on the
//! command line, else from a `task` key of a `--config` file (the last file that sets one), else
//! classification. Config files are then expanded into flags and checked against that task's
//! flags, and the whole command line is parsed with them.

use std::path::Path;

use anyhow::{Context, Result};
use ela_records::TaskKind;

/// The commands whose flags depend on the task, and what they are for each.
pub const TASK_SHAPED: [&str; 2] = ["train", "bench"];

/// The task `args` (a whole command line, program name first) ask for, and whether they ask
/// explicitly (`--task` or a config file's `task` key) rather than by default.
pub fn task_of(args: &[String]) -> Result<(TaskKind, bool)> {
    if let Some(name) = flag_values(args, "--task").last() {
        return Ok((TaskKind::parse(name).context("--task")?, true));
    }
    let mut from_files = None;
    for file in flag_values(args, "--config") {
        let path = Path::new(&file);
        let Ok(text) = std::fs::read_to_string(path) else {
            // Named by the expansion, which reads every file.
            continue;
        };
        let Ok(table) = text.parse::<toml::Table>() else {
            continue;
        };
        if let Some(value) = table.get("task") {
            let name = value
                .as_str()
                .with_context(|| format!("{}: `task` must be a string", path.display()))?;
            from_files = Some(TaskKind::parse(name).with_context(|| path.display().to_string())?);
        }
    }
    Ok(from_files.map_or((TaskKind::Classify, false), |t| (t, true)))
}

/// Every value of `flag` in `args` after the subcommand (`--flag V` and `--flag=V`), in order,
/// up to a `--`.
fn flag_values(args: &[String], flag: &str) -> Vec<String> {
    let prefix = format!("{flag}=");
    let mut values = Vec::new();
    let mut rest = args.iter().skip(2);
    while let Some(arg) = rest.next() {
        if arg == "--" {
            break;
        }
        if arg == flag {
            if let Some(v) = rest.next() {
                values.push(v.clone());
            }
        } else if let Some(v) = arg.strip_prefix(&prefix) {
            values.push(v.to_string());
        }
    }
    values
}

/// `cli` with the flags of `task`'s `train` and `bench` in place of classification's.
pub fn command_for(cli: clap::Command, task: TaskKind) -> clap::Command {
    use clap::Args;
    match task {
        TaskKind::Classify => cli,
        TaskKind::Detect => cli
            .mut_subcommand("train", |c| {
                let about = c.get_about().cloned();
                let c = clap::Command::new("train")
                    .display_name("train --task detect")
                    .allow_negative_numbers(true)
                    .args_override_self(true);
                let c = match about {
                    Some(about) => c.about(about),
                    None => c,
                };
                ela_detect_train::DetectTrainArgs::augment_args(c)
            })
            .mut_subcommand("bench", |c| {
                let about = c.get_about().cloned();
                let c = clap::Command::new("bench")
                    .display_name("bench --task detect")
                    .args_override_self(true);
                let c = match about {
                    Some(about) => c.about(about),
                    None => c,
                };
                ela_bench::detect::DetectBenchConfig::augment_args(c)
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_task_comes_from_the_command_line_then_the_config_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("detect.toml");
        std::fs::write(&file, "task = \"detect\"\ndepth = 50\n").unwrap();
        let f = file.to_str().unwrap();
        let task = |a: &[&str]| task_of(&args(a)).unwrap();
        assert_eq!(task(&["ela", "train"]), (TaskKind::Classify, false));
        assert_eq!(
            task(&["ela", "train", "--task", "detect"]),
            (TaskKind::Detect, true)
        );
        assert_eq!(
            task(&["ela", "train", "--task=classify"]),
            (TaskKind::Classify, true)
        );
        assert_eq!(
            task(&["ela", "train", "--config", f]),
            (TaskKind::Detect, true)
        );
        assert_eq!(
            task(&["ela", "train", "--config", f, "--task", "classify"]),
            (TaskKind::Classify, true),
            "the command line wins"
        );
        let err = task_of(&args(&["ela", "train", "--task", "segment"])).unwrap_err();
        assert!(
            format!("{err:#}").contains("'segment' is not a task"),
            "{err:#}"
        );
    }
}

//! `ela reproduce TABLE`: every row of one of the paper's tables, several seeds each, and a
//! results table of our mean ± std next to the paper's value.
//!
//! Rows are the configs in `experiments/<TABLE>/`. Each (row, seed) trains into its own run
//! directory `<runs>/<scale>/<TABLE>/<row>/seed-<seed>`: a finished one (with `summary.json`) is
//! skipped, an interrupted one (with a checkpoint) is resumed, so the command can be stopped and
//! run again at any time. Seeds go round-robin over the rows, so a partial reproduction has
//! every row at about the same number of runs; the results table is rewritten after every run.
//!
//! `--scale smoke` runs every row on the embedded MNIST sample for a few epochs (see
//! [`SMOKE_SETTINGS`]): the whole pipeline, offline, on a CPU, with numbers that say nothing
//! about CIFAR or ImageNet. `--scale full` runs the configs as they are.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, Parser};
use serde::{Deserialize, Serialize};

use ela_train::backend::Backend;
use ela_train::checkpoint::latest_complete;
use ela_train::train::{RunSummary, TrainConfig, checkpoint_dir, resume, train};

use crate::training;

/// Flags a smoke run adds after its config's (later flags win): the embedded MNIST sample,
/// 3 epochs of 640 images, windows after epochs 1 and 2, the MNIST recipe (lr, schedule, batch).
pub const SMOKE_SETTINGS: [&str; 10] = [
    "--dataset",
    "mnist",
    "--epochs",
    "3",
    "--limit-train",
    "640",
    "--limit-test",
    "1000",
    "--windows",
    "1,2",
];

/// Deepest network a smoke run trains: deeper rows are trained as ResNet-29 (three blocks per
/// stage, so EBQM has candidates in every stage); ResNet-20 rows stay ResNet-20. ImageNet rows
/// (Tables 2 and 3) are trained as the CIFAR ResNet-29 with their attention: on 28×28 digits an
/// ImageNet ResNet-50 reduces the image to 1×1 and costs minutes per row on a CPU.
pub const SMOKE_MAX_DEPTH: usize = 29;

/// How much of each run is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// The embedded MNIST sample, 3 epochs, at most ResNet-29: checks the pipeline offline.
    Smoke,
    /// The configs as they are (real datasets, full recipes: needs a GPU).
    Full,
}

impl Scale {
    /// `smoke` or `full`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Smoke => "smoke",
            Self::Full => "full",
        }
    }
}

/// `ela reproduce`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ReproduceArgs {
    /// The table: a folder of `experiments/` (`table1`, `table4`, `table5`, `table6`, `table7`;
    /// `4` is `table4`).
    pub table: String,
    /// Rows to run (config names without `.toml`, comma-separated); default: every row.
    #[arg(long, value_delimiter = ',')]
    pub rows: Vec<String>,
    /// Runs per row; run i uses seed `--seed + i`.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// First seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// `smoke` (embedded MNIST, minutes on a CPU) or `full` (the configs as written).
    #[arg(long, value_enum, default_value = "smoke")]
    pub scale: Scale,
    /// Backend every run trains on.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: Backend,
    /// The experiments folder holding the tables' configs.
    #[arg(long, default_value = "experiments")]
    pub experiments: PathBuf,
    /// Where run directories go.
    #[arg(long, default_value = "runs/reproduce")]
    pub runs_dir: PathBuf,
    /// Where the results table goes (`<TABLE>.md`, or `<TABLE>-smoke.md` at smoke scale).
    #[arg(long, default_value = "experiments/results")]
    pub results: PathBuf,
    /// List the runs and their state without training.
    #[arg(long)]
    pub dry_run: bool,
}

/// What the paper reports for a row (`[paper]` of its config).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PaperValue {
    /// Top-1 accuracy (%), mean over the paper's runs.
    pub top1: Option<f64>,
    /// Its standard deviation.
    pub top1_std: Option<f64>,
    /// Parameter count as printed.
    pub params: Option<String>,
    /// Training time in hours as printed (Table 3).
    #[serde(default)]
    pub train_hours: Option<f64>,
}

/// One row of a table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Config name without `.toml`.
    pub name: String,
    /// The config file.
    pub config: PathBuf,
    /// The paper's value.
    pub paper: PaperValue,
}

/// The rows of `table` in `experiments`, sorted by name.
pub fn rows(experiments: &Path, table: &str) -> Result<(String, Vec<Row>)> {
    let table = if table.chars().all(|c| c.is_ascii_digit()) {
        format!("table{table}")
    } else {
        table.to_string()
    };
    let dir = experiments.join(&table);
    let entries = std::fs::read_dir(&dir).with_context(|| {
        format!(
            "no table '{table}': cannot read {} (tables are the folders of {})",
            dir.display(),
            experiments.display()
        )
    })?;
    let mut rows = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list {}", dir.display()))?
            .path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let parsed: toml::Table = text
            .parse()
            .with_context(|| format!("{} is not valid TOML", path.display()))?;
        let paper = match parsed.get("paper") {
            Some(p) => p
                .clone()
                .try_into()
                .with_context(|| format!("{}: [paper] is malformed", path.display()))?,
            None => PaperValue::default(),
        };
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        rows.push(Row {
            name,
            config: path,
            paper,
        });
    }
    if rows.is_empty() {
        bail!("{} holds no configs (*.toml)", dir.display());
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((table, rows))
}

/// The rows `--rows` asks for (every row without it), each checked to exist.
pub fn selected_rows(args: &ReproduceArgs) -> Result<(String, Vec<Row>)> {
    let (table, mut all) = rows(&args.experiments, &args.table)?;
    if !args.rows.is_empty() {
        for wanted in &args.rows {
            if !all.iter().any(|r| &r.name == wanted) {
                let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
                bail!(
                    "--rows: {table} has no row '{wanted}' (rows: {})",
                    names.join(", ")
                );
            }
        }
        all.retain(|r| args.rows.contains(&r.name));
    }
    Ok((table, all))
}

#[derive(Parser)]
#[command(name = "ela", args_override_self = true, allow_negative_numbers = true)]
struct OneRun {
    #[command(flatten)]
    config: TrainConfig,
}

/// The training configuration of one (row, seed) run at `scale`.
pub fn run_config(
    row: &Row,
    seed: u64,
    scale: Scale,
    backend: Backend,
    out: &Path,
) -> Result<TrainConfig> {
    // The file's flags first, then the smoke settings and the seed (later flags win).
    let mut args = vec!["ela".to_string()];
    args.extend(ela_train::config::read(&row.config, &OneRun::command())?);
    let parse = |args: Vec<String>| -> Result<TrainConfig> {
        let parsed = OneRun::try_parse_from(&args)
            .with_context(|| format!("{} does not parse", row.config.display()))?;
        Ok(parsed.config)
    };
    if scale == Scale::Smoke {
        args.extend(SMOKE_SETTINGS.iter().map(|s| s.to_string()));
        // The config's own depth, capped; ImageNet rows as the deepest smoke network (a
        // registered --model is replaced by its attention on that network).
        let config = parse(args.clone())?.resolve()?;
        let depth = match config.arch {
            ela_model::Arch::Cifar => config.depth.min(SMOKE_MAX_DEPTH),
            ela_model::Arch::Imagenet => SMOKE_MAX_DEPTH,
        };
        args.extend([
            "--model".into(),
            String::new(),
            "--arch".into(),
            "cifar".into(),
            "--attention".into(),
            config.attention.name().into(),
            "--depth".into(),
            depth.to_string(),
        ]);
    }
    args.extend([
        "--seed".into(),
        seed.to_string(),
        "--backend".into(),
        clap::ValueEnum::to_possible_value(&backend)
            .map_or_else(|| "cpu".into(), |v| v.get_name().to_string()),
        "--out".into(),
        out.display().to_string(),
    ]);
    let config = parse(args)?;
    // Checked now, so that a bad row stops the plan before any run starts.
    config
        .resolve()
        .with_context(|| format!("{}", row.config.display()))?;
    Ok(config)
}

/// A (row, seed) run's state on disk.
#[derive(Debug, Clone)]
pub enum RunState {
    /// `summary.json` exists.
    Finished(Box<RunSummary>),
    /// A checkpoint exists: resume it.
    Interrupted,
    /// Nothing usable: train from scratch (removing a directory with no checkpoint).
    New,
}

/// Reads the state of the run directory `dir`.
pub fn run_state(dir: &Path) -> Result<RunState> {
    let summary = dir.join("summary.json");
    if summary.exists() {
        let text = std::fs::read_to_string(&summary)
            .with_context(|| format!("cannot read {}", summary.display()))?;
        let s: RunSummary = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid run summary", summary.display()))?;
        return Ok(RunState::Finished(Box::new(s)));
    }
    if latest_complete(&checkpoint_dir(dir)).is_some() {
        return Ok(RunState::Interrupted);
    }
    Ok(RunState::New)
}

/// Per-row results over its finished runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RowResult {
    /// Config name.
    pub row: String,
    /// The paper's value.
    pub paper: PaperValue,
    /// Seeds of the finished runs.
    pub seeds: Vec<u64>,
    /// Final test accuracy (%) per finished run.
    pub test_acc: Vec<f64>,
    /// Blocks skipped at the end, per finished run.
    pub skipped: Vec<Vec<usize>>,
    /// Mean training seconds per epoch, per finished run.
    pub epoch_seconds: Vec<f64>,
    /// Runs that failed, with why.
    pub failed: Vec<String>,
}

/// Mean and sample standard deviation (n − 1); std is `None` for fewer than two values.
pub fn mean_std(values: &[f64]) -> Option<(f64, Option<f64>)> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.len() > 1)
        .then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    Some((mean, std))
}

fn pm(values: &[f64], digits: usize) -> String {
    match mean_std(values) {
        None => "not run".into(),
        Some((m, None)) => format!("{m:.digits$} (1 run)"),
        Some((m, Some(s))) => format!("{m:.digits$} ± {s:.digits$}"),
    }
}

/// The results table in Markdown.
pub fn results_markdown(
    table: &str,
    scale: Scale,
    runs: usize,
    command: &str,
    results: &[RowResult],
) -> String {
    let mut md = format!("# {table} ({} scale)\n\n", scale.name());
    match scale {
        Scale::Smoke => writeln!(
            md,
            "Smoke scale: every row trained on the embedded MNIST sample ({}; deeper rows and \
             ImageNet rows as the CIFAR ResNet-{SMOKE_MAX_DEPTH} with their attention). These \
             numbers check the pipeline and compare the rows with each other under the same \
             small budget; they are not comparable to the paper's values, shown for \
             reference.\n",
            SMOKE_SETTINGS.join(" ")
        )
        .ok(),
        Scale::Full => writeln!(
            md,
            "Full scale: the configs as written. A row with no finished run says \"not run\".\n"
        )
        .ok(),
    };
    writeln!(
        md,
        "Command: `{command}`. Runs per row asked: {runs}. Mean ± sample standard deviation over \
         the finished runs.\n"
    )
    .ok();
    // Table 3 reports training time: its rows carry the paper's hours.
    let hours = results.iter().any(|r| r.paper.train_hours.is_some());
    md.push_str(
        "| row | paper top-1 (%) | ours top-1 (%) | runs | skipped blocks | train s/epoch | \
         failed |",
    );
    md.push_str(if hours {
        " paper training time (h) |\n|---|---|---|---|---|---|---|---|\n"
    } else {
        "\n|---|---|---|---|---|---|---|\n"
    });
    for r in results {
        let paper = match (r.paper.top1, r.paper.top1_std) {
            (Some(m), Some(s)) => format!("{m:.2} ± {s:.2}"),
            (Some(m), None) => format!("{m:.2}"),
            _ => "-".into(),
        };
        let counts: Vec<f64> = r.skipped.iter().map(|s| s.len() as f64).collect();
        write!(
            md,
            "| {} | {paper} | {} | {} | {} | {} | {} |",
            r.row,
            pm(&r.test_acc, 2),
            r.test_acc.len(),
            pm(&counts, 1),
            pm(&r.epoch_seconds, 1),
            if r.failed.is_empty() {
                "-".to_string()
            } else {
                r.failed.len().to_string()
            }
        )
        .ok();
        if hours {
            let h = r
                .paper
                .train_hours
                .map_or("-".into(), |h| format!("{h:.1}"));
            write!(md, " {h} |").ok();
        }
        md.push('\n');
    }
    let failures: Vec<String> = results
        .iter()
        .flat_map(|r| r.failed.iter().map(move |f| format!("- {}: {f}", r.row)))
        .collect();
    if !failures.is_empty() {
        writeln!(md, "\nFailed runs:\n{}", failures.join("\n")).ok();
    }
    md.push_str("\nSkipped blocks per run (final masks):\n\n");
    for r in results {
        if r.skipped.is_empty() {
            continue;
        }
        let per: Vec<String> = r
            .seeds
            .iter()
            .zip(&r.skipped)
            .map(|(s, k)| format!("seed {s}: {k:?}"))
            .collect();
        writeln!(md, "- {}: {}", r.row, per.join("; ")).ok();
    }
    md
}

/// Runs (or lists) the table's runs and writes its results table; returns the table's path.
pub fn reproduce(args: &ReproduceArgs) -> Result<PathBuf> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if crate::reproduce_detect::is_detection_table(&args.experiments, &args.table)? {
        return crate::reproduce_detect::reproduce(args);
    }
    let (table, all) = selected_rows(args)?;
    let root = args.runs_dir.join(args.scale.name()).join(&table);
    let seeds: Vec<u64> = (0..args.runs as u64).map(|i| args.seed + i).collect();
    // Every run's configuration is checked before the first one starts.
    let mut plan = Vec::new();
    for &seed in &seeds {
        for row in &all {
            let dir = root.join(&row.name).join(format!("seed-{seed}"));
            let config = run_config(row, seed, args.scale, args.backend, &dir)?;
            plan.push((row, seed, dir, config));
        }
    }
    let suffix = match args.scale {
        Scale::Smoke => "-smoke",
        Scale::Full => "",
    };
    let out = args.results.join(format!("{table}{suffix}.md"));
    let command = format!(
        "cargo xtask reproduce {table} --runs {} --scale {}{}",
        args.runs,
        args.scale.name(),
        if args.rows.is_empty() {
            String::new()
        } else {
            format!(" --rows {}", args.rows.join(","))
        }
    );
    let mut failed: Vec<(String, String)> = Vec::new();
    let total = plan.len();
    for (i, (row, seed, dir, config)) in plan.iter().enumerate() {
        let state = run_state(dir)?;
        let label = format!("[{}/{total}] {} seed {seed}", i + 1, row.name);
        if args.dry_run {
            println!("{label}: {state:?} -> {}", dir.display());
            continue;
        }
        let result = match state {
            RunState::Finished(_) => {
                println!("{label}: finished, skipped");
                continue;
            }
            RunState::Interrupted => {
                println!("{label}: resuming {}", dir.display());
                resume(dir, None).map(training::report)
            }
            RunState::New => {
                if dir.exists() {
                    // Started but stopped before its first checkpoint: nothing to keep.
                    std::fs::remove_dir_all(dir)
                        .with_context(|| format!("cannot clear {}", dir.display()))?;
                }
                println!("{label}: training into {}", dir.display());
                train(config).map(training::report)
            }
        };
        if let Err(err) = result {
            println!("{label}: failed: {err:#}");
            failed.push((row.name.clone(), format!("seed {seed}: {err:#}")));
        }
        write_results(&table, args, &all, &root, &seeds, &failed, &command, &out)?;
    }
    if args.dry_run {
        return Ok(out);
    }
    write_results(&table, args, &all, &root, &seeds, &failed, &command, &out)?;
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn write_results(
    table: &str,
    args: &ReproduceArgs,
    rows: &[Row],
    root: &Path,
    seeds: &[u64],
    failed: &[(String, String)],
    command: &str,
    out: &Path,
) -> Result<()> {
    let mut results = Vec::new();
    for row in rows {
        let mut r = RowResult {
            row: row.name.clone(),
            paper: row.paper.clone(),
            seeds: Vec::new(),
            test_acc: Vec::new(),
            skipped: Vec::new(),
            epoch_seconds: Vec::new(),
            failed: failed
                .iter()
                .filter(|(name, _)| name == &row.name)
                .map(|(_, why)| why.clone())
                .collect(),
        };
        for &seed in seeds {
            let dir = root.join(&row.name).join(format!("seed-{seed}"));
            if let RunState::Finished(s) = run_state(&dir)? {
                r.seeds.push(seed);
                r.test_acc.push(s.test_acc);
                r.skipped.push(s.skipped.clone());
                let n = s.train_seconds.len().max(1) as f64;
                r.epoch_seconds
                    .push(s.train_seconds.iter().sum::<f64>() / n);
            }
        }
        results.push(r);
    }
    std::fs::create_dir_all(&args.results)
        .with_context(|| format!("cannot create {}", args.results.display()))?;
    let md = results_markdown(table, args.scale, args.runs, command, &results);
    ela_records::write_atomic(out, md.as_bytes())?;
    ela_records::write_json(&out.with_extension("json"), &results)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std() {
        let (m, s) = mean_std(&[74.0, 74.5, 73.5]).unwrap();
        assert!((m - 74.0).abs() < 1e-12);
        assert!((s.unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(mean_std(&[1.0]), Some((1.0, None)));
        assert_eq!(mean_std(&[]), None);
        assert_eq!(pm(&[], 2), "not run");
    }
}

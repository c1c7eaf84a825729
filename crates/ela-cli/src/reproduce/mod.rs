//! `ela reproduce TABLE`: every row of one of the paper's tables, several seeds each, and a
//! results table of our mean ± std next to the paper's values, for any task.
//!
//! Rows are the configs in `experiments/<TABLE>/`; a table's rows are all of one task (their
//! `task` key; classification without one). Each (row, seed) trains into its own run directory
//! `<runs>/<scale>/<TABLE>/<run>/seed-<seed>`: a finished one (with `summary.json`) is skipped,
//! an interrupted one (with a checkpoint) is resumed, so the command can be stopped and run again
//! at any time. Seeds go round-robin over the rows, so a partial reproduction has every row at
//! about the same number of runs; the results table is rewritten after every run.
//!
//! What differs by task is a [`Table`]: which runs a row asks for at a scale
//! ([`classify::ClassifyTable`], [`detect::DetectTable`]) and how its results table reads.

pub mod classify;
pub mod detect;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ela_records::checkpoint::{checkpoint_dir, latest_complete};
use ela_records::{RunSummary, TaskKind, is_finished, read_summary};
use ela_train::backend::Backend;
use ela_train::runtime::TaskName;
use serde::{Deserialize, Serialize};

use crate::training::{self, Launch};

pub use classify::{
    PaperValue, RowResult, SMOKE_MAX_DEPTH, SMOKE_SETTINGS, results_markdown, run_config,
};

/// How much of each run is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// Small offline data, a few epochs, small networks: checks the pipeline on a CPU.
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

/// `ela reproduce`'s arguments. `--dry-run` lists the runs and their state, and writes the
/// results table from the runs already finished.
#[derive(Debug, Clone, clap::Args)]
pub struct ReproduceArgs {
    /// The table: a folder of `experiments/` (`table1` … `table7`; `4` is `table4`).
    pub table: String,
    /// The table's task; default: its rows' (a `task` key in their configs).
    #[arg(long, value_enum)]
    pub task: Option<TaskName>,
    /// Rows to run (config names without `.toml`, comma-separated); default: every row.
    #[arg(long, value_delimiter = ',')]
    pub rows: Vec<String>,
    /// Runs per row; run i uses seed `--seed + i`.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// First seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// `smoke` (offline data, minutes on a CPU) or `full` (the configs as written).
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

/// One row of a table: a config file.
#[derive(Debug, Clone)]
pub struct Row {
    /// Config name without `.toml`.
    pub name: String,
    /// The config file.
    pub config: PathBuf,
    /// Its task.
    pub task: TaskKind,
    /// What the paper reports for it (`[paper]`).
    pub paper: toml::Table,
}

impl Row {
    /// The paper's values as `T` (a table's own fields).
    pub fn paper<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        toml::Value::Table(self.paper.clone())
            .try_into()
            .with_context(|| format!("{}: [paper] is malformed", self.config.display()))
    }
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
        let task = match parsed.get("task") {
            Some(t) => TaskKind::parse(t.as_str().unwrap_or_default())
                .with_context(|| format!("{}: `task`", path.display()))?,
            None => TaskKind::Classify,
        };
        let paper = match parsed.get("paper") {
            Some(toml::Value::Table(p)) => p.clone(),
            Some(_) => bail!("{}: [paper] is not a table", path.display()),
            None => toml::Table::new(),
        };
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        rows.push(Row {
            name,
            config: path,
            task,
            paper,
        });
    }
    if rows.is_empty() {
        bail!("{} holds no configs (*.toml)", dir.display());
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((table, rows))
}

/// The rows `--rows` asks for (every row without it), each checked to exist, and their task.
fn selected_rows(args: &ReproduceArgs) -> Result<(String, Vec<Row>, TaskKind)> {
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
    let task = all[0].task;
    if let Some(other) = all.iter().find(|r| r.task != task) {
        bail!(
            "{table} mixes tasks: {} is a {task} config, {} a {} config",
            all[0].config.display(),
            other.config.display(),
            other.task
        );
    }
    if let Some(TaskName(asked)) = args.task
        && asked != task
    {
        bail!("--task {asked}: {table}'s rows are {task} configs");
    }
    Ok((table, all, task))
}

/// One (row, seed) run: the name of its run (shared by rows that train the same run), its
/// directory and what it trains.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The run's name (a row's, or the shared run's).
    pub run: String,
    /// Its seed.
    pub seed: u64,
    /// Its run directory.
    pub dir: PathBuf,
    /// What it trains.
    pub launch: Launch,
}

/// A task's side of a reproduction.
pub trait Table {
    /// The runs of every row for `seed`, into `root/<run>/seed-<seed>`; each run's flags are
    /// checked here, so that a bad row stops the plan before any run starts.
    fn plan(&self, seed: u64, root: &Path) -> Result<Vec<Planned>>;
    /// Writes the results table (`out`, and its JSON beside it) from the finished runs in
    /// `root`; `failed` lists the runs that failed in this invocation.
    fn write_results(&self, ctx: &Results<'_>, failed: &[(String, String)]) -> Result<()>;
}

/// What a results table is written from.
pub struct Results<'a> {
    /// The table's name (`table4`).
    pub table: &'a str,
    /// The command's arguments.
    pub args: &'a ReproduceArgs,
    /// Where the runs are.
    pub root: &'a Path,
    /// The seeds asked for.
    pub seeds: &'a [u64],
    /// The command, for the table's text.
    pub command: &'a str,
    /// Minutes this invocation has run.
    pub minutes: f64,
    /// The Markdown file.
    pub out: &'a Path,
}

impl Results<'_> {
    /// The finished run `run` of `seed`, if it is one.
    pub fn finished(&self, run: &str, seed: u64) -> Result<Option<RunSummary>> {
        match run_state(&self.root.join(run).join(format!("seed-{seed}")))? {
            RunState::Finished(s) => Ok(Some(*s)),
            _ => Ok(None),
        }
    }

    /// Writes the Markdown table `md` and `json` beside it.
    pub fn write(&self, md: &str, json: &impl Serialize) -> Result<()> {
        let dir = &self.args.results;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        ela_records::write_atomic(self.out, md.as_bytes())?;
        ela_records::write_json(&self.out.with_extension("json"), json)
    }
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
    if is_finished(dir) {
        return Ok(RunState::Finished(Box::new(read_summary(dir)?)));
    }
    if latest_complete(&checkpoint_dir(dir)).is_some() {
        return Ok(RunState::Interrupted);
    }
    Ok(RunState::New)
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

/// The runs that failed in this invocation, under their rows, as a Markdown list (nothing when
/// none did).
pub fn failures<'a>(rows: impl IntoIterator<Item = (&'a str, &'a [String])>) -> String {
    let lines: Vec<String> = rows
        .into_iter()
        .flat_map(|(row, failed)| failed.iter().map(move |f| format!("- {row}: {f}")))
        .collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!("\nFailed runs:\n{}\n", lines.join("\n"))
    }
}

/// Runs (or lists) the table's runs and writes its results table; returns the table's path.
pub fn reproduce(args: &ReproduceArgs) -> Result<PathBuf> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let (table, rows, task) = selected_rows(args)?;
    let kind: Box<dyn Table> = match task {
        TaskKind::Classify => Box::new(classify::ClassifyTable::new(rows, args)),
        TaskKind::Detect => Box::new(detect::DetectTable::new(rows, args)?),
    };
    let root = args.runs_dir.join(args.scale.name()).join(&table);
    let seeds: Vec<u64> = (0..args.runs as u64).map(|i| args.seed + i).collect();
    // Every run's configuration is checked before the first one starts.
    let mut plan: Vec<Planned> = Vec::new();
    for &seed in &seeds {
        for p in kind.plan(seed, &root)? {
            if !plan.iter().any(|q| q.dir == p.dir) {
                plan.push(p);
            }
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
    let started = std::time::Instant::now();
    let write = |failed: &[(String, String)]| {
        let ctx = Results {
            table: &table,
            args,
            root: &root,
            seeds: &seeds,
            command: &command,
            minutes: started.elapsed().as_secs_f64() / 60.0,
            out: &out,
        };
        kind.write_results(&ctx, failed)
    };
    let mut failed: Vec<(String, String)> = Vec::new();
    let total = plan.len();
    for (i, p) in plan.iter().enumerate() {
        let state = run_state(&p.dir)?;
        let label = format!("[{}/{total}] {} seed {}", i + 1, p.run, p.seed);
        if args.dry_run {
            println!("{label}: {state:?} -> {}", p.dir.display());
            continue;
        }
        let result = match state {
            RunState::Finished(_) => {
                println!("{label}: finished, skipped");
                continue;
            }
            RunState::Interrupted => {
                println!("{label}: resuming {}", p.dir.display());
                training::resume(&p.dir, None).map(training::report)
            }
            RunState::New => {
                if p.dir.exists() {
                    // Started but stopped before its first checkpoint: nothing to keep.
                    std::fs::remove_dir_all(&p.dir)
                        .with_context(|| format!("cannot clear {}", p.dir.display()))?;
                }
                println!("{label}: training into {}", p.dir.display());
                training::start(&p.launch).map(training::report)
            }
        };
        if let Err(err) = result {
            println!("{label}: failed: {err:#}");
            failed.push((p.run.clone(), format!("seed {}: {err:#}", p.seed)));
        }
        write(&failed)?;
    }
    // A dry run also writes the table, from the runs already finished.
    write(&failed)?;
    Ok(out)
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
    }
}

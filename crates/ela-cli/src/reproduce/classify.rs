//! The classification tables (1–4, 6, 7): each row is a `ela train` config; a run per (row,
//! seed), and a results table of top-1 accuracy beside the paper's.
//!
//! `--scale smoke` runs every row on the embedded MNIST sample for a few epochs (see
//! [`SMOKE_SETTINGS`]): the whole pipeline, offline, on a CPU, with numbers that say nothing
//! about CIFAR or ImageNet. `--scale full` runs the configs as they are.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser};
use serde::{Deserialize, Serialize};

use ela_train::backend::Backend;
use ela_train::classify::TrainConfig;

use super::{Planned, ReproduceArgs, Results, Row, Scale, Table, failures, mean_std};
use crate::training::Launch;

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
    md.push_str(&failures(
        results
            .iter()
            .map(|r| (r.row.as_str(), r.failed.as_slice())),
    ));
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

/// The classification side of a reproduction: its rows and the paper's values.
pub struct ClassifyTable {
    rows: Vec<Row>,
    scale: Scale,
    backend: Backend,
}

impl ClassifyTable {
    /// The rows of a table as `args` asks.
    pub fn new(rows: Vec<Row>, args: &ReproduceArgs) -> Self {
        Self {
            rows,
            scale: args.scale,
            backend: args.backend,
        }
    }
}

impl Table for ClassifyTable {
    fn plan(&self, seed: u64, root: &std::path::Path) -> Result<Vec<Planned>> {
        self.rows
            .iter()
            .map(|row| {
                let dir = root.join(&row.name).join(format!("seed-{seed}"));
                let config = run_config(row, seed, self.scale, self.backend, &dir)?;
                Ok(Planned {
                    run: row.name.clone(),
                    seed,
                    dir,
                    launch: Launch::Classify(Box::new(config)),
                })
            })
            .collect()
    }

    fn write_results(&self, ctx: &Results<'_>, failed: &[(String, String)]) -> Result<()> {
        let mut results = Vec::new();
        for row in &self.rows {
            let mut r = RowResult {
                row: row.name.clone(),
                paper: row.paper()?,
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
            for &seed in ctx.seeds {
                if let Some(s) = ctx.finished(&row.name, seed)? {
                    r.seeds.push(seed);
                    r.test_acc.push(s.get("test_acc").unwrap_or(f64::NAN));
                    r.skipped.push(s.skipped.clone());
                    r.epoch_seconds.push(s.mean_train_seconds());
                }
            }
            results.push(r);
        }
        let md = results_markdown(
            ctx.table,
            ctx.args.scale,
            ctx.args.runs,
            ctx.command,
            &results,
        );
        ctx.write(&md, &results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_value_is_not_run() {
        assert_eq!(pm(&[], 2), "not run");
        assert_eq!(pm(&[1.0], 2), "1.00 (1 run)");
    }
}

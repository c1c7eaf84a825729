//! `report.md`: the summary and decision tables with the figures in order.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ela_records::{PruningRecord, TaskKind, write_atomic};

use crate::curves::{curves_figure, epoch_time_figure};
use crate::heatmap::{attention_figure, kl_figure};
use crate::mapping::mapping_figure;
use crate::run::Run;
use crate::style::{Figure, register_font};

/// What [`write_report`] wrote.
#[derive(Debug, Clone)]
pub struct Report {
    /// `report.md`.
    pub markdown: PathBuf,
    /// Every figure, in the order the report shows them.
    pub figures: Vec<Figure>,
}

impl Report {
    /// The figure whose file name is `name`.
    pub fn figure(&self, name: &str) -> Option<&Figure> {
        self.figures
            .iter()
            .find(|f| f.path.file_name().is_some_and(|n| n == name))
    }
}

/// Writes `report.md` and its figures into `out` for `runs`, all of one task: one run's
/// report, or several compared side by side.
pub fn write_report(runs: &[Run], out: &Path) -> Result<Report> {
    let Some(first) = runs.first() else {
        bail!("no run directory given");
    };
    if let Some(other) = runs.iter().find(|r| r.task != first.task) {
        bail!(
            "runs of different tasks cannot be compared: {} is a {} run, {} a {} run",
            first.dir.display(),
            first.task,
            other.dir.display(),
            other.task
        );
    }
    register_font();
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create report directory {}", out.display()))?;
    match first.task {
        TaskKind::Classify => classification_report(runs, out),
        TaskKind::Detect => crate::detection::detection_report(runs, out),
    }
}

/// The report of classification runs.
fn classification_report(runs: &[Run], out: &Path) -> Result<Report> {
    let mut md = String::new();
    let mut figures = Vec::new();
    let names: Vec<String> = runs.iter().map(|r| r.dir.display().to_string()).collect();
    writeln!(md, "# ELA run report\n\nRuns: {}\n", names.join(", ")).ok();

    md.push_str("## Summary\n\n");
    md.push_str(&comparison_table(runs));
    let time = epoch_time_figure(runs, &out.join("epoch-time.png"))?;
    writeln!(md, "\n![Training seconds per epoch](epoch-time.png)\n").ok();
    figures.push(time);

    for (i, run) in runs.iter().enumerate() {
        let prefix = figure_prefix(runs, i);
        writeln!(md, "## {}\n", run.name).ok();
        writeln!(
            md,
            "`{}` ResNet-{} on {}, seed {}, {} epochs, lr {}, batch {}, skip mode {}.\n",
            run.setting("attention"),
            run.setting("depth"),
            run.setting("dataset"),
            run.setting("seed"),
            run.setting("epochs"),
            run.setting("lr"),
            run.setting("batch_size"),
            run.setting("skip_mode"),
        )
        .ok();
        md.push_str(&resume_lines(run));
        if run.metrics.is_empty() {
            md.push_str("No epoch finished.\n\n");
        } else {
            let name = format!("{prefix}curves.png");
            figures.push(curves_figure(run, &out.join(&name))?);
            writeln!(md, "![Loss and accuracy]({name})\n").ok();
        }
        pruning_section(run, &prefix, out, &mut md, &mut figures)?;
        if let (Some(first), Some(last)) = (run.attention.first(), run.attention.last()) {
            writeln!(
                md,
                "### Attention maps\n\nMean MRLA-B attention weight of each block (row) on each \
                 block of its stage memory (column), over the test set: epoch {} (skipping \
                 {:?}) and epoch {} (skipping {:?}).\n",
                first.epoch, first.skipped, last.epoch, last.skipped
            )
            .ok();
            for stage in 0..first.stages.len().min(last.stages.len()) {
                let name = format!("{prefix}attention-stage{}.png", stage + 1);
                figures.push(attention_figure(first, last, stage, &out.join(&name))?);
                writeln!(md, "![Stage {} attention]({name})\n", stage + 1).ok();
            }
        }
    }
    let markdown = out.join("report.md");
    write_atomic(&markdown, md.as_bytes())?;
    Ok(Report { markdown, figures })
}

/// A task's headline values: the column title, the value's name and its factor to the shown
/// unit; the first is also shown at its best epoch.
fn headline(task: TaskKind) -> &'static [(&'static str, &'static str, f64)] {
    match task {
        TaskKind::Classify => &[("test acc (%)", "test_acc", 1.0)],
        TaskKind::Detect => &[
            ("box AP (%)", "AP", 100.0),
            ("box AP50 (%)", "AP50", 100.0),
            ("mask AP (%)", "segm_AP", 100.0),
        ],
    }
}

/// The runs side by side: method, setting, the task's headline values at the last epoch (and
/// the first one's best), seconds per epoch and the blocks ELA skipped.
pub(crate) fn comparison_table(runs: &[Run]) -> String {
    let task = runs.first().map_or(TaskKind::Classify, |r| r.task);
    let heads = headline(task);
    let titles: Vec<&str> = heads.iter().map(|h| h.0).collect();
    let mut t = format!(
        "| run | method | depth | dataset | seed | epochs | {} | best {} | train s/epoch | \
         skipped blocks |\n|{}\n",
        titles.join(" | "),
        titles[0],
        "---|".repeat(heads.len() + 8)
    );
    let shown = |v: f64, digits: usize| {
        if v.is_nan() {
            "-".to_string()
        } else {
            format!("{v:.digits$}")
        }
    };
    for r in runs {
        let (_, best_name, best_factor) = heads[0];
        let best = r
            .metrics
            .iter()
            .map(|m| best_factor * m.value(best_name))
            .fold(f64::NAN, f64::max);
        let mean_time = if r.metrics.is_empty() {
            f64::NAN
        } else {
            r.metrics.iter().map(|m| m.train_seconds).sum::<f64>() / r.metrics.len() as f64
        };
        let skipped = r.pruning.as_ref().map_or("-".to_string(), |p| {
            let s: Vec<String> = (0..p.final_mask.len())
                .filter(|&i| p.final_mask[i])
                .map(|i| i.to_string())
                .collect();
            if s.is_empty() {
                "none".into()
            } else {
                s.join(", ")
            }
        });
        let values: Vec<String> = heads
            .iter()
            .map(|(_, name, factor)| shown(factor * r.last(name), 2))
            .collect();
        writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            r.method(),
            r.setting("depth"),
            r.setting("dataset"),
            r.setting("seed"),
            r.metrics.len(),
            values.join(" | "),
            shown(best, 2),
            shown(mean_time, 1),
            skipped
        )
        .ok();
    }
    t
}

/// The prefix of run `i`'s figure files: none for a single run.
pub(crate) fn figure_prefix(runs: &[Run], i: usize) -> String {
    if runs.len() == 1 {
        String::new()
    } else {
        format!("{}-{}-", i + 1, runs[i].slug())
    }
}

/// What resumes changed, one line each.
pub(crate) fn resume_lines(run: &Run) -> String {
    let mut md = String::new();
    for change in run.config["resume_overrides"]
        .as_array()
        .into_iter()
        .flatten()
    {
        writeln!(
            md,
            "Resumed with base learning rate {} from epoch {} (was {}).\n",
            change["lr"], change["from_epoch"], change["previous_lr"]
        )
        .ok();
    }
    md
}

/// ELA's decisions of a run: the table, the KL heatmap and the mapping, files named with
/// `prefix`.
pub(crate) fn pruning_section(
    run: &Run,
    prefix: &str,
    out: &Path,
    md: &mut String,
    figures: &mut Vec<Figure>,
) -> Result<()> {
    let Some(p) = &run.pruning else {
        return Ok(());
    };
    md.push_str(&decision_table(p));
    if p.windows.is_empty() {
        md.push_str("No pruning window has ended yet.\n\n");
        return Ok(());
    }
    let name = format!("{prefix}kl.png");
    figures.push(kl_figure(p, &out.join(&name))?);
    writeln!(
        md,
        "![KL scores per window]({name})\n\nEach cell is a block's mean KL score D_t over its \
         window (grey: no score, a stage's first block or a block already skipped); a cross \
         marks the blocks that window's decision skipped.\n"
    )
    .ok();
    let name = format!("{prefix}mapping.png");
    if let Some(fig) = mapping_figure(p, &out.join(&name))? {
        figures.push(fig);
        writeln!(md, "![Score mapping]({name})\n").ok();
    }
    Ok(())
}

pub(crate) fn decision_table(p: &PruningRecord) -> String {
    let mut t = format!(
        "### Pruning decisions\n\nMethod `{}`, windows {}, KL {:?}.\n\n\
         | window | batches | quantile Q | skipped by it | skipped after |\n|---|---|---|---|---|\n",
        p.method.name(),
        p.schedule,
        p.kl_direction
    );
    for w in &p.windows {
        let after: Vec<usize> = (0..w.mask.len()).filter(|&i| w.mask[i]).collect();
        writeln!(
            t,
            "| {}–{} | {} | {} | {:?} | {:?} |",
            w.start,
            w.end,
            w.batches,
            w.quantile.map_or("-".into(), |q| format!("{q:.4}")),
            w.newly_skipped,
            after
        )
        .ok();
    }
    t.push('\n');
    t
}

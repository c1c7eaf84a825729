//! `report.md` of detection runs: the runs compared, then per run the losses and COCO AP per
//! epoch with the pruning decisions marked, the table of the 12 statistics per epoch, and ELA's
//! decisions (the same KL heatmap, mapping and decision table as a classification run's).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use ela_records::{EpochRecord, write_atomic};
use plotters::prelude::SeriesLabelPosition;

use crate::curves::LineChart;
use crate::markdown::{Report, comparison_table, figure_prefix, pruning_section, resume_lines};
use crate::run::Run;
use crate::style::{Figure, figure, render};

/// The losses the curves show, with their labels.
const LOSSES: [(&str, &str); 6] = [
    ("loss", "total"),
    ("loss_rpn_cls", "RPN cls"),
    ("loss_rpn_bbox", "RPN box"),
    ("loss_cls", "RoI cls"),
    ("loss_bbox", "RoI box"),
    ("loss_mask", "mask"),
];

/// The statistics the table shows, in COCO's order.
const STATS: [&str; 12] = [
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
];

/// The report of detection runs: the comparison table, then per run its losses and COCO AP
/// per epoch with the pruning decisions marked, the table of the 12 statistics per epoch (boxes,
/// and masks for Mask R-CNN), and ELA's decisions.
pub(crate) fn detection_report(runs: &[Run], out: &Path) -> Result<Report> {
    let mut md = String::new();
    let mut figures = Vec::new();
    let names: Vec<String> = runs.iter().map(|r| r.dir.display().to_string()).collect();
    writeln!(
        md,
        "# ELA detection run report\n\nRuns: {}\n\n## Summary\n\n{}",
        names.join(", "),
        comparison_table(runs)
    )
    .ok();
    for (i, run) in runs.iter().enumerate() {
        let prefix = figure_prefix(runs, i);
        let setting = |k: &str| run.setting(k);
        writeln!(
            md,
            "\n## {}\n\n{} R-{} FPN, backbone attention {}, on {}, seed {}, {} epochs, lr {}, \
             batch {}.\n",
            run.name,
            if setting("detector") == "mask-rcnn" {
                "Mask R-CNN"
            } else {
                "Faster R-CNN"
            },
            setting("depth"),
            run.method(),
            setting("dataset"),
            setting("seed"),
            setting("epochs"),
            setting("lr"),
            setting("batch_size"),
        )
        .ok();
        md.push_str(&resume_lines(run));
        let epochs = &run.metrics;
        if epochs.is_empty() {
            md.push_str("No epoch finished.\n\n");
        } else {
            let marks: Vec<f64> = run
                .pruning
                .as_ref()
                .map(|p| p.windows.iter().map(|w| w.end as f64).collect())
                .unwrap_or_default();
            let name = format!("{prefix}curves.png");
            figures.push(curves(epochs, marks, &out.join(&name))?);
            writeln!(md, "![Losses and COCO AP]({name})\n\nBoxes:\n").ok();
            md.push_str(&stats_table(epochs, ""));
            if epochs.iter().any(|e| e.get("segm_AP").is_some()) {
                md.push_str("\nMasks:\n\n");
                md.push_str(&stats_table(epochs, "segm_"));
            }
        }
        md.push('\n');
        pruning_section(run, &prefix, out, &mut md, &mut figures)?;
    }
    let markdown = out.join("report.md");
    write_atomic(&markdown, md.as_bytes())?;
    Ok(Report { markdown, figures })
}

/// Every epoch's statistics (boxes', or with `prefix` `segm_` masks'), learning rate, loss,
/// seconds and skipped blocks.
fn stats_table(epochs: &[EpochRecord], prefix: &str) -> String {
    let mut md = format!(
        "| epoch | lr | loss | {} | train s | skipped |\n|{}\n",
        STATS.join(" | "),
        "---|".repeat(STATS.len() + 5)
    );
    for e in epochs {
        let stats: Vec<String> = STATS
            .iter()
            .map(|s| format!("{:.3}", e.value(&format!("{prefix}{s}"))))
            .collect();
        let skipped: Vec<String> = e.skipped.iter().map(usize::to_string).collect();
        writeln!(
            md,
            "| {} | {:.2e} | {:.3} | {} | {:.0} | {} |",
            e.epoch,
            e.lr,
            e.value("loss"),
            stats.join(" | "),
            e.train_seconds,
            if skipped.is_empty() {
                "-".into()
            } else {
                skipped.join(", ")
            }
        )
        .ok();
    }
    md
}

/// Losses (log scale) and AP, AP50, AP75 (%) per epoch.
fn curves(epochs: &[EpochRecord], marks: Vec<f64>, path: &Path) -> Result<Figure> {
    let size = (1200, 450);
    let n = epochs.len() as f64;
    let series = |f: &dyn Fn(&EpochRecord) -> f64| -> Vec<(f64, f64)> {
        epochs
            .iter()
            .map(|e| (e.epoch as f64, f(e)))
            .filter(|p| p.1.is_finite() && p.1 > 0.0)
            .collect()
    };
    let values: Vec<f64> = epochs
        .iter()
        .flat_map(|e| LOSSES.iter().map(|(name, _)| e.value(name)))
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let lo = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .min(1.0)
        * 0.8;
    let hi = values.iter().copied().fold(0.0, f64::max).max(lo * 10.0) * 1.25;
    let loss = LineChart {
        title: "losses".into(),
        y_desc: "loss (log)",
        y: (lo, hi),
        log: true,
        epochs: n,
        lines: LOSSES
            .iter()
            .map(|(name, label)| (label.to_string(), series(&|e| e.value(name))))
            .filter(|(_, points)| !points.is_empty())
            .collect(),
        marks: marks.clone(),
        legend: SeriesLabelPosition::UpperRight,
    };
    let top = epochs
        .iter()
        .map(|e| 100.0 * e.value("AP50"))
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max);
    let ap = LineChart {
        title: "COCO AP (%); dashed: pruning decisions".into(),
        y_desc: "AP (%)",
        y: (0.0, (top * 1.2).min(100.0)),
        log: false,
        epochs: n,
        lines: ["AP", "AP50", "AP75"]
            .iter()
            .map(|s| (s.to_string(), series(&|e| 100.0 * e.value(s))))
            .chain(["AP", "AP50"].iter().map(|s| {
                let name = format!("segm_{s}");
                (format!("mask {s}"), series(&|e| 100.0 * e.value(&name)))
            }))
            .filter(|(_, points)| !points.is_empty())
            .collect(),
        marks,
        legend: SeriesLabelPosition::LowerRight,
    };
    render(path, size, |root| {
        let (left, right) = root.split_horizontally(size.0 / 2);
        loss.draw(&left, path)?;
        ap.draw(&right, path)
    })?;
    Ok(figure(path, size, Vec::new()))
}

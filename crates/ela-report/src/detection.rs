//! `report.md` of a detection run: the losses and COCO AP per epoch with the pruning decisions
//! marked, the table of the 12 statistics per epoch, and ELA's decisions (the same KL heatmap,
//! mapping and decision table as a classification run's).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use ela_records::{
    DETECT_EPOCHS_FILE, DetectEpochRecord, read_detect_epochs, read_pruning, write_atomic,
};
use plotters::prelude::SeriesLabelPosition;

use crate::curves::LineChart;
use crate::heatmap::kl_figure;
use crate::mapping::mapping_figure;
use crate::markdown::{Report, decision_table};
use crate::style::{Figure, figure, register_font, render};

/// The statistics the table shows, in COCO's order.
const STATS: [&str; 12] = [
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
];

/// Writes `report.md` and its figures for the detection run in `dir` into `out`.
pub fn write_detection_report(dir: &Path, out: &Path) -> Result<Report> {
    let epochs = read_detect_epochs(&dir.join(DETECT_EPOCHS_FILE))?;
    if epochs.is_empty() {
        bail!(
            "{} records no finished epoch",
            dir.join(DETECT_EPOCHS_FILE).display()
        );
    }
    let config: serde_json::Value = std::fs::read_to_string(dir.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let pruning_path = dir.join("pruning.json");
    let pruning = if pruning_path.exists() {
        Some(read_pruning(&pruning_path)?)
    } else {
        None
    };
    register_font();
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create report directory {}", out.display()))?;
    let mut md = String::new();
    let mut figures = Vec::new();
    let setting = |k: &str| match &config[k] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        v => v.to_string(),
    };
    writeln!(
        md,
        "# ELA detection run report\n\nRun: {}\n\n{} R-{} FPN, backbone attention {}{}, on {}, \
         seed {}, {} epochs, lr {}, batch {}.\n",
        dir.display(),
        if config["detector"] == "mask-rcnn" {
            "Mask R-CNN"
        } else {
            "Faster R-CNN"
        },
        setting("depth"),
        setting("attention"),
        if config["ela"] == serde_json::Value::Bool(true) {
            " (ELA)"
        } else {
            ""
        },
        setting("dataset"),
        setting("seed"),
        setting("epochs"),
        setting("lr"),
        setting("batch_size"),
    )
    .ok();
    let marks: Vec<f64> = pruning
        .as_ref()
        .map(|p| p.windows.iter().map(|w| w.end as f64).collect())
        .unwrap_or_default();
    figures.push(curves(&epochs, marks, &out.join("curves.png"))?);
    md.push_str("![Losses and COCO AP](curves.png)\n\n");
    md.push_str("Boxes:\n\n");
    md.push_str(&stats_table(&epochs, DetectEpochRecord::stat));
    if epochs.iter().any(|e| e.segm.is_some()) {
        md.push_str("\nMasks:\n\n");
        md.push_str(&stats_table(&epochs, DetectEpochRecord::segm_stat));
    }
    if let Some(p) = &pruning {
        md.push_str("\n## Pruning\n\n");
        md.push_str(&decision_table(p));
        if !p.windows.is_empty() {
            figures.push(kl_figure(p, &out.join("kl.png"))?);
            md.push_str("![KL scores per window](kl.png)\n\n");
            if let Some(fig) = mapping_figure(p, &out.join("mapping.png"))? {
                figures.push(fig);
                md.push_str("![Score mapping](mapping.png)\n\n");
            }
        }
    }
    let markdown = out.join("report.md");
    write_atomic(&markdown, md.as_bytes())?;
    Ok(Report { markdown, figures })
}

/// Every epoch's statistics (boxes' or masks'), learning rate, loss, seconds and skipped blocks.
fn stats_table(epochs: &[DetectEpochRecord], stat: fn(&DetectEpochRecord, &str) -> f64) -> String {
    let mut md = format!(
        "| epoch | lr | loss | {} | train s | skipped |\n|{}\n",
        STATS.join(" | "),
        "---|".repeat(STATS.len() + 5)
    );
    for e in epochs {
        let stats: Vec<String> = STATS.iter().map(|s| format!("{:.3}", stat(e, s))).collect();
        let skipped: Vec<String> = e.skipped.iter().map(usize::to_string).collect();
        writeln!(
            md,
            "| {} | {:.2e} | {:.3} | {} | {:.0} | {} |",
            e.epoch,
            e.lr,
            e.loss(),
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
fn curves(epochs: &[DetectEpochRecord], marks: Vec<f64>, path: &Path) -> Result<Figure> {
    let size = (1200, 450);
    let n = epochs.len() as f64;
    let series = |f: &dyn Fn(&DetectEpochRecord) -> f64| -> Vec<(f64, f64)> {
        epochs
            .iter()
            .map(|e| (e.epoch as f64, f(e)))
            .filter(|p| p.1.is_finite() && p.1 > 0.0)
            .collect()
    };
    let values: Vec<f64> = epochs
        .iter()
        .flat_map(|e| {
            [
                e.loss(),
                e.loss_rpn_cls,
                e.loss_rpn_bbox,
                e.loss_cls,
                e.loss_bbox,
                e.loss_mask.unwrap_or(f64::NAN),
            ]
        })
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
        lines: vec![
            ("total".into(), series(&|e| e.loss())),
            ("RPN cls".into(), series(&|e| e.loss_rpn_cls)),
            ("RPN box".into(), series(&|e| e.loss_rpn_bbox)),
            ("RoI cls".into(), series(&|e| e.loss_cls)),
            ("RoI box".into(), series(&|e| e.loss_bbox)),
            ("mask".into(), series(&|e| e.loss_mask.unwrap_or(f64::NAN))),
        ],
        marks: marks.clone(),
        legend: SeriesLabelPosition::UpperRight,
    };
    let top = epochs
        .iter()
        .map(|e| 100.0 * e.stat("AP50"))
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
            .map(|s| (s.to_string(), series(&|e| 100.0 * e.stat(s))))
            .chain(
                ["AP", "AP50"]
                    .iter()
                    .map(|s| (format!("mask {s}"), series(&|e| 100.0 * e.segm_stat(s)))),
            )
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

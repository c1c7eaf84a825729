//! The detection table (Table 5). Its rows are detection configs (`task = "detect"`; the other
//! keys are `ela train --task detect` flags) with the paper's parameter count and COCO
//! statistics under `[paper]`; the results table holds our parameter count and statistics beside
//! the paper's, mean ± std over the finished seeds.
//!
//! `--scale smoke` trains every row on the offline digit set ([`SMOKE_SETTINGS`], a ResNet-18
//! backbone from scratch, a couple of minutes per run on a CPU). ResNet-50 and ResNet-101 rows of
//! one detector and attention are the same smoke run, trained once (`<detector>-<attention>`).
//! `--scale full` trains the configs as written (COCO 2017, the 1x schedule: GPUs).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser};
use ela_detect_train::{DetectRunConfig, DetectTrainArgs};
use serde::{Deserialize, Serialize};

use super::{Planned, ReproduceArgs, Results, Row, Scale, Table, failures, mean_std};
use crate::training::Launch;

/// Flags a smoke run adds after its config's: the digit set, 120 training and 40 validation
/// canvases, 2 epochs with ELA's windows after epochs 1 and 2, a ResNet-18 backbone; the digit
/// set's recipe otherwise (lr 0.02 after a 100-iteration warm-up, so the 60 iterations stay in
/// the warm-up: a shorter one lets MRLA-B diverge from scratch).
pub const SMOKE_SETTINGS: [&str; 12] = [
    "--dataset",
    "digits",
    "--limit-train",
    "120",
    "--limit-val",
    "40",
    "--epochs",
    "2",
    "--windows",
    "1,2",
    "--depth",
    "18",
];

/// The COCO statistics the paper gives for a row (`[paper]` of its config, in %): the box
/// statistics, and for Mask R-CNN the mask AP, AP50, AP75 in place of APs, APm, APl.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DetectPaper {
    /// Parameters as printed.
    pub params: Option<String>,
    /// Box AP.
    pub ap: Option<f64>,
    /// Box AP50.
    pub ap50: Option<f64>,
    /// Box AP75.
    pub ap75: Option<f64>,
    /// Box APs (Faster R-CNN rows).
    pub aps: Option<f64>,
    /// Box APm.
    pub apm: Option<f64>,
    /// Box APl.
    pub apl: Option<f64>,
    /// Mask AP (Mask R-CNN rows).
    pub mask_ap: Option<f64>,
    /// Mask AP50.
    pub mask_ap50: Option<f64>,
    /// Mask AP75.
    pub mask_ap75: Option<f64>,
}

/// The statistic keys of a row's six columns: `(paper field, ours: box or mask, COCO name)`.
fn columns(mask: bool) -> [(&'static str, bool, &'static str); 6] {
    if mask {
        [
            ("ap", false, "AP"),
            ("ap50", false, "AP50"),
            ("ap75", false, "AP75"),
            ("mask_ap", true, "AP"),
            ("mask_ap50", true, "AP50"),
            ("mask_ap75", true, "AP75"),
        ]
    } else {
        [
            ("ap", false, "AP"),
            ("ap50", false, "AP50"),
            ("ap75", false, "AP75"),
            ("aps", false, "APs"),
            ("apm", false, "APm"),
            ("apl", false, "APl"),
        ]
    }
}

impl DetectPaper {
    fn get(&self, key: &str) -> Option<f64> {
        match key {
            "ap" => self.ap,
            "ap50" => self.ap50,
            "ap75" => self.ap75,
            "aps" => self.aps,
            "apm" => self.apm,
            "apl" => self.apl,
            "mask_ap" => self.mask_ap,
            "mask_ap50" => self.mask_ap50,
            "mask_ap75" => self.mask_ap75,
            _ => None,
        }
    }
}

#[derive(Parser)]
#[command(name = "ela", args_override_self = true, allow_negative_numbers = true)]
struct OneRun {
    #[command(flatten)]
    args: DetectTrainArgs,
}

/// One detection row: its config's flags and the paper's values.
struct DetectRow {
    row: Row,
    paper: DetectPaper,
    /// The run's flags at full scale (the config's).
    flags: Vec<String>,
    /// Full-scale configuration (for the parameter count and the smoke key).
    full: DetectRunConfig,
}

fn read_row(row: Row) -> Result<DetectRow> {
    let paper: DetectPaper = row.paper()?;
    let flags = ela_train::config::read(&row.config, &OneRun::command())?;
    let full = parse(&row, flags.clone())?.resolve()?;
    Ok(DetectRow {
        row,
        paper,
        flags,
        full,
    })
}

fn parse(row: &Row, flags: Vec<String>) -> Result<DetectTrainArgs> {
    let argv = std::iter::once("ela".to_string()).chain(flags);
    Ok(OneRun::try_parse_from(argv)
        .with_context(|| format!("{} does not parse", row.config.display()))?
        .args)
}

/// The run directory name of a row at `scale` (smoke runs are shared by depth).
fn run_name(r: &DetectRow, scale: Scale) -> String {
    match scale {
        Scale::Full => r.row.name.clone(),
        Scale::Smoke => format!("{}-{}", r.full.detector.name(), r.method()),
    }
}

impl DetectRow {
    /// `ela`, or the backbone's attention option.
    fn method(&self) -> String {
        if self.full.ela {
            "ela".into()
        } else {
            self.full.attention.to_string()
        }
    }
}

/// The flags of one (row, seed) run.
fn run_args(r: &DetectRow, seed: u64, args: &TableArgs, dir: &Path) -> Result<DetectTrainArgs> {
    let mut flags = r.flags.clone();
    if args.scale == Scale::Smoke {
        flags.extend(SMOKE_SETTINGS.iter().map(|s| s.to_string()));
        // From scratch on the digits: no ImageNet weights to start from.
        flags.extend([
            "--frozen-stages".into(),
            "0".into(),
            "--norm-eval".into(),
            "false".into(),
        ]);
    }
    flags.extend([
        "--seed".into(),
        seed.to_string(),
        "--backend".into(),
        clap::ValueEnum::to_possible_value(&args.backend)
            .map_or_else(|| "cpu".into(), |v| v.get_name().to_string()),
        "--out".into(),
        dir.display().to_string(),
    ]);
    let parsed = parse(&r.row, flags)?;
    parsed
        .resolve()
        .with_context(|| format!("{}", r.row.config.display()))?;
    Ok(parsed)
}

/// What the runs of the table are trained with.
struct TableArgs {
    scale: Scale,
    backend: ela_train::backend::Backend,
}

/// The detection side of a reproduction: its rows, their flags and the paper's values.
pub struct DetectTable {
    rows: Vec<DetectRow>,
    args: TableArgs,
}

impl DetectTable {
    /// The rows of a table as `args` asks; each row's flags are read and resolved.
    pub fn new(rows: Vec<Row>, args: &ReproduceArgs) -> Result<Self> {
        Ok(Self {
            rows: rows.into_iter().map(read_row).collect::<Result<_>>()?,
            args: TableArgs {
                scale: args.scale,
                backend: args.backend,
            },
        })
    }
}

impl Table for DetectTable {
    fn plan(&self, seed: u64, root: &Path) -> Result<Vec<Planned>> {
        self.rows
            .iter()
            .map(|r| {
                let run = run_name(r, self.args.scale);
                let dir = root.join(&run).join(format!("seed-{seed}"));
                let launch = Launch::Detect(Box::new(run_args(r, seed, &self.args, &dir)?));
                Ok(Planned {
                    run,
                    seed,
                    dir,
                    launch,
                })
            })
            .collect()
    }

    fn write_results(&self, ctx: &Results<'_>, failed: &[(String, String)]) -> Result<()> {
        write_results(&self.rows, ctx, failed)
    }
}

/// One row's finished runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DetectRowResult {
    row: String,
    detector: String,
    depth: usize,
    attention: String,
    paper: DetectPaper,
    parameters: usize,
    trainable: usize,
    run: String,
    seeds: Vec<u64>,
    /// Per column (as [`columns`]), the finished runs' values in %.
    values: Vec<Vec<f64>>,
    epoch_seconds: Vec<f64>,
    failed: Vec<String>,
}

fn write_results(rows: &[DetectRow], ctx: &Results<'_>, failed: &[(String, String)]) -> Result<()> {
    // Counting parameters needs a model, not a fast one: the CPU backend.
    let device = ela_train::backend::device(ela_train::backend::Backend::Cpu, 0)?;
    let mut results = Vec::new();
    for r in rows {
        let mask = r.full.detector == ela_detect_train::config::DetectorKind::MaskRcnn;
        let model = r.full.detector(80)?.init(&device)?;
        let run = run_name(r, ctx.args.scale);
        let mut result = DetectRowResult {
            row: r.row.name.clone(),
            detector: r.full.detector.name().into(),
            depth: r.full.depth,
            attention: r.method(),
            paper: r.paper.clone(),
            parameters: model.parameter_count(),
            trainable: model.trainable_parameter_count(),
            run: run.clone(),
            seeds: Vec::new(),
            values: vec![Vec::new(); 6],
            epoch_seconds: Vec::new(),
            failed: failed
                .iter()
                .filter(|(n, _)| *n == run)
                .map(|(_, why)| why.clone())
                .collect(),
        };
        for &seed in ctx.seeds {
            let Some(summary) = ctx.finished(&run, seed)? else {
                continue;
            };
            result.seeds.push(seed);
            result.epoch_seconds.push(summary.mean_train_seconds());
            for (c, (_, is_mask, name)) in columns(mask).iter().enumerate() {
                let key = if *is_mask {
                    format!("segm_{name}")
                } else {
                    name.to_string()
                };
                result.values[c].push(100.0 * summary.get(&key).unwrap_or(f64::NAN));
            }
        }
        results.push(result);
    }
    let md = markdown(ctx.table, ctx.args, ctx.command, ctx.minutes, &results);
    ctx.write(&md, &results)
}

/// Where an attention option stands in Table 5's order.
fn paper_position(attention: &str) -> usize {
    ["none", "se", "eca", "nl", "gc", "rla", "mrla-l", "ela"]
        .iter()
        .position(|a| *a == attention)
        .unwrap_or(usize::MAX)
}

fn pm(values: &[f64]) -> String {
    // COCOeval's −1: the split has no ground truth in that area range.
    if values.iter().any(|v| *v < 0.0) {
        return "n/a".into();
    }
    match mean_std(values) {
        None => "not run".into(),
        Some((m, None)) => format!("{m:.1}"),
        Some((m, Some(s))) => format!("{m:.1} ± {s:.1}"),
    }
}

fn markdown(
    table: &str,
    args: &ReproduceArgs,
    command: &str,
    minutes: f64,
    results: &[DetectRowResult],
) -> String {
    let mut md = format!(
        "# {table} ({} scale)\n\n",
        if args.scale == Scale::Smoke {
            "smoke"
        } else {
            "full"
        }
    );
    match args.scale {
        Scale::Smoke => writeln!(
            md,
            "Smoke scale: every row trained from scratch on the offline digit set ({}, from \
             scratch: no frozen stages or statistics), the ResNet-50 and ResNet-101 rows of a \
             detector and attention as one run. These numbers check the pipeline and compare \
             the attention options under one small budget; the paper's values (COCO, ImageNet \
             pretraining, 12 epochs) are beside them for reference only.\n",
            SMOKE_SETTINGS.join(" ")
        )
        .ok(),
        Scale::Full => writeln!(
            md,
            "Full scale: the configs as written (COCO 2017, 1x schedule). A row with no \
             finished run says \"not run\".\n"
        )
        .ok(),
    };
    writeln!(
        md,
        "Command: `{command}`. Runs per row asked: {}; {minutes:.1} minutes of training and \
         evaluation in this invocation. Statistics in %, mean ± sample standard deviation over \
         the finished seeds. Parameters: ours at the row's full configuration, trainable (as \
         MMDetection's `get_flops.py` counts, which the paper reports) and in all.\n",
        args.runs
    )
    .ok();
    for (detector, title, heads) in [
        (
            "faster-rcnn",
            "Faster R-CNN",
            "AP | AP50 | AP75 | APs | APm | APl",
        ),
        (
            "mask-rcnn",
            "Mask R-CNN (box AP, AP50, AP75; mask AP, AP50, AP75)",
            "AP | AP50 | AP75 | mask AP | mask AP50 | mask AP75",
        ),
    ] {
        let mut rows: Vec<&DetectRowResult> =
            results.iter().filter(|r| r.detector == detector).collect();
        // The paper's order: by depth, then plain, SE, ECA, NL, GC, RLA, MRLA-L, ELA.
        rows.sort_by_key(|r| (r.depth, paper_position(&r.attention)));
        if rows.is_empty() {
            continue;
        }
        let cells: Vec<String> = heads
            .split(" | ")
            .map(|h| format!("{h} paper / ours"))
            .collect();
        writeln!(
            md,
            "## {title}\n\n| row | params paper | params ours (trainable / all) | {} | runs | train s/epoch |\n|{}",
            cells.join(" | "),
            "---|".repeat(11)
        )
        .ok();
        for r in rows {
            let mask = detector == "mask-rcnn";
            let stats: Vec<String> = columns(mask)
                .iter()
                .zip(&r.values)
                .map(|((key, _, _), ours)| {
                    let paper = r.paper.get(key).map_or("-".into(), |v| format!("{v:.1}"));
                    format!("{paper} / {}", pm(ours))
                })
                .collect();
            writeln!(
                md,
                "| {} | {} | {:.1}M / {:.1}M | {} | {} | {} |",
                r.row,
                r.paper.params.as_deref().unwrap_or("-"),
                r.trainable as f64 / 1e6,
                r.parameters as f64 / 1e6,
                stats.join(" | "),
                r.seeds.len(),
                pm(&r.epoch_seconds),
            )
            .ok();
        }
        md.push('\n');
    }
    md.push_str(&failures(
        results
            .iter()
            .map(|r| (r.row.as_str(), r.failed.as_slice())),
    ));
    md
}

//! `ela report` on run directories built here with known contents: every figure is a PNG of
//! its stated size, heatmaps have one cell per (row, column) in the colour of its value, the
//! blocks each decision skipped are crossed, and report.md carries the runs' numbers.

use std::path::Path;

use ela_prune::SkipMode;
use ela_prune::{EbqmParams, KlDirection, PruneMethod, StageLayout};
use ela_records::{
    BlockRecord, EpochRecord, PruningRecord, RunDir, WindowRecord, lay_out, write_json,
};
use ela_report::{Figure, Run, heat_rgb, write_report};
use image::RgbImage;

const RED: [u8; 3] = [214, 39, 40];
const GREY: [u8; 3] = [228, 228, 228];

/// KL scores of the two windows over 9 blocks (3 stages × 3); `None`: first block of a stage
/// or already skipped.
fn kl_rows() -> [[Option<f64>; 9]; 2] {
    [
        [
            None,
            Some(0.9),
            Some(0.2),
            None,
            Some(0.05),
            Some(0.7),
            None,
            Some(0.4),
            Some(0.6),
        ],
        [
            None,
            Some(1.3),
            Some(0.3),
            None,
            None,
            Some(0.8),
            None,
            Some(0.5),
            Some(0.1),
        ],
    ]
}

fn metrics(epoch: usize, acc: f64, seconds: f64, skipped: Vec<usize>) -> EpochRecord {
    let value = ela_records::Value::new;
    EpochRecord {
        epoch,
        lr: 0.1,
        values: vec![
            value("train_loss", 2.0 / epoch as f64),
            value("train_acc", acc - 1.0),
            value("test_loss", 2.5 / epoch as f64),
            value("test_acc", acc),
        ],
        train_seconds: seconds,
        epoch_seconds: seconds + 1.0,
        skipped,
    }
}

/// An ELA ResNet-29 run: 3 epochs, windows 1 and 2 skipping blocks 4 then 8.
fn ela_run(root: &Path) -> std::path::PathBuf {
    let dir = root.join("run-ela");
    let mut run = RunDir::create(&dir).unwrap();
    write_json(
        &dir.join("config.json"),
        &serde_json::json!({"attention": "ela", "depth": 29, "dataset": "mnist", "seed": 7,
            "epochs": 3, "lr": 0.02, "batch_size": 32, "skip_mode": "full"}),
    )
    .unwrap();
    run.record_epoch(metrics(1, 80.0, 10.0, vec![])).unwrap();
    run.record_epoch(metrics(2, 92.0, 8.0, vec![4])).unwrap();
    run.record_epoch(metrics(3, 91.0, 7.0, vec![4, 8])).unwrap();
    let layout = StageLayout::new(vec![3, 3, 3]).unwrap();
    let skips = [vec![4], vec![8]];
    let mut mask = vec![false; 9];
    let windows = kl_rows()
        .iter()
        .enumerate()
        .map(|(w, kl)| {
            for &i in &skips[w] {
                mask[i] = true;
            }
            WindowRecord {
                start: w + 1,
                end: w + 1,
                batches: 30,
                quantile: Some(0.4),
                blocks: (0..9)
                    .map(|i| BlockRecord {
                        index: i,
                        stage: i / 3,
                        position: i % 3,
                        kl: kl[i],
                        normalized: kl[i].map(|v| v / 1.3),
                        mapped: kl[i].map(|v| (v / 1.3).powi(5)),
                        skip: skips[w].contains(&i),
                        skipped_after: mask[i],
                    })
                    .collect(),
                newly_skipped: skips[w].clone(),
                mask: mask.clone(),
            }
        })
        .collect();
    let record = PruningRecord {
        method: PruneMethod::Ebqm(EbqmParams::cifar()),
        kl_direction: KlDirection::PrevToNext,
        eps: 1e-8,
        skip_mode: SkipMode::Full,
        blocks_per_stage: vec![3, 3, 3],
        schedule: "1-1,2-2".into(),
        windows,
        final_mask: mask.clone(),
    };
    write_json(&dir.join("pruning.json"), &record).unwrap();
    // Attention rows: block p of a stage spreads its weight evenly over its memory.
    let means = |flags: &[bool]| -> Vec<Option<Vec<f64>>> {
        (0..9)
            .map(|i| {
                if flags[i] {
                    return None;
                }
                let stage = i - i % 3;
                let len = (stage..=i).filter(|&j| !flags[j]).count();
                Some(vec![1.0 / len as f64; len])
            })
            .collect()
    };
    let none = vec![false; 9];
    let records = vec![
        lay_out(&layout, &none, SkipMode::Full, 1, &means(&none)),
        lay_out(&layout, &mask, SkipMode::Full, 3, &means(&mask)),
    ];
    write_json(&dir.join("attention.json"), &records).unwrap();
    dir
}

fn plain_run(root: &Path) -> std::path::PathBuf {
    let dir = root.join("run-none");
    let mut run = RunDir::create(&dir).unwrap();
    write_json(
        &dir.join("config.json"),
        &serde_json::json!({"attention": "none", "depth": 29, "dataset": "mnist", "seed": 7}),
    )
    .unwrap();
    run.record_epoch(metrics(1, 70.0, 5.0, vec![])).unwrap();
    run.record_epoch(metrics(2, 85.5, 5.0, vec![])).unwrap();
    dir
}

fn png(figure: &Figure) -> RgbImage {
    let img = image::open(&figure.path)
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", figure.path.display()))
        .to_rgb8();
    assert_eq!(img.dimensions(), figure.size, "{}", figure.path.display());
    img
}

fn pixel(img: &RgbImage, (x, y): (i32, i32)) -> [u8; 3] {
    img.get_pixel(x as u32, y as u32).0
}

/// Half the distance between horizontally adjacent cell centres, in pixels.
fn half_cell(figure: &Figure) -> (i32, i32) {
    let a = &figure.cells[0];
    let right = figure
        .cells
        .iter()
        .find(|c| c.row == a.row && c.col == a.col + 1)
        .unwrap();
    let below = figure
        .cells
        .iter()
        .find(|c| c.col == a.col && c.row == a.row + 1)
        .unwrap();
    (
        (right.pixel.0 - a.pixel.0) / 2,
        (below.pixel.1 - a.pixel.1) / 2,
    )
}

/// Whether any pixel of the cell around `centre` is the cross colour.
fn has_red(img: &RgbImage, centre: (i32, i32), half: (i32, i32)) -> bool {
    let (hx, hy) = (half.0 * 8 / 10, half.1 * 8 / 10);
    (-hx..=hx).any(|dx| (-hy..=hy).any(|dy| pixel(img, (centre.0 + dx, centre.1 + dy)) == RED))
}

#[test]
fn a_report_draws_what_the_run_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let run = Run::load(&ela_run(tmp.path())).unwrap();
    let out = tmp.path().join("report");
    let report = write_report(&[run], &out).unwrap();
    let names: Vec<String> = report
        .figures
        .iter()
        .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "epoch-time.png",
            "curves.png",
            "kl.png",
            "mapping.png",
            "attention-stage1.png",
            "attention-stage2.png",
            "attention-stage3.png"
        ]
    );
    for f in &report.figures {
        png(f);
    }

    // KL heatmap: windows × blocks cells, each in its value's colour (grey without one).
    let kl = report.figure("kl.png").unwrap();
    assert_eq!(kl.cells.len(), 2 * 9);
    let rows = kl_rows();
    let all: Vec<f64> = rows.iter().flatten().flatten().copied().collect();
    let range = (0.05, 1.3);
    assert_eq!(
        kl.cells.iter().filter(|c| c.value.is_some()).count(),
        all.len()
    );
    let img = png(kl);
    let half = half_cell(kl);
    for cell in &kl.cells {
        assert_eq!(
            cell.value, rows[cell.row][cell.col],
            "cell {}×{}",
            cell.row, cell.col
        );
        // Above the centre: clear of the value's text and of a cross's strokes.
        let probe = (cell.pixel.0, cell.pixel.1 - half.1 / 2);
        let want = cell.value.map_or(GREY, |v| heat_rgb(v, range));
        assert_eq!(pixel(&img, probe), want, "cell {}×{}", cell.row, cell.col);
        let crossed = [(0, 4), (1, 8)].contains(&(cell.row, cell.col));
        assert_eq!(
            has_red(&img, cell.pixel, half),
            crossed,
            "cross of {}×{}",
            cell.row,
            cell.col
        );
    }
    // The largest score is the brightest cell.
    let lum = |c: [u8; 3]| c.iter().map(|&v| v as u32).sum::<u32>();
    let top = kl.cells.iter().find(|c| c.value == Some(1.3)).unwrap();
    let low = kl.cells.iter().find(|c| c.value == Some(0.05)).unwrap();
    let at = |c: &ela_report::Cell| pixel(&img, (c.pixel.0, c.pixel.1 - half.1 / 2));
    assert!(lum(at(top)) > lum(at(low)) + 300);

    // Attention maps: before (epoch 1) and after (epoch 3) side by side, 3 × 3 cells each.
    let att = report.figure("attention-stage2.png").unwrap();
    assert_eq!(att.cells.len(), 2 * 3 * 3);
    let img = png(att);
    let half = half_cell(att);
    for cell in &att.cells {
        let (after, row) = (cell.row >= 3, cell.row % 3);
        // Stage 2 is blocks 3, 4, 5; block 4 is skipped after the first decision.
        let expected = if after {
            match (row, cell.col) {
                (0, 0) => Some(1.0),
                (2, 0) | (2, 2) => Some(0.5),
                _ => None,
            }
        } else if cell.col <= row {
            Some(1.0 / (row + 1) as f64)
        } else {
            None
        };
        assert_eq!(
            cell.value,
            expected,
            "{} cell {row}×{}",
            if after { "after" } else { "before" },
            cell.col
        );
        let probe = (cell.pixel.0, cell.pixel.1 - half.1 / 2);
        let want = cell.value.map_or(GREY, |v| heat_rgb(v, (0.0, 1.0)));
        assert_eq!(pixel(&img, probe), want);
    }

    let md = std::fs::read_to_string(&report.markdown).unwrap();
    for name in &names {
        assert!(md.contains(&format!("]({name})")), "{name} not linked");
    }
    assert!(
        md.contains("| run-ela | ela | 29 | mnist | 7 | 3 | 91.00 | 92.00 | 8.3 | 4, 8 |"),
        "{md}"
    );
    assert!(md.contains("| 1–1 | 30 | 0.4000 | [4] | [4] |"), "{md}");
    assert!(md.contains("| 2–2 | 30 | 0.4000 | [8] | [4, 8] |"), "{md}");
}

#[test]
fn several_runs_are_compared_in_one_report() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = [ela_run(tmp.path()), plain_run(tmp.path())]
        .iter()
        .map(|d| Run::load(d).unwrap())
        .collect::<Vec<_>>();
    let report = write_report(&runs, &tmp.path().join("cmp")).unwrap();
    assert!(report.figure("1-run-ela-kl.png").is_some());
    assert!(report.figure("2-run-none-curves.png").is_some());
    assert!(
        report.figure("2-run-none-kl.png").is_none(),
        "a plain run has no decisions"
    );
    let md = std::fs::read_to_string(&report.markdown).unwrap();
    assert!(
        md.contains("| run-none | none | 29 | mnist | 7 | 2 | 85.50 | 85.50 | 5.0 | - |"),
        "{md}"
    );
    assert!(md.contains("| run-ela |"));
}

#[test]
fn broken_run_directories_are_named_with_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let err = format!("{:#}", Run::load(tmp.path()).unwrap_err());
    assert!(
        err.contains("config.json") && err.contains("holds no run"),
        "{err}"
    );

    let dir = ela_run(tmp.path());
    let csv = dir.join("metrics.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&csv, text.replacen("0.1,", "zero,", 1)).unwrap();
    let err = format!("{:#}", Run::load(&dir).unwrap_err());
    assert!(
        err.contains("metrics.csv") && err.contains("line 2") && err.contains("'zero'"),
        "{err}"
    );

    std::fs::write(
        &csv,
        text.lines()
            .take(2)
            .map(|l| format!("{l},extra\n"))
            .collect::<String>(),
    )
    .unwrap();
    let err = format!("{:#}", Run::load(&dir).unwrap_err());
    assert!(
        err.contains("line 1 is not the metrics header") || err.contains("fields"),
        "{err}"
    );

    std::fs::write(&csv, &text).unwrap();
    std::fs::write(dir.join("attention.json"), b"[{\"epoch\": 1").unwrap();
    let err = format!("{:#}", Run::load(&dir).unwrap_err());
    assert!(
        err.contains("attention.json") && err.contains("not a valid attention log"),
        "{err}"
    );
}

/// A detection run of `detector` (`faster-rcnn` or `mask-rcnn`): 2 epochs whose box AP is `ap`
/// then twice it (the mask AP half the box AP), as the detection task records them.
fn detection_run(root: &Path, name: &str, detector: &str, ap: f64) -> std::path::PathBuf {
    let dir = root.join(name);
    let mut run = RunDir::create(&dir).unwrap();
    write_json(
        &dir.join("config.json"),
        &serde_json::json!({"task": "detect", "detector": detector, "attention": "mrla-b",
            "ela": true, "depth": 18, "dataset": "digits", "seed": 3, "epochs": 2, "lr": 0.02,
            "batch_size": 4}),
    )
    .unwrap();
    let keys = [
        "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
    ];
    for epoch in 1..=2 {
        let ap = ap * epoch as f64;
        let mut values = vec![
            ela_records::Value::new("loss", 3.0 / epoch as f64),
            ela_records::Value::new("loss_rpn_cls", 0.7),
            ela_records::Value::new("loss_rpn_bbox", 0.05),
            ela_records::Value::new("loss_cls", 1.5 / epoch as f64),
            ela_records::Value::new("loss_bbox", 0.3),
        ];
        let mut prefixes = vec![("", ap)];
        if detector == "mask-rcnn" {
            values.push(ela_records::Value::new("loss_mask", 0.45));
            prefixes.push(("segm_", ap / 2.0));
        }
        for (prefix, ap) in prefixes {
            values.extend(keys.iter().enumerate().map(|(k, key)| {
                let v = if k == 1 { 2.0 * ap } else { ap };
                ela_records::Value::new(format!("{prefix}{key}"), v)
            }));
        }
        run.record_epoch(EpochRecord {
            epoch,
            lr: 0.02,
            values,
            train_seconds: 4.0,
            epoch_seconds: 5.0,
            skipped: vec![],
        })
        .unwrap();
    }
    dir
}

/// Detection runs get the detection report, alone or compared side by side; runs of two tasks
/// cannot be compared.
#[test]
fn detection_runs_are_reported_and_compared_and_tasks_are_not_mixed() {
    let tmp = tempfile::tempdir().unwrap();
    let mask = detection_run(tmp.path(), "mask", "mask-rcnn", 0.1);
    let faster = detection_run(tmp.path(), "faster", "faster-rcnn", 0.05);
    let one = write_report(&[Run::load(&mask).unwrap()], &tmp.path().join("one")).unwrap();
    assert!(one.figure("curves.png").is_some());
    let md = std::fs::read_to_string(&one.markdown).unwrap();
    assert!(
        md.contains("Mask R-CNN R-18 FPN, backbone attention ela")
            && md.contains("Boxes:")
            && md.contains("Masks:"),
        "{md}"
    );
    // Box AP 20%, AP50 40%, mask AP 10% at the last epoch.
    assert!(
        md.contains(
            "| mask | ela | 18 | digits | 3 | 2 | 20.00 | 40.00 | 10.00 | 20.00 | 4.0 | - |"
        ),
        "{md}"
    );

    let runs = [Run::load(&mask).unwrap(), Run::load(&faster).unwrap()];
    let both = write_report(&runs, &tmp.path().join("both")).unwrap();
    assert!(
        both.figure("1-mask-curves.png").is_some() && both.figure("2-faster-curves.png").is_some()
    );
    let md = std::fs::read_to_string(&both.markdown).unwrap();
    assert!(
        md.contains("| box AP (%) | box AP50 (%) | mask AP (%) | best box AP (%) |"),
        "{md}"
    );
    assert!(
        md.contains("| faster | ela | 18 | digits | 3 | 2 | 10.00 | 20.00 | - | 10.00 | 4.0 | - |"),
        "{md}"
    );

    let mixed = [
        Run::load(&mask).unwrap(),
        Run::load(&ela_run(tmp.path())).unwrap(),
    ];
    let err = format!(
        "{:#}",
        write_report(&mixed, &tmp.path().join("mixed")).unwrap_err()
    );
    assert!(
        err.contains("runs of different tasks cannot be compared") && err.contains("a detect run"),
        "{err}"
    );
}

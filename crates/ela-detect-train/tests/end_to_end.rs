//! A real, small detection run on the offline digit set, on the CPU backend, in a tempdir: the
//! ELA Mask R-CNN must learn boxes and masks (AP50 well above the untrained model's), record its
//! pruning decisions, and leave a run directory that `resume` and inference read back.

use clap::Parser;
use ela_detect::IouType;
use ela_detect_train::data::DetectData;
use ela_detect_train::evaluate::{detect_split, score};
use ela_detect_train::infer::TrainedDetector;
use ela_detect_train::{DetectTrainArgs, DetectionModel, resume, train};
use ela_records::read_metrics;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: DetectTrainArgs,
}

#[test]
fn digit_detector_learns_prunes_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let data = dir.path().join("digits");
    let argv = [
        "ela",
        "--detector",
        "mask-rcnn",
        "--data-dir",
        data.to_str().unwrap(),
        "--limit-train",
        "240",
        "--limit-val",
        "60",
        "--epochs",
        "3",
        "--windows",
        "1,2",
        "--prune-method",
        "fixed",
        "--k",
        "1",
        "--out",
        out.to_str().unwrap(),
    ];
    let args = Cli::try_parse_from(argv).unwrap().args;

    // The untrained detector's score, from the same initialization.
    let config = args.resolve().unwrap();
    let digits = DetectData::open(&config).unwrap();
    let detector = config.detector(digits.train.num_classes()).unwrap();
    let device = burn::tensor::Device::flex();
    device.seed(config.seed);
    let ids = digits.train.instances.category_ids();
    let untrained = DetectionModel::new(detector.init(&device).unwrap(), ids);
    let results = detect_split(
        &untrained,
        &digits.pipeline,
        &digits.val,
        4,
        &device,
        &mut |_, _| {},
    )
    .unwrap();
    let untrained_file = dir.path().join("untrained.json");
    let before = score(&digits.val, &results, &untrained_file, IouType::Bbox).unwrap();
    let before_segm = score(&digits.val, &results, &untrained_file, IouType::Segm).unwrap();

    let summary = train(&args).unwrap();
    let epochs = read_metrics(&out.join("metrics.csv")).unwrap();
    let last = epochs.last().unwrap();
    let ap50 = last.get("AP50").unwrap();
    println!(
        "AP50 untrained {:.4}, after {} epochs {ap50:.4} (AP {:.4})",
        before.ap50,
        last.epoch,
        last.value("AP")
    );
    assert!(
        ap50 > 0.04 && ap50 > 4.0 * before.ap50,
        "AP50 {ap50:.4} after training, {:.4} untrained",
        before.ap50
    );
    let logged = summary.get("AP50").unwrap();
    assert!(
        (logged - ap50).abs() < 1e-6,
        "the summary holds the last epoch: {logged} against metrics.csv's {ap50}"
    );
    let segm50 = last.get("segm_AP50").expect("Mask R-CNN runs score masks");
    println!(
        "mask AP50 untrained {:.4}, after training {segm50:.4} (AP {:.4})",
        before_segm.ap50,
        last.value("segm_AP")
    );
    // Three epochs from scratch on 240 canvases: the masks are starting to be learned (1.4%
    // mask AP50 with seed 42; the untrained detector's are 0).
    assert!(
        segm50 > 0.01 && segm50 > 4.0 * before_segm.ap50,
        "mask AP50 {segm50:.4} after training, {:.4} untrained",
        before_segm.ap50
    );
    // Losses fell, the mask loss among them.
    assert!(epochs[2].value("loss") < epochs[0].value("loss"));
    assert!(epochs[2].value("loss_mask") < 0.5 * epochs[0].value("loss_mask"));

    // Pruning: a decision at the end of epochs 1 and 2, one more block skipped each time.
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("pruning.json")).unwrap()).unwrap();
    let windows = record["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 2);
    let skipped = |w: &serde_json::Value| {
        w["mask"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b.as_bool().unwrap())
            .count()
    };
    assert_eq!((skipped(&windows[0]), skipped(&windows[1])), (1, 2));
    assert_eq!(summary.skipped.len(), 2);

    // The run directory: records, per-epoch COCO statistics, checkpoints of the last two epochs.
    for f in [
        "config.json",
        "classes.json",
        "metrics.csv",
        "coco.json",
        "model.bpk",
        "val_detections.json",
        "summary.json",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    let ckpt = out.join("checkpoint");
    assert!(ckpt.join("state-3.json").exists() && ckpt.join("model-2.bpk").exists());
    assert!(!ckpt.join("model-1.bpk").exists(), "two checkpoints kept");

    // Inference from the run directory reproduces the last evaluation's detections (one image
    // alone instead of a batch of four: the best ones agree to a fraction of a pixel; one near
    // the score threshold may come or go).
    let trained = TrainedDetector::load(&out, &device).unwrap();
    let first = &digits.val.images[0];
    let image = digits.val.image_dir.join(&first.file_name);
    let (_, dets) = trained.detect_file(&image, first.id, &device).unwrap();
    let logged: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(out.join("val_detections.json")).unwrap())
            .unwrap();
    let logged: Vec<&serde_json::Value> = logged
        .iter()
        .filter(|d| d["image_id"].as_u64() == Some(first.id))
        .collect();
    assert!(
        dets.len().abs_diff(logged.len()) <= 2,
        "{} against {}",
        dets.len(),
        logged.len()
    );
    for (ours, theirs) in dets.iter().zip(&logged).take(5) {
        assert_eq!(Some(ours.category_id), theirs["category_id"].as_u64());
        let rle = ours.segmentation.as_ref().expect("a mask per detection");
        assert_eq!(rle.size, [first.height, first.width]);
        let same_box = (0..4)
            .all(|k| (f64::from(ours.bbox[k]) - theirs["bbox"][k].as_f64().unwrap()).abs() < 1e-2);
        if same_box {
            // The same box and probabilities paste the same mask.
            assert_eq!(
                Some(rle.counts.as_str()),
                theirs["segmentation"]["counts"].as_str()
            );
        }
        for k in 0..4 {
            let v = theirs["bbox"][k].as_f64().unwrap() as f32;
            assert!(
                (ours.bbox[k] - v).abs() < 0.5,
                "{:?} against {}",
                ours.bbox,
                theirs["bbox"]
            );
        }
    }

    // `ela eval`'s evaluation of the final weights on the run's validation split reproduces the
    // statistics the run logged for its last epoch, and the detections it scored.
    let split = ela_detect_train::eval::open_split(&data, Some(60)).unwrap();
    let scored = dir.path().join("eval.json");
    let scores =
        ela_detect_train::eval::evaluate(&trained, &split, 4, &device, &scored, &mut |_, _| {})
            .unwrap();
    let coco: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(out.join("coco.json")).unwrap()).unwrap();
    let logged = &coco.last().unwrap();
    assert_eq!(
        serde_json::to_value(scores.bbox).unwrap(),
        logged["bbox"],
        "box statistics"
    );
    assert_eq!(
        serde_json::to_value(scores.segm.unwrap()).unwrap(),
        logged["segm"],
        "mask statistics"
    );
    assert_eq!(
        std::fs::read(&scored).unwrap(),
        std::fs::read(out.join("val_detections.json")).unwrap(),
        "the detections scored"
    );

    // The run's report: curves, the statistics table, the pruning decisions.
    let run = ela_report::Run::load(&out).unwrap();
    let report = ela_report::write_report(&[run], &out.join("report")).unwrap();
    for name in ["curves.png", "kl.png"] {
        assert!(report.figure(name).is_some(), "{name}");
    }
    let md = std::fs::read_to_string(&report.markdown).unwrap();
    assert!(
        md.contains("| 3 | ") && md.contains("AP50") && md.contains("Masks:"),
        "{md}"
    );

    // A finished run has nothing to resume.
    let err = format!("{:#}", resume(&out, None).unwrap_err());
    assert!(err.contains("already finished all 3 epochs"), "{err}");
}

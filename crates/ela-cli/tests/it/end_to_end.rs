//! A real, small ELA training run on the embedded MNIST sample, on the CPU backend, in a
//! tempdir: it must learn, prune at its window ends, and leave a complete run directory.

use clap::Parser;
use ela_cli::training::{self, Launch};
use ela_records::PruningRecord;
use ela_train::classify::TrainConfig;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    config: TrainConfig,
}

fn config(args: &[&str]) -> TrainConfig {
    let mut argv = vec!["ela"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).unwrap().config
}

#[test]
fn ela_learns_mnist_and_records_its_pruning_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_str = out.to_str().unwrap();
    // ResNet-29: three blocks per stage, so each stage has two scored blocks and EBQM has
    // candidates to choose from. Windows at epochs 1 and 2; epoch 3 trains with the mask.
    let cfg = config(&[
        "--depth",
        "29",
        "--epochs",
        "3",
        "--batch-size",
        "32",
        "--limit-train",
        "960",
        "--limit-test",
        "500",
        "--windows",
        "1,2",
        "--prune-method",
        "fixed",
        "--k",
        "1",
        "--out",
        out_str,
    ]);
    let finished = training::run(&Launch::Classify(Box::new(cfg)), false).unwrap();
    let summary = &finished.summary;

    // Real learning: chance is 10%.
    let accuracy = summary.get("test_acc").unwrap();
    assert!(
        accuracy > 60.0,
        "test accuracy {accuracy:.2}% after 3 epochs"
    );

    // The pruning record: one entry per window, scores for exactly the active non-first
    // blocks, one block skipped per decision (fixed k = 1), a cumulative mask.
    let text = std::fs::read_to_string(out.join("pruning.json")).unwrap();
    let record: PruningRecord = serde_json::from_str(&text).unwrap();
    assert_eq!(record.blocks_per_stage, vec![3, 3, 3]);
    assert_eq!(record.windows.len(), 2);
    let first = &record.windows[0];
    assert_eq!((first.start, first.end), (1, 1));
    assert_eq!(
        first.batches, 30,
        "every batch of the window epoch is averaged"
    );
    for b in &first.blocks {
        assert_eq!(b.kl.is_some(), b.position != 0, "block {}", b.index);
        if let Some(kl) = b.kl {
            assert!(kl.is_finite() && kl >= 0.0, "block {}: {kl}", b.index);
        }
    }
    assert_eq!(first.newly_skipped.len(), 1);
    let second = &record.windows[1];
    assert_eq!(second.newly_skipped.len(), 1);
    let first_skip = first.newly_skipped[0];
    assert!(
        second.blocks[first_skip].kl.is_none(),
        "a skipped block is no longer scored"
    );
    assert!(second.mask[first_skip], "skips are cumulative");
    assert_eq!(second.mask.iter().filter(|&&s| s).count(), 2);
    assert_eq!(record.final_mask, second.mask);
    let mut skipped = summary.skipped.clone();
    skipped.sort_unstable();
    let mut expected: Vec<usize> = vec![first_skip, second.newly_skipped[0]];
    expected.sort_unstable();
    assert_eq!(
        skipped, expected,
        "the trained model carries the final mask"
    );

    // The rest of the run directory.
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 4, "header + 3 epochs:\n{csv}");
    assert!(rows[0].starts_with("epoch,lr,train_loss"));
    assert!(
        rows[1].ends_with(",0,"),
        "nothing skipped in epoch 1: {}",
        rows[1]
    );
    assert!(
        rows[3].contains(",2,"),
        "two blocks skipped in epoch 3: {}",
        rows[3]
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["seed"], 42);
    assert_eq!(config["depth"], 29);
    assert!(config["git_revision"].is_string());
    let meta = ela_model::weights::read_metadata(&out.join("model.safetensors")).unwrap();
    let flags: Vec<bool> =
        serde_json::from_str(&meta[ela_model::weights::META_SKIP_FLAGS]).unwrap();
    assert_eq!(
        flags, record.final_mask,
        "the saved weights carry the skip flags"
    );

    // Attention maps: one validation pass per epoch, each attending block's row a
    // distribution over exactly the blocks in its memory (full mode: skipped blocks are not).
    let maps = ela_records::read_attention(&out.join("attention.json")).unwrap();
    assert_eq!(
        maps.iter().map(|m| m.epoch).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(
        maps[0].skipped.is_empty(),
        "epoch 1 validates before any decision"
    );
    assert_eq!(maps[2].skipped, summary.skipped);
    for map in &maps {
        let mut index = 0;
        for stage in &map.stages {
            assert_eq!(stage.len(), 3);
            for (p, row) in stage.iter().enumerate() {
                let skipped = map.skipped.contains(&index);
                assert_eq!(row.is_none(), skipped, "epoch {} block {index}", map.epoch);
                if let Some(row) = row {
                    let sum: f64 = row.iter().flatten().sum();
                    assert!(
                        (sum - 1.0).abs() < 1e-4,
                        "block {index}: weights sum to {sum}"
                    );
                    for (j, w) in row.iter().enumerate() {
                        let in_memory = j <= p && !map.skipped.contains(&(index - p + j));
                        assert_eq!(w.is_some(), in_memory, "block {index}, column {j}");
                    }
                }
                index += 1;
            }
        }
    }

    // The report, written at the end of the run.
    let report = finished.report.expect("a report was written");
    let md = std::fs::read_to_string(&report).unwrap();
    for figure in ["curves.png", "kl.png", "attention-stage1.png"] {
        assert!(
            md.contains(&format!("]({figure})")),
            "{figure} missing from:\n{md}"
        );
        assert!(report.with_file_name(figure).is_file(), "{figure}");
    }
    // Fixed pruning neither normalizes nor maps: no mapping figure.
    assert!(!report.with_file_name("mapping.png").exists());
}

//! Every checked-in experiment config parses into a valid training configuration, and for the
//! paper's tables its model has the parameter count the paper prints (within 0.01M, the
//! paper's rounding).

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use clap::Parser;
use ela_train::classify::{DatasetName, TrainConfig};

#[derive(Parser)]
#[command(args_override_self = true)]
struct Cli {
    #[command(flatten)]
    config: TrainConfig,
}

fn experiments_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../../experiments")
}

fn configs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            configs(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

#[test]
fn experiment_configs_are_valid_and_match_the_papers_parameter_counts() {
    let mut files = Vec::new();
    configs(&experiments_dir(), &mut files);
    files.sort();
    let table1 = files
        .iter()
        .filter(|f| f.to_string_lossy().contains("table1"))
        .count();
    assert_eq!(table1, 48, "Table 1: 2 datasets x 3 depths x 8 models");
    let device = Device::flex();
    for file in &files {
        let name = file.display();
        let text = std::fs::read_to_string(file).unwrap();
        // Detection configs (Table 5, `task = "detect"`) are `ela train --task detect` flags:
        // ela-cli's `tests/it/reproduce.rs` checks them.
        let table: toml::Table = text.parse().unwrap();
        if table.get("task").and_then(|t| t.as_str()) == Some("detect") {
            continue;
        }
        let mut argv = vec!["ela".to_string()];
        argv.extend(ela_train::config::flags_of(file, &text).unwrap());
        let config = Cli::try_parse_from(&argv)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .config;
        let config = config.resolve().unwrap_or_else(|e| panic!("{name}: {e:#}"));

        let table: toml::Table = text.parse().unwrap();
        let Some(paper) = table.get("paper").and_then(|p| p.as_table()) else {
            continue;
        };
        let Some(params) = paper.get("params").and_then(|p| p.as_str()) else {
            continue;
        };
        let millions: f64 = params.trim_end_matches('M').parse().unwrap();
        let classes = match config.dataset {
            DatasetName::Cifar10 | DatasetName::Mnist => 10,
            DatasetName::Cifar100 => 100,
            DatasetName::Imagenet => 1000,
        };
        let model = config.model_config(classes, 3).init(&device).unwrap();
        let got = model.parameter_count() as f64 / 1e6;
        assert!(
            (got - millions).abs() <= 0.0101,
            "{name}: {got:.4}M parameters, the paper prints {params}"
        );
    }
}

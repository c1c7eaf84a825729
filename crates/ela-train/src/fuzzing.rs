//! Properties of the input parsers, shared by the fuzz targets (`fuzz/`, `cargo fuzz run …`)
//! and by the test that replays their kept corpus (`tests/fuzz_corpus.rs`). Each function takes
//! arbitrary bytes and panics only if a parser breaks its contract: parsers return errors that
//! name the file, never panic, and what they accept is self-consistent.

use std::path::Path;

use ela_data::cifar::{CifarKind, IMAGE_BYTES, parse_records};
use ela_data::dataset::parse_idx;

/// The fuzz targets, by name (`fuzz/fuzz_targets/<name>.rs`, `fuzz/corpus/<name>/`).
pub const TARGETS: [&str; 5] = ["idx", "cifar", "kl_log", "metrics", "config"];

/// Runs target `name` on `data`.
///
/// # Panics
/// On an unknown target name, or where a parser breaks its contract.
pub fn check(name: &str, data: &[u8]) {
    match name {
        "idx" => idx(data),
        "cifar" => cifar(data),
        "kl_log" => kl_log(data),
        "metrics" => metrics(data),
        "config" => config(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

/// IDX (raw or gzip): the first byte picks the expected number of dimensions (1–3).
pub fn idx(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let ndim = 1 + first % 3;
    let path = Path::new("fuzz.idx");
    match parse_idx(path, rest, ndim) {
        Ok((dims, bytes)) => {
            assert_eq!(dims.len(), ndim as usize);
            assert_eq!(dims.iter().product::<usize>(), bytes.len());
        }
        Err(err) => assert!(err.to_string().contains("fuzz.idx"), "{err}"),
    }
}

/// CIFAR binary records, as CIFAR-10 and as CIFAR-100 (fine and coarse labels).
pub fn cifar(data: &[u8]) {
    let path = Path::new("fuzz.bin");
    for kind in [
        CifarKind::Cifar10,
        CifarKind::Cifar100,
        CifarKind::Cifar100Coarse,
    ] {
        match parse_records(path, data, kind) {
            Ok((pixels, labels)) => {
                assert_eq!(pixels.len(), labels.len() * IMAGE_BYTES);
                assert!(labels.iter().all(|&l| (l as usize) < kind.num_classes()));
            }
            Err(err) => assert!(err.to_string().contains("fuzz.bin"), "{err}"),
        }
    }
}

/// KL logs (`prune-plan`'s input): a JSON array or a `pruning.json`, each window asked for.
pub fn kl_log(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("fuzz.json");
    for window in [None, Some(0), Some(1), Some(2)] {
        match ela_records::parse_kl_log(path, &text, window) {
            Ok(scores) => assert!(scores.iter().flatten().all(|s| !s.is_nan())),
            Err(err) => assert!(format!("{err:#}").contains("fuzz.json"), "{err:#}"),
        }
    }
}

/// `metrics.csv` as `ela report` reads it.
pub fn metrics(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(rows) = ela_records::parse_metrics(&text) {
        assert_eq!(rows.len(), text.lines().count() - 1);
    }
}

/// `--config FILE.toml` files.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("fuzz.toml");
    match crate::config::flags_of(path, &text) {
        Ok(flags) => assert!(
            flags.iter().all(|f| f.starts_with("--") && f.contains('=')),
            "one --key=value token per key: {flags:?}"
        ),
        Err(err) => assert!(format!("{err:#}").contains("fuzz.toml"), "{err:#}"),
    }
}

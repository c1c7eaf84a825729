//! Replays the kept fuzz corpus (`fuzz/corpus/<target>/`, grown by `cargo fuzz run <target>`)
//! through the same property checks the fuzz targets run, on the stable toolchain: an input
//! that once made a parser panic or break its contract stays a regression test.

use std::path::PathBuf;

use ela_train::fuzzing::{TARGETS, check};

#[test]
fn every_kept_fuzz_input_passes_its_parsers_checks() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut replayed = 0;
    for target in TARGETS {
        let dir = root.join(target);
        let mut inputs = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(target, &data));
            assert!(
                outcome.is_ok(),
                "{target}: {} breaks the parser",
                path.display()
            );
            inputs += 1;
        }
        assert!(
            inputs >= 2,
            "{target}: the corpus at {} is missing",
            dir.display()
        );
        replayed += inputs;
    }
    assert!(replayed >= 14);
}

#[test]
fn the_corpus_reaches_the_parsers_success_paths() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let inputs = |target: &str| -> Vec<Vec<u8>> {
        std::fs::read_dir(root.join(target))
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect()
    };
    let path = std::path::Path::new("corpus");
    let idx_ok = inputs("idx")
        .iter()
        .filter(|d| {
            d.split_first().is_some_and(|(&first, rest)| {
                ela_data::dataset::parse_idx(path, rest, 1 + first % 3).is_ok()
            })
        })
        .count();
    assert!(idx_ok >= 2, "only {idx_ok} IDX inputs parse");
    let cifar_ok = inputs("cifar")
        .iter()
        .filter(|d| {
            ela_data::cifar::parse_records(path, d, ela_data::cifar::CifarKind::Cifar100).is_ok()
        })
        .count();
    assert!(cifar_ok >= 1, "no CIFAR-100 input parses");
    assert!(std::panic::catch_unwind(|| check("nope", b"")).is_err());
}

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
fn the_seed_inputs_reach_the_parsers_success_paths() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let seed = std::fs::read(root.join("idx/images-gz")).unwrap();
    let (dims, data) =
        ela_train::data::parse_idx(std::path::Path::new("seed"), &seed[1..], 3).unwrap();
    assert_eq!((dims, data.len()), (vec![2, 3, 3], 18));
    let seed = std::fs::read(root.join("cifar/c100-two")).unwrap();
    let (_, labels) = ela_train::cifar::parse_records(
        std::path::Path::new("seed"),
        &seed,
        ela_train::cifar::CifarKind::Cifar100,
    )
    .unwrap();
    assert_eq!(labels, vec![42, 99]);
    assert!(std::panic::catch_unwind(|| check("nope", b"")).is_err());
}

#![no_main]
//! `cargo fuzz run metrics`: see `ela_train::fuzzing::metrics`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ela_train::fuzzing::metrics(data));

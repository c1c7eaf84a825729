#![no_main]
//! `cargo fuzz run idx`: see `ela_train::fuzzing::idx`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ela_train::fuzzing::idx(data));

#![no_main]
//! `cargo fuzz run config`: see `ela_train::fuzzing::config`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ela_train::fuzzing::config(data));

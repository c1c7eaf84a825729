#![no_main]
//! `cargo fuzz run cifar`: see `ela_train::fuzzing::cifar`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ela_train::fuzzing::cifar(data));

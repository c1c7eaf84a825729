#![no_main]
//! `cargo fuzz run kl_log`: see `ela_train::fuzzing::kl_log`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ela_train::fuzzing::kl_log(data));

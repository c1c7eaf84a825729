//! Helpers shared by the tests that compare with the NumPy fixtures.
#![allow(dead_code)] // each test binary uses a subset

use std::path::PathBuf;

/// A file under `tests/fixtures`, located at run time: a test binary reused from a shared target
/// directory may have been compiled in another checkout.
pub fn fixture(name: &str) -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("tests/fixtures")
        .join(name)
}

/// An f32 tensor of a safetensors file: its values and shape.
pub fn read_f32(st: &safetensors::SafeTensors, name: &str) -> (Vec<f32>, Vec<usize>) {
    let view = st
        .tensor(name)
        .unwrap_or_else(|e| panic!("fixture tensor {name}: {e}"));
    let values = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (values, view.shape().to_vec())
}

/// Asserts that `got` equals `want` within `rel` of the largest expected magnitude (plus
/// `abs`), printing both on failure.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], rel: f32, abs: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = got
        .iter()
        .zip(want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        diff <= rel * scale + abs,
        "{what}: max |diff| {diff} (largest expected {scale})\n got  {got:?}\n want {want:?}"
    );
}

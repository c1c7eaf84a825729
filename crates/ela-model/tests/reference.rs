//! The model against an independent NumPy implementation of SPEC §1–3 (eval mode).
//!
//! `fixtures/make_reference.py` (the generating script, run once) draws random weights with
//! PyTorch state-dict names, including non-trivial BatchNorm running statistics, and computes
//! the logits of a ResNet-29 (three blocks per stage) with MRLA-B, with ELA skips of the middle
//! blocks of stages 1 and 2 in both skip modes, and with MRLA-L. Loading the weights strictly
//! also checks the PyTorch naming of every parameter.

mod common;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use common::{assert_close, fixture, read_f32};
use ela_model::{AttentionKind, ElaResNet, ElaResNetConfig, SkipMode};

fn io_tensor(name: &str) -> (Vec<f32>, Vec<usize>) {
    let bytes = std::fs::read(fixture("reference_io.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    read_f32(&st, name)
}

fn load(attention: AttentionKind, file: &str, device: &Device) -> ElaResNet {
    let mut model = ElaResNetConfig::new(29, 10)
        .with_attention(attention)
        .init(device)
        .unwrap();
    let report = model.load_safetensors(&fixture(file), true).unwrap();
    assert!(report.missing.is_empty() && report.unused.is_empty());
    model.valid()
}

fn assert_logits(model: &ElaResNet, expected: &str, device: &Device) {
    let (x, shape) = io_tensor("input");
    let input = Tensor::<4>::from_data(
        TensorData::new(x, [shape[0], shape[1], shape[2], shape[3]]),
        device,
    );
    let got: Vec<f32> = model.forward(input).into_data().try_to_vec().unwrap();
    let (want, _) = io_tensor(expected);
    // f32 against a float64 reference through 29 layers: relative 1e-4 of the largest logit.
    assert_close(expected, &got, &want, 1e-4, 1e-4);
}

#[test]
fn mrla_b_matches_the_numpy_reference() {
    let device = Device::flex();
    let model = load(AttentionKind::MrlaB, "mrla_b_r29.safetensors", &device);
    assert_logits(&model, "mrla_b", &device);
}

#[test]
fn ela_skips_match_the_numpy_reference_in_both_modes() {
    let device = Device::flex();
    let model = load(AttentionKind::MrlaB, "mrla_b_r29.safetensors", &device);
    let mut flags = vec![false; 9];
    flags[1] = true;
    flags[4] = true;
    model.set_skip_flags(&flags).unwrap();
    assert_logits(&model, "ela_full", &device);
    let retrieval = model.with_skip_mode(SkipMode::Retrieval);
    assert_logits(&retrieval, "ela_retrieval", &device);
}

#[test]
fn mrla_l_matches_the_numpy_reference() {
    let device = Device::flex();
    let model = load(AttentionKind::MrlaL, "mrla_l_r29.safetensors", &device);
    assert_logits(&model, "mrla_l", &device);
}

//! Safetensors export/import with PyTorch names, and skip flags travelling with the weights.

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use ela_model::weights::{META_CONFIG, read_metadata};
use ela_model::{AttentionKind, ElaResNetConfig};

#[test]
fn export_uses_pytorch_names_and_round_trips_exactly() {
    let device = Device::flex();
    device.seed(3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    for kind in [AttentionKind::MrlaB, AttentionKind::MrlaL] {
        let cfg = ElaResNetConfig::new(20, 10).with_attention(kind);
        let m = cfg.init(&device).unwrap();
        if kind == AttentionKind::MrlaB {
            m.set_skip_flags(&[false, true, false, false, false, true])
                .unwrap();
        }
        m.save_safetensors(&path).unwrap();

        let bytes = std::fs::read(&path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let names: Vec<String> = st.names().into_iter().map(String::from).collect();
        let mut expected = vec![
            "conv1.weight",
            "bn1.weight",
            "bn1.bias",
            "bn1.running_mean",
            "bn1.running_var",
            "layer1.0.conv1.weight",
            "layer1.0.downsample.0.weight",
            "layer1.0.downsample.1.weight",
            "layer1.0.downsample.1.running_var",
            "layer1.0.mrla.Wq.weight",
            "layer1.0.mrla.Wk.weight",
            "layer1.0.mrla.Wv.weight",
            "layer1.0.bn_mrla.weight",
            "layer3.1.bn3.bias",
            "fc.weight",
            "fc.bias",
        ];
        if kind == AttentionKind::MrlaL {
            expected.push("layer2.1.mrla.lambda_t");
        }
        for name in expected {
            assert!(
                names.iter().any(|n| n == name),
                "{kind}: missing {name} in {names:?}"
            );
        }
        assert!(
            !names
                .iter()
                .any(|n| n.contains("gamma") || n.contains(".conv."))
        );
        // PyTorch layout of the linear head: [out, in].
        assert_eq!(st.tensor("fc.weight").unwrap().shape(), &[10, 256]);
        assert_eq!(
            st.tensor("layer1.0.mrla.Wq.weight").unwrap().shape(),
            &[1, 1, 3]
        );
        assert_eq!(
            st.tensor("layer1.0.mrla.Wv.weight").unwrap().shape(),
            &[64, 1, 3, 3]
        );
        let meta = read_metadata(&path).unwrap();
        assert!(meta[META_CONFIG].contains(kind.name()));

        device.seed(99);
        let mut fresh = cfg.init(&device).unwrap();
        let report = fresh.load_safetensors(&path, true).unwrap();
        assert!(report.missing.is_empty() && report.unused.is_empty());
        assert_eq!(
            fresh.skip_flags(),
            m.skip_flags(),
            "skip flags travel with the weights"
        );
        let x = Tensor::<4>::random([2, 3, 8, 8], Distribution::Normal(0.0, 1.0), &device);
        let a = m.valid().forward(x.clone());
        let b = fresh.valid().forward(x);
        let diff: f32 = (a - b).abs().max().into_scalar();
        assert_eq!(diff, 0.0, "{kind}");
    }
}

#[test]
fn mismatched_architecture_is_a_clear_error() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.safetensors");
    ElaResNetConfig::new(20, 10)
        .init(&device)
        .unwrap()
        .save_safetensors(&path)
        .unwrap();
    let mut mrla = ElaResNetConfig::new(20, 10)
        .with_attention(AttentionKind::MrlaB)
        .init(&device)
        .unwrap();
    let err = mrla.load_safetensors(&path, true).unwrap_err().to_string();
    assert!(
        err.contains("plain.safetensors") && err.contains("missing"),
        "{err}"
    );
    let mut deeper = ElaResNetConfig::new(20, 100).init(&device).unwrap();
    let err = deeper
        .load_safetensors(&path, true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("plain.safetensors"), "{err}");
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a safetensors file").unwrap();
    let err = deeper
        .load_safetensors(&garbage, true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("garbage.safetensors"), "{err}");
}

/// Re-encodes every F32 tensor of the safetensors file `from` as `dtype` (F16 or F64) into
/// `to`, the metadata kept; with `only`, just that tensor.
fn reencode(
    from: &std::path::Path,
    to: &std::path::Path,
    dtype: safetensors::Dtype,
    only: Option<&str>,
) {
    let bytes = std::fs::read(from).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut data: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in st.tensors() {
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let convert = only.is_none_or(|o| o == name);
        let (dt, raw): (safetensors::Dtype, Vec<u8>) = match (convert, dtype) {
            (false, _) => (safetensors::Dtype::F32, view.data().to_vec()),
            (true, safetensors::Dtype::F16) => (
                dtype,
                values
                    .iter()
                    .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                    .collect(),
            ),
            (true, _) => (
                dtype,
                values
                    .iter()
                    .flat_map(|v| (*v as f64).to_le_bytes())
                    .collect(),
            ),
        };
        data.push((name, dt, view.shape().to_vec(), raw));
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = data
        .iter()
        .map(|(n, dt, shape, raw)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*dt, shape.clone(), raw).unwrap(),
            )
        })
        .collect();
    let out = safetensors::serialize(views, meta.metadata().clone()).unwrap();
    std::fs::write(to, out).unwrap();
}

/// A half-precision run's weights (all F16), an f64 export and a file with one F16 tensor load
/// into an f32 model, converted to its precision: the logits match the f32 original.
#[test]
fn weights_of_any_float_type_load_into_the_models_precision() {
    let device = Device::flex();
    device.seed(11);
    let dir = tempfile::tempdir().unwrap();
    let cfg = ElaResNetConfig::new(20, 10).with_attention(AttentionKind::MrlaB);
    let original = cfg.init(&device).unwrap();
    let f32_path = dir.path().join("f32.safetensors");
    original.save_safetensors(&f32_path).unwrap();
    let x = Tensor::<4>::random([2, 3, 16, 16], Distribution::Default, &device);
    let want: Vec<f32> = original
        .valid()
        .forward(x.clone())
        .into_data()
        .try_to_vec()
        .unwrap();
    for (label, dtype, only, tolerance) in [
        ("all f16", safetensors::Dtype::F16, None, 0.05),
        ("all f64", safetensors::Dtype::F64, None, 1e-5),
        (
            "one f16 tensor",
            safetensors::Dtype::F16,
            Some("layer2.0.conv2.weight"),
            0.05,
        ),
        (
            "one f64 tensor",
            safetensors::Dtype::F64,
            Some("fc.weight"),
            1e-5,
        ),
    ] {
        let path = dir.path().join("other.safetensors");
        reencode(&f32_path, &path, dtype, only);
        let mut model = cfg.init(&device).unwrap();
        model.load_safetensors(&path, true).unwrap();
        assert_eq!(
            model.fc.weight.val().dtype(),
            burn::tensor::DType::F32,
            "{label}"
        );
        let got: Vec<f32> = model
            .valid()
            .forward(x.clone())
            .into_data()
            .try_to_vec()
            .unwrap();
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = want
            .iter()
            .zip(&got)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            worst <= tolerance * scale.max(1.0),
            "{label}: |diff| {worst}"
        );
    }
}

/// Shape errors name the file's tensor and both shapes in PyTorch's layout, not Burn's fields.
#[test]
fn a_shape_mismatch_names_the_files_tensor_and_shapes() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ten.safetensors");
    let cfg = ElaResNetConfig::new(20, 10).with_attention(AttentionKind::MrlaB);
    cfg.init(&device).unwrap().save_safetensors(&path).unwrap();
    let mut hundred = ElaResNetConfig::new(20, 100)
        .with_attention(AttentionKind::MrlaB)
        .init(&device)
        .unwrap();
    let err = hundred
        .load_safetensors(&path, true)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "tensor `fc.weight` has shape [10, 256] in the file, the model's is [100, 256]"
        ),
        "{err}"
    );
    // A model with other attention: the file's names of what is unused, ours of what is missing.
    let mut plain = ElaResNetConfig::new(20, 10).init(&device).unwrap();
    let err = plain.load_safetensors(&path, true).unwrap_err().to_string();
    assert!(
        err.contains("layer1.0.mrla.Wq.weight") && err.contains("layer1.0.bn_mrla.weight"),
        "{err}"
    );
    assert!(!err.contains("gamma") && !err.contains(".wq."), "{err}");
}

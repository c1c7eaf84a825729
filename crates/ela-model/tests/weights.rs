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

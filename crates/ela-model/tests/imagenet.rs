//! ImageNet ResNets, the model registry and checkpoint import.
//!
//! - Parameter counts against torchvision and the official MRLA code.
//! - Parity: `fixtures/make_imagenet_parity.py` (the generating script, run once) builds
//!   torchvision's resnet18/resnet50 and the official resnet50_mrlab/resnet50_mrlal, sets every
//!   tensor by a formula of its state-dict name and element index, and records the eval-mode
//!   logits. Here the same values are written under the same names, loaded strictly through the
//!   checkpoint import, and the logits must agree.
//! - A `.pth.tar` checkpoint as the official training script writes it.
//! - Forward + backward of every registered variant.

mod common;

use std::collections::BTreeMap;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use common::{assert_close, fixture};
use ela_model::registry::{self, ModelEntry};
use ela_model::weights::LoadOptions;
use ela_model::{Arch, AttentionKind, ElaResNet, ElaResNetConfig};
use safetensors::{Dtype, tensor::TensorView};

fn build(name: &str, classes: usize, device: &Device) -> ElaResNet {
    registry::find(name)
        .unwrap()
        .config(classes)
        .init(device)
        .unwrap()
}

#[test]
fn parameter_counts_match_torchvision_and_the_official_code() {
    // torchvision: sum(p.numel() for p in torchvision.models.resnetN().parameters());
    // official: the same for ResNet_mrlab / ResNet_mrlal (resnet/models/resnet_mrla_{base,light}.py)
    // with layers [3,4,6,3], [3,4,23,3], [3,8,36,3] and 1000 classes.
    let device = Device::flex();
    let want = [
        ("resnet18", 11_689_512),
        ("resnet34", 21_797_672),
        ("resnet50", 25_557_032),
        ("resnet101", 44_549_160),
        ("resnet152", 60_192_808),
        ("resnet50_mrlab", 25_742_580),
        ("resnet50_mrlal", 25_738_452),
        ("resnet101_mrlab", 44_926_366),
        ("resnet101_mrlal", 44_939_646),
        ("resnet152_mrlab", 60_739_144),
        ("resnet152_mrlal", 60_767_784),
    ];
    for (name, count) in want {
        let model = build(name, 1000, &device);
        assert_eq!(model.parameter_count(), count, "{name}");
    }
}

/// Mirror of `formula` in `fixtures/make_imagenet_parity.py`.
fn formula(name: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let h = (name.bytes().map(u64::from).sum::<u64>() % 97) as f64;
    (0..n)
        .map(|i| {
            let base = (0.37 * i as f64 + 0.11 * h + 0.5).sin();
            let v = if name.ends_with("running_var") {
                0.5 + 0.5 * base * base
            } else if name.ends_with("running_mean") {
                0.1 * base
            } else if name.ends_with("bn_mrla.weight") {
                0.2 + 0.05 * base
            } else if name.ends_with("lambda_t") {
                0.3 * base
            } else if shape.len() == 1 && name.ends_with(".weight") {
                1.0 + 0.1 * base
            } else if shape.len() == 1 {
                0.1 * base
            } else {
                base * (1.0 / (n / shape[0]) as f64).sqrt()
            };
            v as f32
        })
        .collect()
}

fn parity_fixture() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixture("imagenet_parity.json")).unwrap()).unwrap()
}

/// A JSON array of sizes.
fn dims(v: &serde_json::Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}

/// Writes the formula values under the fixture's names to a safetensors file.
fn write_formula_weights(params: &[serde_json::Value], path: &std::path::Path) {
    let tensors: BTreeMap<String, (Vec<usize>, Vec<u8>)> = params
        .iter()
        .map(|p| {
            let name = p[0].as_str().unwrap().to_string();
            let shape = dims(&p[1]);
            let bytes = formula(&name, &shape)
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            (name, (shape, bytes))
        })
        .collect();
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, (s, b))| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

#[test]
fn logits_match_torchvision_and_the_official_mrla_models() {
    let device = Device::flex();
    let fx = parity_fixture();
    let shape = dims(&fx["input_shape"]);
    let n: usize = shape.iter().product();
    let x: Vec<f32> = (0..n).map(|i| (0.013 * i as f64).sin() as f32).collect();
    let dir = tempfile::tempdir().unwrap();
    for name in ["resnet18", "resnet50", "resnet50_mrlab", "resnet50_mrlal"] {
        let case = &fx[name];
        let path = dir.path().join(format!("{name}.safetensors"));
        write_formula_weights(case["params"].as_array().unwrap(), &path);
        let mut model = build(name, 10, &device);
        let report = model
            .load_pytorch(&path, true)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(report.applied, case["params"].as_array().unwrap().len());
        let input = Tensor::<4>::from_data(
            TensorData::new(x.clone(), [shape[0], shape[1], shape[2], shape[3]]),
            &device,
        );
        let got: Vec<f32> = model.forward(input).into_data().try_to_vec().unwrap();
        let want: Vec<f32> = case["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        // f32 on both sides through 50 layers: 1e-4 of the largest logit (logits up to 52).
        assert_close(name, &got, &want, 1e-4, 1e-5);
    }
}

#[test]
fn exports_use_the_official_stem_names_and_load_back() {
    let device = Device::flex();
    let model = build("resnet18_mrlab", 10, &device);
    assert!(model.has_deep_stem());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    model.save_safetensors(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let names: Vec<String> = st.names().into_iter().map(String::from).collect();
    for name in [
        "conv1.0.weight",
        "conv1.1.running_var",
        "conv1.3.weight",
        "conv1.4.bias",
        "conv1.6.weight",
        "bn1.weight",
        "layer4.1.mrla.Wq.weight",
        "layer2.0.downsample.0.weight",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("stem.")));
    let mut again = build("resnet18_mrlab", 10, &device);
    let report = again.load_safetensors(&path, true).unwrap();
    assert!(report.missing.is_empty() && report.unused.is_empty());
    let diff: f32 = (again.stem.as_ref().unwrap().conv_a.weight.val()
        - model.stem.as_ref().unwrap().conv_a.weight.val())
    .abs()
    .max()
    .into_scalar();
    assert_eq!(diff, 0.0);
    // The description in the metadata rebuilds the same architecture.
    let meta = ela_model::weights::read_metadata(&path).unwrap();
    let desc: ela_model::weights::ModelDescription =
        serde_json::from_str(&meta[ela_model::weights::META_CONFIG]).unwrap();
    assert_eq!(desc.arch, Arch::Imagenet);
    assert!(desc.deep_stem);
    assert_eq!(
        desc.config().init(&device).unwrap().parameter_count(),
        model.parameter_count()
    );
}

#[test]
fn official_training_checkpoints_load_with_a_report() {
    // fixtures/torchvision_subset.pth.tar: {'epoch', 'arch', 'best_acc1', 'state_dict': {...}},
    // keys 'module.'-prefixed, holding resnet18's stem BN, conv1 and fc plus an 'extra.weight'.
    let device = Device::flex();
    let path = fixture("torchvision_subset.pth.tar");
    let mut model = build("resnet18", 10, &device);
    let report = model.load_pytorch(&path, false).unwrap();
    assert_eq!(report.applied, 7, "conv1, bn1 (4 tensors), fc (2)");
    // Unused tensors are named as the file names them.
    assert_eq!(report.unused, ["module.extra.weight"]);
    assert!(report.missing.iter().any(|m| m == "layer1.0.conv1.weight"));
    // The values arrived: the file's bn1.running_var is positive noise, not the initial ones.
    let var: Vec<f32> = model
        .bn1
        .running_var
        .value()
        .into_data()
        .try_to_vec()
        .unwrap();
    assert!(var.iter().any(|v| (v - 1.0).abs() > 1e-3));
    let strict = build("resnet18", 10, &device).load_pytorch(&path, true);
    let msg = strict.unwrap_err().to_string();
    assert!(
        msg.contains("torchvision_subset.pth.tar") && msg.contains("extra.weight"),
        "{msg}"
    );

    // Fine-tuning: a 5-class head is left alone (a 10-class fc would be a shape error).
    let mut five = build("resnet18", 5, &device);
    let before: Vec<f32> = five.fc.weight.val().into_data().try_to_vec().unwrap();
    let report = five
        .load_checkpoint(
            &path,
            &LoadOptions {
                skip_head: true,
                ..LoadOptions::default()
            },
        )
        .unwrap();
    assert_eq!(report.applied, 5);
    assert!(!report.missing.iter().any(|m| m.starts_with("fc.")));
    let after: Vec<f32> = five.fc.weight.val().into_data().try_to_vec().unwrap();
    assert_eq!(before, after);
    let err = build("resnet18", 5, &device)
        .load_pytorch(&path, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("fc"), "{err}");

    // Not a checkpoint at all.
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pth");
    std::fs::write(&junk, b"not a pickle").unwrap();
    let err = build("resnet18", 5, &device)
        .load_pytorch(&junk, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("junk.pth"), "{err}");
}

/// Counts the float parameters with and without a gradient, and non-finite gradients.
struct GradAudit<'a> {
    grads: &'a burn::tensor::Gradients,
    with: usize,
    without: usize,
    non_finite: usize,
}

impl ModuleVisitor for GradAudit<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !param.is_require_grad() {
            return; // BatchNorm running statistics
        }
        match param.val().grad(self.grads) {
            Some(g) => {
                self.with += 1;
                if !g.abs().sum().into_scalar::<f32>().is_finite() {
                    self.non_finite += 1;
                }
            }
            None => self.without += 1,
        }
    }
}

#[test]
fn every_registered_variant_trains_forward_and_backward() {
    let device = Device::flex().autodiff();
    for entry in registry::all() {
        let ModelEntry { name, arch, .. } = &entry;
        let model = entry.config(7).init(&device).unwrap();
        let layout = model.layout();
        let mut skipped = 0;
        if entry.ela {
            // Skip the second block of every stage.
            let starts = layout.stage_starts();
            let flags: Vec<bool> = (0..layout.num_blocks())
                .map(|i| starts.contains(&i.wrapping_sub(1)))
                .collect();
            skipped = flags.iter().filter(|&&f| f).count();
            model.set_skip_flags(&flags).unwrap();
        }
        let side = if *arch == Arch::Imagenet { 32 } else { 16 };
        let x = Tensor::<4>::random([2, 3, side, side], Distribution::Normal(0.0, 1.0), &device);
        let logits = model.forward(x);
        assert_eq!(logits.dims(), [2, 7], "{name}");
        let grads = logits.powi_scalar(2).mean().backward();
        let mut audit = GradAudit {
            grads: &grads,
            with: 0,
            without: 0,
            non_finite: 0,
        };
        model.visit(&mut audit);
        assert_eq!(audit.non_finite, 0, "{name}");
        // A skipped block (full mode) leaves Wq, Wk, Wv and bn_mrla's γ, β without gradient;
        // every other parameter has one.
        assert_eq!(audit.without, 5 * skipped, "{name}");
        assert!(audit.with > 0, "{name}");
        if entry.ela {
            assert!(skipped == layout.num_stages(), "{name}");
        }
        assert_eq!(model.attention(), entry.attention);
    }
}

#[test]
fn summary_and_errors_describe_imagenet_models() {
    let device = Device::flex();
    let s = build("resnet50_mrlab", 1000, &device).summary();
    assert!(s.contains("conv3x3/2 3 -> 32"), "{s}");
    assert!(s.contains("layer4.2") && s.contains("2048"), "{s}");
    assert!(s.contains("parameters: 25742580"), "{s}");
    let s = build("resnet18", 1000, &device).summary();
    assert!(
        s.contains("conv7x7/2 3 -> 64") && s.contains("layer4.1"),
        "{s}"
    );
    let err = ElaResNetConfig::new(50, 10)
        .with_arch(Arch::Imagenet)
        .with_attention(AttentionKind::MrlaL)
        .with_dim_per_head(48)
        .init(&device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("dim_per_head"), "{err}");
    let err = ElaResNetConfig::new(20, 10)
        .with_width_per_group(128)
        .init(&device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("width_per_group"), "{err}");
    // Wide ResNet-50-2: torchvision's wide_resnet50_2 has 68,883,240 parameters.
    let wide = ElaResNetConfig::new(50, 1000)
        .with_arch(Arch::Imagenet)
        .with_width_per_group(128)
        .init(&device)
        .unwrap();
    assert_eq!(wide.parameter_count(), 68_883_240);
}

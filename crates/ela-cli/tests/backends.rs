//! A GPU backend computes what the CPU backend (`flex`) computes: one training-mode forward
//! pass, the cross-entropy, the backward pass and one SGD step (momentum 0.9, weight decay 1e-4)
//! of ResNet-20 with MRLA-B and with ELA (two blocks skipped), from the same weights on the same
//! batch. Built with `--features wgpu` (the backend under test is then wgpu) or `--features cuda`
//! (CUDA device 0). CI runs the wgpu build on Mesa's software Vulkan driver (lavapipe), and
//! compiles the CUDA build, running only the test that needs no GPU; on an NVIDIA machine:
//!
//! ```sh
//! cargo test --release -p ela-cli --features wgpu --test backends
//! cargo test --release -p ela-cli --features cuda --test backends
//! ```
//!
//! Tolerances, from f32 arithmetic in another summation order: loss within 1e-4, logits within
//! 1e-3 of their largest magnitude, and per parameter tensor the step's update
//! (after − before) within 2% in relative L2 norm. Measured on lavapipe (Mesa 22.3.6), in every
//! run the same: loss and logits agree to 2e-6; the worst update error is 1.1e-2 for MRLA-B
//! (a BN shift, whose gradient is a sum that nearly cancels), 2.2e-3 for ELA and the plain
//! ResNet. A backend that dropped a gradient would be off by 100%. `ELA_DEBUG_AGREE=1` prints
//! every tensor's error.
#![cfg(any(feature = "wgpu", feature = "cuda"))]

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use ela_model::{AttentionKind, ElaResNet, ElaResNetConfig};
use ela_train::backend::Backend;

/// Every float parameter (and BN running statistic) of a module, flattened, by path.
#[derive(Default)]
struct Collect {
    path: Vec<String>,
    values: Vec<(String, Vec<f32>)>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let v = param.val().into_data().try_to_vec::<f32>();
        self.values
            .push((self.path.join("."), v.expect("f32 data")));
    }
}

fn parameters(net: &ElaResNet) -> Vec<(String, Vec<f32>)> {
    let mut c = Collect::default();
    net.visit(&mut c);
    c.values
}

/// A fixed batch: 4 images 3×32×32 from an LCG in [−1, 1), labels 0, 3, 6, 9.
fn batch(device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let mut state = 12345u64;
    let pixels: Vec<f32> = (0..4 * 3 * 32 * 32)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        })
        .collect();
    (
        Tensor::from_data(TensorData::new(pixels, [4, 3, 32, 32]), device),
        Tensor::from_data(TensorData::new(vec![0i64, 3, 6, 9], [4]), device),
    )
}

/// Largest relative difference of one tensor's SGD update between the backends.
const UPDATE_TOLERANCE: f64 = 2e-2;

struct Step {
    loss: f32,
    logits: Vec<f32>,
    after: Vec<(String, Vec<f32>)>,
}

fn train_step(net: ElaResNet, device: &Device) -> Step {
    let (x, y) = batch(device);
    let logits = net.forward(x);
    let loss = CrossEntropyLossConfig::new()
        .init(device)
        .forward(logits.clone(), y);
    let grads = GradientsParams::from_grads(loss.backward(), &net);
    let mut optim = ela_train::train::sgd(0.9, 1e-4, true, &net);
    let stepped = optim.step(0.1, net, grads);
    Step {
        loss: loss.into_scalar::<f32>(),
        logits: logits.into_data().try_to_vec::<f32>().expect("f32"),
        after: parameters(&stepped),
    }
}

/// The backend under test: wgpu when it is compiled in, else CUDA. Its `--backend` name is its
/// cargo feature's.
fn under_test() -> Backend {
    if cfg!(feature = "wgpu") {
        Backend::Wgpu
    } else {
        Backend::Cuda
    }
}

fn agree(attention: AttentionKind, skip: &[usize]) {
    let cpu = Device::flex().autodiff();
    let gpu = ela_train::backend::device(under_test(), 0)
        .unwrap()
        .autodiff();
    cpu.seed(3);
    let net = ElaResNetConfig::new(20, 10)
        .with_attention(attention)
        .init(&cpu)
        .unwrap();
    let mut flags = vec![false; net.skip_flags().len()];
    skip.iter().for_each(|&b| flags[b] = true);
    net.set_skip_flags(&flags).unwrap();
    // An independent copy on the GPU through a weights file (a module clone would share its BN
    // running statistics with the original).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.safetensors");
    net.save_safetensors(&file).unwrap();
    let mut on_gpu = ElaResNetConfig::new(20, 10)
        .with_attention(attention)
        .init(&gpu)
        .unwrap();
    on_gpu.load_safetensors(&file, true).unwrap();
    on_gpu.set_skip_flags(&flags).unwrap();
    assert_eq!(
        parameters(&on_gpu),
        parameters(&net),
        "same weights on both"
    );

    let before = parameters(&net);
    let (a, b) = (train_step(net, &cpu), train_step(on_gpu, &gpu));
    let what = format!(
        "{}: {attention:?} skipping {skip:?}",
        under_test().feature()
    );
    assert!(
        (a.loss - b.loss).abs() < 1e-4,
        "{what}: loss {} vs {}",
        a.loss,
        b.loss
    );
    let scale = a.logits.iter().fold(1f32, |m, v| m.max(v.abs()));
    let worst = a
        .logits
        .iter()
        .zip(&b.logits)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(worst <= 1e-3 * scale, "{what}: logits differ by {worst}");
    // Per tensor, the step's change Δ = after − before on each backend: ‖Δcpu − Δwgpu‖ / ‖Δcpu‖
    // (the relative error of the update, which is the gradient's plus identical weight decay).
    assert_eq!(a.after.len(), b.after.len());
    let mut worst_update = (0f64, String::new());
    for (((name, x0), (_, x)), (_, y)) in before.iter().zip(&a.after).zip(&b.after) {
        let (mut diff, mut norm) = (0f64, 0f64);
        for ((u0, u), v) in x0.iter().zip(x).zip(y) {
            let (du, dv) = (f64::from(u - u0), f64::from(v - u0));
            diff += (du - dv).powi(2);
            norm += du.powi(2);
        }
        if norm < 1e-20 {
            continue;
        }
        let rel = (diff / norm).sqrt();
        if std::env::var_os("ELA_DEBUG_AGREE").is_some() {
            eprintln!("{name}: relative update error {rel:.3e}");
        }
        if rel > worst_update.0 {
            worst_update = (rel, name.clone());
        }
    }
    println!(
        "{what}: loss {} / {}, logits max |diff| {worst:.2e}, worst relative update error \
         {:.2e} ({})",
        a.loss, b.loss, worst_update.0, worst_update.1
    );
    assert!(
        worst_update.0 < UPDATE_TOLERANCE,
        "{what}: the step's update of {} differs by {:.2e} (relative)",
        worst_update.1,
        worst_update.0
    );
}

#[test]
fn the_gpu_backend_agrees_with_the_cpu_backend_for_plain_mrla_b_and_ela() {
    agree(AttentionKind::None, &[]);
    agree(AttentionKind::MrlaB, &[]);
    // ResNet-20 has two blocks per stage: skip the second block of stages 1 and 2.
    agree(AttentionKind::MrlaB, &[1, 3]);
}

/// A device that does not exist (no driver at all, or an index past the last GPU) stops `train`
/// before it writes anything, with an error naming the backend, the device and what to do.
#[test]
fn an_unusable_device_is_a_clear_error_before_any_file_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let result = std::process::Command::new(env!("CARGO_BIN_EXE_ela"))
        .args([
            "train",
            "--epochs",
            "1",
            "--limit-train",
            "64",
            "--limit-test",
            "32",
        ])
        .args([
            "--backend",
            under_test().feature(),
            "--device",
            "7",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    println!("{stderr}");
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    let expected = format!(
        "backend '{}' device 7 is not usable",
        under_test().feature()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    let hint = if under_test() == Backend::Cuda {
        "install the NVIDIA driver"
    } else {
        "Vulkan driver"
    };
    assert!(stderr.contains(hint), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.exists(), "nothing is written");
}

/// On a GPU backend the benchmark reads peak memory from the device allocator's pools (the
/// bytes it reserves), not from the process's resident set.
#[test]
fn the_benchmark_reports_gpu_memory_from_the_device_allocator() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench.json");
    let result = std::process::Command::new(env!("CARGO_BIN_EXE_ela"))
        .args(["bench", "--depths", "20", "--batch-size", "4"])
        .args(["--input", "3,16,16", "--num-classes", "10"])
        .args(["--warmup", "0", "--rounds", "1"])
        .args(["--backend", under_test().feature(), "--json"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let variants = report["depths"][0]["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 5);
    for v in variants {
        let m = &v["memory"];
        assert_eq!(m["kind"], "device-reserved", "{v}");
        let (inference, train) = (
            m["inference_bytes"].as_u64().unwrap(),
            m["train_bytes"].as_u64().unwrap(),
        );
        // Training keeps activations, gradients and momentum: it reserves more than inference.
        assert!(train > inference, "{}: {m}", v["name"]);
    }
}

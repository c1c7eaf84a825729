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
//! The check itself is `ela_bench::agreement` (also `ela agree --backend X`), with its
//! tolerances. Measured on lavapipe (Mesa 22.3.6), without fusion: loss and logits agree to
//! 2e-6; the worst update error is 1.1e-2 for MRLA-B (a BN shift, whose gradient is a sum that
//! nearly cancels), 2.2e-3 for ELA and the plain ResNet.
#![cfg(any(feature = "wgpu", feature = "cuda", feature = "cuda-llvm"))]

use ela_bench::agreement;
use ela_train::backend::Backend;

/// The backend under test: wgpu when it is compiled in, else CUDA. Its `--backend` name is its
/// cargo feature's.
fn under_test() -> Backend {
    if cfg!(feature = "wgpu") {
        Backend::Wgpu
    } else {
        Backend::Cuda
    }
}

#[test]
fn the_gpu_backend_agrees_with_the_cpu_backend_for_plain_mrla_b_and_ela() {
    let results = agreement::check(under_test(), 0, None).unwrap();
    assert_eq!(results.len(), agreement::CASES.len());
    for r in &results {
        println!("{}: {r}", under_test().feature());
        assert!(r.agrees, "{r}");
    }
}

/// The same against CPU values written to a folder first, as a GPU machine checks a binary
/// with a reference made elsewhere.
#[test]
fn the_gpu_backend_agrees_with_a_cpu_reference_written_beforehand() {
    let dir = tempfile::tempdir().unwrap();
    agreement::write_reference(dir.path()).unwrap();
    for r in agreement::check(under_test(), 0, Some(dir.path())).unwrap() {
        assert!(r.agrees, "{r}");
    }
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

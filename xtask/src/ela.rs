//! Building and running the `ela` binary for one backend.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// A backend and the cargo feature of `ela-cli` that compiles it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    /// The `--backend` value given to `cargo xtask`.
    pub name: &'static str,
    /// The cargo feature.
    pub feature: &'static str,
    /// The `--backend` value `ela` gets (a build choice such as the CUDA compiler is not one of
    /// its flags).
    pub ela_name: &'static str,
}

const BACKENDS: [Backend; 5] = [
    Backend {
        name: "cpu",
        feature: "flex",
        ela_name: "cpu",
    },
    Backend {
        name: "wgpu",
        feature: "wgpu",
        ela_name: "wgpu",
    },
    Backend {
        name: "vulkan",
        feature: "vulkan",
        ela_name: "vulkan",
    },
    // CUDA with kernels compiled by NVRTC (the default) or by LLVM.
    Backend {
        name: "cuda",
        feature: "cuda",
        ela_name: "cuda",
    },
    Backend {
        name: "cuda-llvm",
        feature: "cuda-llvm",
        ela_name: "cuda",
    },
];

/// `args` with the xtask-only backend names replaced by `ela`'s (`--backend cuda-llvm` runs
/// `ela --backend cuda` built with the LLVM compiler).
pub fn ela_args(args: &[String], backend: Backend) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut after_flag = false;
    for arg in args {
        if after_flag && arg == backend.name {
            out.push(backend.ela_name.to_string());
        } else if arg.strip_prefix("--backend=") == Some(backend.name) {
            out.push(format!("--backend={}", backend.ela_name));
        } else {
            out.push(arg.clone());
        }
        after_flag = arg == "--backend";
    }
    out
}

/// The backend named by `--backend X` / `--backend=X` in `args` (default: cpu).
pub fn backend_of(args: &[String]) -> Result<Backend> {
    let mut value: Option<&str> = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--backend" {
            let v = iter
                .next()
                .context("--backend needs a value: cpu, wgpu, vulkan, cuda or cuda-llvm")?;
            value = Some(v.as_str());
        } else if let Some(v) = arg.strip_prefix("--backend=") {
            value = Some(v);
        }
    }
    let name = value.unwrap_or("cpu");
    let name = if name == "flex" { "cpu" } else { name };
    BACKENDS
        .iter()
        .find(|b| b.name == name)
        .copied()
        .with_context(|| {
            format!("--backend {name}: expected one of cpu, wgpu, vulkan, cuda, cuda-llvm")
        })
}

fn workspace_root() -> PathBuf {
    // `cargo run` sets the variable at run time too; prefer it over the compile-time value, which
    // names the checkout the binary was built in.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

/// Builds `ela` in release mode with only `backend`'s feature; returns the binary's path.
pub fn build(backend: Backend) -> Result<PathBuf> {
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--package",
            "ela-cli",
            "--bin",
            "ela",
            "--no-default-features",
            "--features",
            backend.feature,
        ])
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!(
            "building the {} backend (cargo feature '{}') failed; see the cargo output above{}",
            backend.name,
            backend.feature,
            build_hint(backend)
        );
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let target = if target.is_absolute() {
        target
    } else {
        root.join(target)
    };
    Ok(target
        .join("release")
        .join(format!("ela{}", std::env::consts::EXE_SUFFIX)))
}

/// What to try when `backend` does not build.
fn build_hint(backend: Backend) -> &'static str {
    if backend.ela_name == "cuda" {
        ". The CUDA kernel compiler downloads LLVM during its first build \
         (tracel-llvm-bundler); without network access, build with Debian's LLVM 22 instead: \
         XDG_DATA_HOME=\"$(scripts/llvm-offline.sh)\" cargo xtask …"
    } else {
        ""
    }
}

/// Runs `ela <args>` (the command first) in the caller's directory and propagates its exit
/// status.
pub fn run(binary: &Path, args: &[String]) -> Result<()> {
    let status = Command::new(binary)
        .args(args)
        .status()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if !status.success() {
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn backend_flag_maps_to_a_cargo_feature() {
        assert_eq!(
            backend_of(&args(&["--epochs", "2"])).unwrap().feature,
            "flex"
        );
        assert_eq!(
            backend_of(&args(&["--backend", "cuda"])).unwrap().feature,
            "cuda"
        );
        assert_eq!(
            backend_of(&args(&["--backend=wgpu"])).unwrap().feature,
            "wgpu"
        );
        assert_eq!(
            backend_of(&args(&["--backend", "flex"])).unwrap().name,
            "cpu"
        );
        let err = backend_of(&args(&["--backend", "tpu"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("tpu") && err.contains("cuda"), "{err}");
        assert!(backend_of(&args(&["--backend"])).is_err());
    }

    #[test]
    fn the_cuda_compiler_is_a_build_choice_that_ela_runs_as_cuda() {
        for given in [
            &["--backend", "cuda-llvm"][..],
            &["--backend=cuda-llvm"][..],
        ] {
            let backend = backend_of(&args(given)).unwrap();
            assert_eq!(backend.feature, "cuda-llvm");
            let passed = ela_args(&args(given), backend).join(" ");
            assert!(
                passed == "--backend cuda" || passed == "--backend=cuda",
                "{passed}"
            );
        }
        // Values that only look like it are left alone.
        let backend = backend_of(&args(&["--backend", "cuda"])).unwrap();
        let given = args(&["--out", "cuda-llvm", "--backend", "cuda"]);
        assert_eq!(ela_args(&given, backend), given);
    }

    #[test]
    fn a_failed_cuda_build_points_to_the_offline_llvm() {
        let cuda = backend_of(&args(&["--backend", "cuda"])).unwrap();
        assert!(build_hint(cuda).contains("scripts/llvm-offline.sh"));
        assert_eq!(build_hint(backend_of(&args(&[])).unwrap()), "");
    }
}

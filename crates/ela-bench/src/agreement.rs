//! `ela agree`: does a backend compute what the CPU backend (`flex`) computes?
//!
//! One training step of CIFAR ResNet-20 (training-mode forward pass, cross-entropy, backward
//! pass, SGD with momentum 0.9 and weight decay 1e-4 at lr 0.1) on a fixed batch, from the same
//! weights, for three cases: the plain ResNet, MRLA-B, and ELA (MRLA-B with the second block of
//! stages 1 and 2 skipped). The CPU side is either computed in the same process or read from a
//! reference written earlier (`--write-reference DIR` on any machine, `--reference DIR` where the
//! backend under test runs): a GPU machine then needs nothing but the binary and that folder.
//!
//! Tolerances, from f32 arithmetic in another summation order: loss within 1e-4, logits within
//! 1e-3 of their largest magnitude, and per parameter tensor the step's update (after − before)
//! within 2% in relative L2 norm. A backend that dropped a gradient is off by 100%.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use ela_model::{AttentionKind, ElaResNet, ElaResNetConfig};
use serde::{Deserialize, Serialize};

use ela_train::backend::{self, Backend};

/// Loss difference allowed between the backends.
pub const LOSS_TOLERANCE: f32 = 1e-4;
/// Logit difference allowed, relative to the largest logit's magnitude.
pub const LOGIT_TOLERANCE: f32 = 1e-3;
/// Relative L2 difference allowed in one tensor's SGD update.
pub const UPDATE_TOLERANCE: f64 = 2e-2;

/// One model of the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    /// A file-name-safe name.
    pub name: &'static str,
    /// The blocks' attention.
    pub attention: AttentionKind,
    /// Skipped blocks (ELA).
    pub skip: &'static [usize],
}

/// The plain ResNet-20, MRLA-B, and ELA (CIFAR ResNet-20 has two blocks per stage: blocks 1
/// and 3 are the second blocks of stages 1 and 2).
pub const CASES: [Case; 3] = [
    Case {
        name: "plain",
        attention: AttentionKind::None,
        skip: &[],
    },
    Case {
        name: "mrla-b",
        attention: AttentionKind::MrlaB,
        skip: &[],
    },
    Case {
        name: "ela",
        attention: AttentionKind::MrlaB,
        skip: &[1, 3],
    },
];

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
        let v = param.val().into_data().convert::<f32>().try_to_vec::<f32>();
        self.values
            .push((self.path.join("."), v.expect("float data")));
    }
}

/// A network's float tensors by path, as f32.
pub fn parameters(net: &ElaResNet) -> Vec<(String, Vec<f32>)> {
    let mut c = Collect::default();
    net.visit(&mut c);
    c.values
}

/// The fixed batch: 4 images 3×32×32 from an LCG in [−1, 1), labels 0, 3, 6, 9.
pub fn batch(device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
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

/// What one training step gave: the loss, the logits, the network after the SGD update.
pub struct Step {
    /// Cross-entropy of the batch.
    pub loss: f32,
    /// Logits `[4, 10]`, row-major.
    pub logits: Vec<f32>,
    /// The network after the step.
    pub after: ElaResNet,
}

/// One training step of `net` on `device` (an autodiff device).
pub fn train_step(net: ElaResNet, device: &Device) -> Step {
    let (x, y) = batch(device);
    let logits = net.forward(x);
    let loss = CrossEntropyLossConfig::new()
        .init(device)
        .forward(logits.clone(), y);
    let grads = GradientsParams::from_grads(loss.backward(), &net);
    let mut optim = ela_train::runtime::SgdSettings {
        momentum: 0.9,
        nesterov: true,
        weight_decay: 1e-4,
        decay_norm_and_bias: true,
    }
    .init(&net);
    let after = optim.step(0.1, net, grads);
    Step {
        loss: loss.into_scalar::<f32>(),
        logits: logits
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("float"),
        after,
    }
}

/// The case's network on `device` with its skip flags, weights random (seed 3) or from `weights`.
fn network(case: &Case, device: &Device, weights: Option<&Path>) -> Result<ElaResNet> {
    device.seed(3);
    let mut net = ElaResNetConfig::new(20, 10)
        .with_attention(case.attention)
        .init(device)?;
    if let Some(path) = weights {
        net.load_safetensors(path, true)
            .with_context(|| format!("{}: {}", case.name, path.display()))?;
    }
    let mut flags = vec![false; net.skip_flags().len()];
    case.skip.iter().for_each(|&b| flags[b] = true);
    net.set_skip_flags(&flags)?;
    Ok(net)
}

/// The CPU side of one case, as a reference folder holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Outputs {
    loss: f32,
    logits: Vec<f32>,
}

/// Writes the CPU side of every case into `dir`: per case the initial weights
/// (`CASE.init.safetensors`), the weights after the step (`CASE.after.safetensors`) and the loss
/// and logits (`CASE.json`).
pub fn write_reference(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let cpu = backend::device(Backend::Cpu, 0)?.autodiff();
    for case in &CASES {
        let net = network(case, &cpu, None)?;
        net.save_safetensors(&dir.join(format!("{}.init.safetensors", case.name)))?;
        let step = train_step(net, &cpu);
        step.after
            .save_safetensors(&dir.join(format!("{}.after.safetensors", case.name)))?;
        let outputs = Outputs {
            loss: step.loss,
            logits: step.logits,
        };
        ela_records::write_json(&dir.join(format!("{}.json", case.name)), &outputs)?;
    }
    Ok(())
}

/// How one case agreed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Agreement {
    /// The case.
    pub case: String,
    /// Loss on the CPU and on the backend under test.
    pub loss: (f32, f32),
    /// Largest logit difference, and the largest logit's magnitude.
    pub logits_max_diff: f32,
    /// The largest logit's magnitude on the CPU.
    pub logits_scale: f32,
    /// The worst relative update error and its tensor.
    pub worst_update: (f64, String),
    /// Every bound held.
    pub agrees: bool,
}

impl std::fmt::Display for Agreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: loss {} / {}, logits max |diff| {:.2e} (scale {:.2}), worst relative update \
             error {:.2e} ({}): {}",
            self.case,
            self.loss.0,
            self.loss.1,
            self.logits_max_diff,
            self.logits_scale,
            self.worst_update.0,
            self.worst_update.1,
            if self.agrees { "agrees" } else { "DISAGREES" }
        )
    }
}

/// Float tensors by path.
type Named = [(String, Vec<f32>)];

/// One backend's side of a step: loss, logits, tensors after the update.
struct Side<'a> {
    loss: f32,
    logits: &'a [f32],
    after: &'a Named,
}

/// Compares the backend's step with the CPU's, from the same `before` weights.
fn compare(case: &Case, before: &Named, cpu: Side<'_>, other: Side<'_>) -> Result<Agreement> {
    let (loss_a, logits_a, after_a) = (cpu.loss, cpu.logits, cpu.after);
    let (loss_b, logits_b, after_b) = (other.loss, other.logits, other.after);
    if after_a.len() != after_b.len() || after_a.len() != before.len() {
        bail!("{}: the two networks hold different tensors", case.name);
    }
    let scale = logits_a.iter().fold(1f32, |m, v| m.max(v.abs()));
    let worst = logits_a
        .iter()
        .zip(logits_b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    // Per tensor, the step's change Δ = after − before on each backend: ‖Δcpu − Δother‖ /
    // ‖Δcpu‖ (the relative error of the update: the gradient's, plus identical weight decay).
    let mut worst_update = (0f64, String::new());
    for (((name, x0), (_, x)), (_, y)) in before.iter().zip(after_a).zip(after_b) {
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
        if rel > worst_update.0 {
            worst_update = (rel, name.clone());
        }
    }
    let agrees = (loss_a - loss_b).abs() < LOSS_TOLERANCE
        && worst <= LOGIT_TOLERANCE * scale
        && worst_update.0 < UPDATE_TOLERANCE
        && logits_b.iter().all(|v| v.is_finite());
    Ok(Agreement {
        case: case.name.to_string(),
        loss: (loss_a, loss_b),
        logits_max_diff: worst,
        logits_scale: scale,
        worst_update,
        agrees,
    })
}

/// Runs every case on `backend` device `index` and compares it with the CPU: computed here, or
/// read from `reference` (a folder [`write_reference`] wrote).
pub fn check(backend: Backend, index: usize, reference: Option<&Path>) -> Result<Vec<Agreement>> {
    let device = backend::device(backend, index)?.autodiff();
    let scratch = tempfile::tempdir().context("cannot create a temporary folder")?;
    let mut out = Vec::new();
    for case in &CASES {
        let (init, cpu_after, outputs) = match reference {
            Some(dir) => {
                let json = dir.join(format!("{}.json", case.name));
                let text = std::fs::read_to_string(&json)
                    .with_context(|| format!("--reference: cannot read {}", json.display()))?;
                let outputs: Outputs = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a step's outputs", json.display()))?;
                let init = dir.join(format!("{}.init.safetensors", case.name));
                let after = dir.join(format!("{}.after.safetensors", case.name));
                // Read on the device under test: loading copies the values exactly.
                let after = parameters(&network(case, &device, Some(&after))?);
                (init, after, outputs)
            }
            None => {
                let cpu = backend::device(Backend::Cpu, 0)?.autodiff();
                let net = network(case, &cpu, None)?;
                let init = scratch
                    .path()
                    .join(format!("{}.init.safetensors", case.name));
                net.save_safetensors(&init)?;
                let step = train_step(net, &cpu);
                let outputs = Outputs {
                    loss: step.loss,
                    logits: step.logits,
                };
                (init, parameters(&step.after), outputs)
            }
        };
        // An independent copy on the device through the weights file (a module clone would
        // share its BN running statistics with the original).
        let net = network(case, &device, Some(&init))?;
        let before = parameters(&net);
        let step = train_step(net, &device);
        let agreement = compare(
            case,
            &before,
            Side {
                loss: outputs.loss,
                logits: &outputs.logits,
                after: &cpu_after,
            },
            Side {
                loss: step.loss,
                logits: &step.logits,
                after: &parameters(&step.after),
            },
        )?;
        out.push(agreement);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPU against itself, computed here and through a reference folder: the check's own
    /// plumbing (weights through files, parameters paired by name, the bounds) on the one
    /// backend every machine has.
    #[test]
    fn the_cpu_agrees_with_itself_through_a_reference_folder() {
        for r in check(Backend::Cpu, 0, None).unwrap() {
            assert!(r.agrees, "{r}");
            assert_eq!(r.loss.0, r.loss.1, "{r}");
        }
        let dir = tempfile::tempdir().unwrap();
        write_reference(dir.path()).unwrap();
        for r in check(Backend::Cpu, 0, Some(dir.path())).unwrap() {
            assert!(r.agrees && r.logits_max_diff == 0.0, "{r}");
        }
        // A reference that is not one names the file.
        std::fs::write(dir.path().join("plain.json"), "{}").unwrap();
        let err = format!(
            "{:#}",
            check(Backend::Cpu, 0, Some(dir.path())).unwrap_err()
        );
        assert!(err.contains("plain.json is not a step's outputs"), "{err}");
    }

    #[test]
    fn a_dropped_gradient_is_a_disagreement() {
        let before = vec![("w".to_string(), vec![1.0f32, 1.0])];
        let cpu_after = vec![("w".to_string(), vec![0.9f32, 0.8])];
        let frozen = before.clone();
        let r = compare(
            &CASES[0],
            &before,
            Side {
                loss: 1.0,
                logits: &[1.0, 2.0],
                after: &cpu_after,
            },
            Side {
                loss: 1.0,
                logits: &[1.0, 2.0],
                after: &frozen,
            },
        )
        .unwrap();
        assert!(!r.agrees && (r.worst_update.0 - 1.0).abs() < 1e-9, "{r}");
    }
}

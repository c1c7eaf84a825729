//! What the benchmark measured: per-variant timings and peak memory, the host and revision, and
//! the report's Markdown tables with the goals.

#[allow(unused_imports)]
use super::*;

/// Step times of one variant over the timed rounds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timing {
    /// Median seconds.
    pub median_seconds: f64,
    /// Fastest round.
    pub min_seconds: f64,
    /// Slowest round.
    pub max_seconds: f64,
    /// Median over rounds of (this time / the plain ResNet's time in the same round).
    pub ratio_to_plain: f64,
    /// Median over rounds of (this time / MRLA-B's time in the same round).
    pub ratio_to_mrla_b: f64,
    /// Every timed round, seconds.
    pub seconds: Vec<f64>,
}

/// Per-round times of every variant (`times[variant][round]`) as [`Timing`]s.
pub fn timings(times: &[Vec<f64>]) -> Vec<Timing> {
    let ratio = |t: &[f64], reference: usize| -> f64 {
        let r: Vec<f64> = t
            .iter()
            .zip(&times[reference])
            .map(|(a, b)| a / b)
            .collect();
        median(&r)
    };
    times
        .iter()
        .map(|t| Timing {
            median_seconds: median(t),
            min_seconds: t.iter().copied().fold(f64::INFINITY, f64::min),
            max_seconds: t.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            ratio_to_plain: ratio(t, PLAIN),
            ratio_to_mrla_b: ratio(t, MRLA_B),
            seconds: t.clone(),
        })
        .collect()
}

/// Peak memory of one variant, measured in a process that runs nothing else.
///
/// On a backend whose allocator reports its pools (wgpu, CUDA: Burn's CubeCL memory pools;
/// PyTorch's caching allocator on CUDA), the bytes the allocator reserves on the device, which
/// it keeps once reserved, so what it holds after a pass is that pass's peak. On the CPU
/// (`flex`, PyTorch on the CPU), the process's resident memory and its high-water mark.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct PeakMemory {
    /// `device-reserved` or `resident`.
    pub kind: MemoryKind,
    /// Bytes once the model, its optimizer and the batch exist.
    pub resting_bytes: u64,
    /// Peak bytes above resting during one eval-mode forward pass.
    pub inference_bytes: u64,
    /// Peak bytes above resting during two training steps (the second one with the
    /// optimizer's momentum buffers in place).
    pub train_bytes: u64,
}

/// What [`PeakMemory`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryKind {
    /// Bytes reserved by the device allocator.
    DeviceReserved,
    /// The process's resident set.
    Resident,
}

impl MemoryKind {
    /// What the numbers count, for the tables.
    pub fn describe(self) -> &'static str {
        match self {
            Self::DeviceReserved => {
                "bytes the device allocator reserves above its resting reservation, each variant \
                 in a process of its own"
            }
            Self::Resident => {
                "the process's resident set (high-water mark) above its resting size, each \
                 variant in a process of its own"
            }
        }
    }
}

/// One variant's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VariantResult {
    /// `none`, `mrla-l`, `mrla-b`, `ela-full` or `ela-retrieval`.
    pub name: String,
    /// Skipped blocks.
    pub skipped: Vec<usize>,
    /// Trainable parameters.
    pub parameters: usize,
    /// Training step: forward, cross-entropy, backward, SGD update, until the loss is read back.
    pub train: Timing,
    /// Inference: one eval-mode forward pass, until the logits are read back.
    pub inference: Timing,
    /// The first (warm-up) training step, which also compiles the kernels (and on GPUs
    /// autotunes them) on their first use: what a run pays before it trains at speed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_step_seconds: Option<f64>,
    /// Peak memory, where measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<PeakMemory>,
}

/// The results at one depth.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DepthResult {
    /// ResNet family.
    #[serde(default)]
    pub arch: Arch,
    /// ResNet depth.
    pub depth: usize,
    /// One entry per variant.
    pub variants: Vec<VariantResult>,
    /// The PyTorch reference's results, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pytorch: Option<PytorchResult>,
}

/// The machine a report was measured on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Host {
    /// Host name.
    pub name: String,
    /// CPU model.
    pub cpu: String,
    /// CPU threads available to the process.
    pub threads: usize,
    /// Operating system and architecture.
    pub os: String,
}

impl Host {
    /// This machine.
    pub fn current() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_string(), |(_, v)| v.trim().to_string());
        let name = read("/proc/sys/kernel/hostname").trim().to_string();
        Self {
            name: if name.is_empty() {
                "unknown".into()
            } else {
                name
            },
            cpu,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

/// The source revision: the commit of the sources this binary was built from, with
/// `-dirty` for uncommitted changes, or `unknown` outside a git checkout.
pub fn revision() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) => match git(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(s) if !s.is_empty() => format!("{rev}-dirty"),
            _ => rev,
        },
        None => "unknown".into(),
    }
}

/// The benchmark's report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    /// The configuration.
    pub config: BenchConfig,
    /// Warm-up steps and timed rounds, after `--quick`.
    pub warmup: usize,
    /// Timed rounds.
    pub rounds: usize,
    /// Seconds since the Unix epoch at the start.
    pub unix_seconds: u64,
    /// The machine.
    pub host: Host,
    /// Source revision.
    pub revision: String,
    /// Backend and device (the backend is also `config.backend`).
    pub device: String,
    /// How the GPU backends' kernels ran: fusion, autotune, the CUDA compiler.
    #[serde(default)]
    pub kernels: Option<String>,
    /// One entry per depth.
    pub depths: Vec<DepthResult>,
}

impl BenchReport {
    /// Markdown tables of the results, one section per depth, with the benchmark's goals.
    pub fn table(&self) -> String {
        let mut out = format!(
            "batch {}, input {:?}, {} classes, {} warm-up steps, {} rounds, {}{}; {} ({} threads), \
             revision {}\n",
            self.config.batch_size,
            self.config.input(),
            self.config.num_classes(),
            self.warmup,
            self.rounds,
            self.device,
            self.kernels
                .as_ref()
                .map_or_else(String::new, |k| format!(" ({k})")),
            self.host.cpu,
            self.host.threads,
            self.revision,
        );
        for d in &self.depths {
            out.push_str(&d.table());
        }
        out
    }
}

impl DepthResult {
    fn variant(&self, name: &str) -> Option<&VariantResult> {
        self.variants.iter().find(|v| v.name == name)
    }

    /// This depth's tables and goals.
    pub fn table(&self) -> String {
        let mut out = format!(
            "\n### {} ResNet-{}\n\n\
             | variant | skipped blocks | params | train s/step (min–max) | × plain | × MRLA-B | \
             inference s/batch (min–max) | × plain | × MRLA-B | peak MiB train / inference |\n\
             |---|---|---|---|---|---|---|---|---|---|\n",
            match self.arch {
                Arch::Cifar => "CIFAR",
                Arch::Imagenet => "ImageNet",
            },
            self.depth
        );
        for v in &self.variants {
            let (t, i) = (&v.train, &v.inference);
            out.push_str(&format!(
                "| {} | {} | {} | {:.4} ({:.3}–{:.3}) | {:.3} | {:.3} | {:.4} ({:.3}–{:.3}) | \
                 {:.3} | {:.3} | {} |\n",
                v.name,
                if v.skipped.is_empty() {
                    "–".to_string()
                } else {
                    format!("{} of {}", v.skipped.len(), self.blocks())
                },
                v.parameters,
                t.median_seconds,
                t.min_seconds,
                t.max_seconds,
                t.ratio_to_plain,
                t.ratio_to_mrla_b,
                i.median_seconds,
                i.min_seconds,
                i.max_seconds,
                i.ratio_to_plain,
                i.ratio_to_mrla_b,
                v.memory.map_or("–".into(), |m| format!(
                    "{} / {}",
                    mib(m.train_bytes),
                    mib(m.inference_bytes)
                )),
            ));
        }
        if let Some(m) = self.variants.iter().find_map(|v| v.memory) {
            out.push_str(&format!("\nPeak memory: {}.\n", m.kind.describe()));
        }
        let firsts: Vec<String> = self
            .variants
            .iter()
            .filter_map(|v| Some(format!("{} {:.2} s", v.name, v.first_step_seconds?)))
            .collect();
        if !firsts.is_empty() {
            out.push_str(&format!(
                "\nFirst training step (with kernel compilation and autotuning): {}.\n",
                firsts.join(", ")
            ));
        }
        if let Some(pt) = &self.pytorch {
            out.push_str(&format!(
                "\nPyTorch reference ({}, {}), measured right after, same configuration:\n\n\
                 | variant | train s/step | × plain | × MRLA-B | Burn / PyTorch train | \
                 inference s/batch | Burn / PyTorch inference | peak MiB train / inference | \
                 Burn / PyTorch peak train |\n|---|---|---|---|---|---|---|---|---|\n",
                pt.framework, pt.device
            ));
            for p in &pt.variants {
                let burn = self.variant(&p.name);
                let ratio = |f: &dyn Fn(&VariantResult) -> f64, theirs: f64| {
                    burn.map_or("–".into(), |b| format!("{:.2}", f(b) / theirs))
                };
                out.push_str(&format!(
                    "| {} | {:.4} | {:.3} | {:.3} | {} | {:.4} | {} | {} | {} |\n",
                    p.name,
                    p.train.median_seconds,
                    p.train.ratio_to_plain,
                    p.train.ratio_to_mrla_b,
                    ratio(&|b| b.train.median_seconds, p.train.median_seconds),
                    p.inference.median_seconds,
                    ratio(&|b| b.inference.median_seconds, p.inference.median_seconds),
                    p.memory.map_or("–".into(), |m| format!(
                        "{} / {}",
                        mib(m.train_bytes),
                        mib(m.inference_bytes)
                    )),
                    match (burn.and_then(|b| b.memory), p.memory) {
                        (Some(b), Some(m)) if m.train_bytes > 0 =>
                            format!("{:.2}", b.train_bytes as f64 / m.train_bytes as f64),
                        _ => "–".into(),
                    },
                ));
            }
        }
        out.push_str(&self.goals());
        out
    }

    fn blocks(&self) -> usize {
        self.arch
            .stages(self.depth)
            .map_or(0, |(_, blocks)| blocks.iter().sum())
    }

    /// The benchmark's goals at this depth, measured.
    pub fn goals(&self) -> String {
        let mut out = String::from("\n");
        let verdict = |value: f64, limit: f64| if value <= limit { "met" } else { "not met" };
        if let Some(ela) = self.variant("ela-full") {
            let r = ela.train.ratio_to_mrla_b;
            out.push_str(&format!(
                "- ELA (full) train step × MRLA-B: {r:.3} (goal ≤ 0.65: {})\n",
                verdict(r, 0.65)
            ));
            let p = ela.train.ratio_to_plain;
            out.push_str(&format!(
                "- ELA (full) train step × plain ResNet: {p:.3} (goal ≤ 1.15: {})\n",
                verdict(p, 1.15)
            ));
        }
        if let Some(pt) = &self.pytorch {
            for name in ["mrla-b", "ela-full"] {
                let burn = self.variant(name);
                let theirs = pt.variants.iter().find(|p| p.name == name);
                if let (Some(b), Some(p)) = (burn, theirs) {
                    let r = b.train.median_seconds / p.train.median_seconds;
                    out.push_str(&format!(
                        "- {name} Burn / PyTorch train step: {r:.2} (goal ≤ 1.0: {})\n",
                        verdict(r, 1.0)
                    ));
                }
            }
        }
        out
    }
}

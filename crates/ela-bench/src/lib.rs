//! Benchmarks of ELA. `ela bench`: training-step and inference time (and peak memory) of the
//! attention variants, measured side by side.
//!
//! Shared machines drift: two runs measured minutes apart can differ by 20% for reasons that have
//! nothing to do with the model. So every variant runs in the same process, on the same batch,
//! in interleaved rounds (round r runs one training step of each variant, then one inference
//! pass of each, in an order that rotates every round), and the reported ratios are medians of
//! per-round ratios against the plain ResNet and against MRLA-B.
//!
//! Peak memory cannot be told apart per variant inside one process, so each variant's is
//! measured in a fresh process of its own (`--memory-of`, run by the benchmark itself).
//!
//! It owns timing and memory measurement and their tables. It drives models and backends from
//! `ela-model` and `ela-train` and the input pipelines from `ela-data`; none of them knows it,
//! and nothing here runs inside a training.
//!
//! - [`results`]: timings, memory, host and the report's tables.
//! - [`step`]: the interleaved training-step and inference rounds.
//! - [`memory`]: peak memory, one variant per process.
//! - [`pytorch`]: the PyTorch reference, run on the same configuration.
//! - [`detect_pytorch`]: the detector's step and inference against torchvision's.
//! - [`retrieval`]: `ela bench-retrieval`, one block's retrieval and value map.
//! - [`data`]: `ela bench-data`, the input pipelines.
//! - [`agreement`]: `ela agree`, one training step on a backend against the CPU's.

pub mod agreement;
pub mod data;
pub mod detect;
pub mod detect_pytorch;
pub mod memory;
pub mod pytorch;
pub mod results;
pub mod retrieval;
pub mod step;

pub use data::*;
pub use memory::*;
pub use pytorch::*;
pub use results::*;
pub use retrieval::*;
pub use step::*;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use ela_model::{Arch, AttentionKind, ElaResNet, ElaResNetConfig, SkipMode, StageLayout};
use serde::{Deserialize, Serialize};

use ela_train::backend::{self, Backend};

/// What to benchmark.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
pub struct BenchConfig {
    /// The task: `classify` (these flags), or `detect` (`ela bench --task detect --help`).
    #[arg(long, value_enum, default_value = "classify")]
    #[serde(skip)]
    pub task: ela_train::runtime::TaskName,
    /// ResNet family: `cifar` (depths 9n + 2) or `imagenet` (depths 18, 34, 50, 101, 152).
    #[arg(long, default_value = "cifar")]
    #[serde(default)]
    pub arch: Arch,
    /// ResNet depths, measured one after the other, e.g. `20,56,110` (CIFAR) or `50,101`
    /// (ImageNet).
    #[arg(
        long = "depths",
        visible_alias = "depth",
        value_delimiter = ',',
        default_value = "20"
    )]
    pub depths: Vec<usize>,
    /// Batch size.
    #[arg(long, visible_alias = "batch", default_value_t = 32)]
    pub batch_size: usize,
    /// Input `C,H,W` (default: 3,32,32 for CIFAR, 3,224,224 for ImageNet).
    #[arg(long, value_parser = parse_shape)]
    pub input: Option<[usize; 3]>,
    /// Classes of the head (default: 100 for CIFAR, 1000 for ImageNet).
    #[arg(long)]
    pub num_classes: Option<usize>,
    /// Blocks ELA skips (0-based over all blocks, e.g. `1,4`; one depth only); default: every
    /// second non-first block of each stage, as EBQM at q = 0.5 tends to leave.
    #[arg(long, value_delimiter = ',')]
    pub skip: Option<Vec<usize>>,
    /// Untimed steps per variant first.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Timed rounds (one training step and one inference pass of every variant per round).
    #[arg(long, default_value_t = 10)]
    pub rounds: usize,
    /// A short run: one warm-up step, three rounds, no memory measurement (overrides --warmup,
    /// --rounds).
    #[arg(long)]
    pub quick: bool,
    /// Do not measure peak memory (one extra process per variant and depth).
    #[arg(long)]
    pub no_memory: bool,
    /// Backend.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: Backend,
    /// Device index.
    #[arg(long, default_value_t = 0)]
    pub device: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the results as JSON to this file (default:
    /// `target/bench/<backend>-<arch>-resnet<depths>-<unix time>.json`).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Then run the PyTorch reference (`bench/pytorch/bench.py`) with this Python (default
    /// `python3`) on the same configuration, and report Burn / PyTorch ratios.
    #[arg(long, num_args = 0..=1, default_missing_value = "python3")]
    pub pytorch: Option<String>,
    /// Measure the peak memory of this one variant in this process and print it as JSON (what
    /// the benchmark runs in a child process per variant).
    #[arg(long, hide = true)]
    #[serde(skip)]
    pub memory_of: Option<String>,
}

impl BenchConfig {
    /// The input shape `[C, H, W]`.
    pub fn input(&self) -> [usize; 3] {
        self.input.unwrap_or(match self.arch {
            Arch::Cifar => [3, 32, 32],
            Arch::Imagenet => [3, 224, 224],
        })
    }

    /// Classes of the head.
    pub fn num_classes(&self) -> usize {
        self.num_classes.unwrap_or(match self.arch {
            Arch::Cifar => 100,
            Arch::Imagenet => 1000,
        })
    }

    /// The block layout of ResNet-`depth` of this family.
    fn layout(&self, depth: usize) -> Result<StageLayout> {
        let (_, blocks) = self.arch.stages(depth)?;
        Ok(StageLayout::new(blocks)?)
    }

    /// Warm-up steps and timed rounds, after `--quick`.
    pub fn schedule(&self) -> (usize, usize) {
        if self.quick {
            (1, 3)
        } else {
            (self.warmup, self.rounds)
        }
    }

    /// Whether peak memory is measured: not with `--quick` or `--no-memory`.
    pub fn measures_memory(&self) -> bool {
        !self.quick && !self.no_memory
    }

    /// Checks the options that do not depend on the depth.
    fn validate(&self) -> Result<()> {
        let (_, rounds) = self.schedule();
        if self.batch_size == 0 || rounds == 0 || self.num_classes() == 0 {
            bail!("--batch-size, --rounds and --num-classes must be at least 1");
        }
        if self.depths.is_empty() {
            bail!("--depths: give at least one depth, e.g. 20,56,110");
        }
        if self.input().contains(&0) {
            bail!(
                "--input {:?}: channels, height and width must be at least 1",
                self.input()
            );
        }
        if self.skip.is_some() && self.depths.len() > 1 {
            bail!(
                "--skip names blocks of one model; with --depths {:?} give one depth, or leave \
                 --skip out for every second non-first block of each stage",
                self.depths
            );
        }
        for &depth in &self.depths {
            self.layout(depth)
                .with_context(|| format!("--depths: {depth} ({} ResNets)", self.arch))?;
        }
        Ok(())
    }

    /// The blocks ELA skips at `depth`, checked against the model's layout.
    fn skipped(&self, depth: usize) -> Result<Vec<usize>> {
        let layout = self.layout(depth)?;
        let skipped = match &self.skip {
            Some(s) => s.clone(),
            None => default_skips(&layout),
        };
        let mut flags = vec![false; layout.num_blocks()];
        for &i in &skipped {
            match flags.get_mut(i) {
                Some(f) => *f = true,
                None => bail!(
                    "--skip: block {i} is outside ResNet-{depth}'s {} blocks",
                    layout.num_blocks()
                ),
            }
        }
        ela_prune::SkipMask::from_flags(&layout, flags)
            .map_err(|e| anyhow::anyhow!("--skip: {e}"))?;
        Ok(skipped)
    }

    /// Where the JSON results go.
    pub fn json_path(&self, unix_seconds: u64) -> PathBuf {
        self.json.clone().unwrap_or_else(|| {
            let depths: Vec<String> = self.depths.iter().map(usize::to_string).collect();
            PathBuf::from("target/bench").join(format!(
                "{}-{}-resnet{}-{unix_seconds}.json",
                self.backend.feature(),
                self.arch,
                depths.join("-")
            ))
        })
    }
}

fn parse_shape(s: &str) -> Result<[usize; 3], String> {
    let v: Vec<usize> = s
        .split(',')
        .map(|p| p.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("'{s}': {e} (expected C,H,W such as 3,32,32)"))?;
    match v.as_slice() {
        [c, h, w] if *c > 0 && *h > 0 && *w > 0 => Ok([*c, *h, *w]),
        _ => Err(format!("'{s}': expected three positive numbers C,H,W")),
    }
}

/// The variants: name, attention, skip mode, whether ELA's skips apply.
const VARIANTS: [(&str, AttentionKind, SkipMode, bool); 5] = [
    ("none", AttentionKind::None, SkipMode::Full, false),
    ("mrla-l", AttentionKind::MrlaL, SkipMode::Full, false),
    ("mrla-b", AttentionKind::MrlaB, SkipMode::Full, false),
    ("ela-full", AttentionKind::MrlaB, SkipMode::Full, true),
    (
        "ela-retrieval",
        AttentionKind::MrlaB,
        SkipMode::Retrieval,
        true,
    ),
];
const PLAIN: usize = 0;
const MRLA_B: usize = 2;

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

/// Every second non-first block of each stage (1, 3, … within the stage).
pub fn default_skips(layout: &StageLayout) -> Vec<usize> {
    (0..layout.num_blocks())
        .filter(|&i| {
            let (_, position) = layout.locate(i).expect("block in layout");
            position % 2 == 1
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_default_skips() {
        assert_eq!(parse_shape("1,28,28"), Ok([1, 28, 28]));
        assert!(parse_shape("1,28").is_err());
        assert!(parse_shape("1,0,28").is_err());
        assert!(parse_shape("a,b,c").is_err());
        // ResNet-56: six blocks per stage; skip positions 1, 3, 5 of each.
        let layout = StageLayout::cifar(56).unwrap();
        assert_eq!(default_skips(&layout), vec![1, 3, 5, 7, 9, 11, 13, 15, 17]);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn ratios_are_medians_of_per_round_ratios() {
        // Five variants, three rounds; round 2 is slow for everyone (a busy machine). Per-round
        // ratios cancel the slow round; ratios of medians would not.
        let times = vec![
            vec![1.0, 1.0, 3.0],  // plain
            vec![2.0, 2.0, 6.0],  // mrla-l
            vec![4.0, 5.0, 12.0], // mrla-b
            vec![2.0, 3.0, 6.0],  // ela-full
            vec![3.0, 3.0, 9.0],  // ela-retrieval
        ];
        let t = timings(&times);
        assert_eq!(t[0].ratio_to_plain, 1.0);
        assert_eq!(t[2].ratio_to_mrla_b, 1.0);
        // ela-full / mrla-b per round: 0.5, 0.6, 0.5 -> 0.5; its medians would give 3/5 = 0.6.
        assert_eq!(t[3].ratio_to_mrla_b, 0.5);
        assert_eq!(t[3].ratio_to_plain, 2.0);
        assert_eq!(t[2].ratio_to_plain, 4.0);
        assert_eq!(
            (t[3].min_seconds, t[3].median_seconds, t[3].max_seconds),
            (2.0, 3.0, 6.0)
        );
    }

    #[test]
    fn results_go_to_target_bench_unless_named() {
        let mut config = BenchConfig {
            task: Default::default(),
            arch: Arch::Cifar,
            depths: vec![20, 56, 110],
            batch_size: 32,
            input: None,
            num_classes: None,
            skip: None,
            warmup: 2,
            rounds: 10,
            quick: false,
            no_memory: false,
            backend: Backend::Cpu,
            device: 0,
            seed: 0,
            json: None,
            pytorch: None,
            memory_of: None,
        };
        assert_eq!(
            config.json_path(1_700_000_000),
            PathBuf::from("target/bench/flex-cifar-resnet20-56-110-1700000000.json")
        );
        assert_eq!(config.schedule(), (2, 10));
        assert_eq!((config.input(), config.num_classes()), ([3, 32, 32], 100));
        config.arch = Arch::Imagenet;
        assert_eq!(
            (config.input(), config.num_classes()),
            ([3, 224, 224], 1000)
        );
        config.input = Some([3, 64, 64]);
        assert_eq!(config.input(), [3, 64, 64]);
        assert!(
            config.validate().is_err(),
            "ResNet-20 is not an ImageNet depth"
        );
        config.depths = vec![50, 101];
        assert!(config.validate().is_ok());
        // ResNet-50's stages hold 3, 4, 6, 3 blocks.
        assert_eq!(config.skipped(50).unwrap(), vec![1, 4, 6, 8, 10, 12, 14]);
        assert!(config.measures_memory());
        config.quick = true;
        assert_eq!(config.schedule(), (1, 3));
        assert!(!config.measures_memory());
        config.quick = false;
        config.no_memory = true;
        assert!(!config.measures_memory());
        config.json = Some(PathBuf::from("x.json"));
        assert_eq!(config.json_path(1), PathBuf::from("x.json"));
    }
}

//! `cargo xtask`: the project's entry points. Each task builds the `ela` binary (crate
//! `ela-cli`) in release mode with the cargo feature of the requested backend and runs it, so
//! `cargo xtask train --backend cuda` needs nothing but a CUDA machine.

mod ela;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "ELA tasks: fetch datasets, train, inspect, replay pruning decisions"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

/// Every task passes its arguments through to `ela <task>`; `cargo xtask <task> --help` shows
/// them.
#[derive(Subcommand)]
enum Task {
    /// Train a ResNet (default: ELA ResNet-20 on the embedded MNIST sample, CPU backend).
    #[command(disable_help_flag = true)]
    Train(PassThrough),
    /// Print a model's block layout; the last line is `parameters: N`.
    #[command(disable_help_flag = true)]
    Summary(PassThrough),
    /// Replay a pruning decision from a KL log (JSON array or a run's pruning.json).
    #[command(disable_help_flag = true)]
    PrunePlan(PassThrough),
    /// One eval-mode forward pass of a safetensors input through safetensors weights.
    #[command(disable_help_flag = true)]
    Forward(PassThrough),
    /// Download, verify and unpack a dataset: cifar10, cifar100 or mnist [--dir DIR]; prepare
    /// imagenet from the official archives (--from DIR).
    #[command(disable_help_flag = true)]
    Fetch(PassThrough),
    /// Training-step and inference time and peak memory of none / MRLA-L / MRLA-B / ELA per
    /// depth, interleaved in one process; `--pytorch` measures the PyTorch reference beside it.
    #[command(disable_help_flag = true)]
    Bench(PassThrough),
    /// Images per second of the CIFAR input pipeline, per loader worker count.
    #[command(disable_help_flag = true)]
    BenchData(PassThrough),
    /// One block's MRLA-B retrieval time for t = 1 … 18 memory entries, and its value map.
    #[command(disable_help_flag = true)]
    BenchRetrieval(PassThrough),
    /// One training step of ResNet-20 (plain, MRLA-B, ELA) on a backend against the CPU's.
    #[command(disable_help_flag = true)]
    Agree(PassThrough),
    /// Write report.md with PNG figures of one or more run directories.
    #[command(disable_help_flag = true)]
    Report(PassThrough),
    /// Run every row of a paper table (experiments/TABLE) for several seeds; results table.
    #[command(disable_help_flag = true)]
    Reproduce(PassThrough),
    /// Score COCO detections (--dt) against ground truth (--gt), --iou-type bbox|segm: the 12
    /// COCOeval statistics as one JSON object.
    #[command(disable_help_flag = true)]
    EvalCoco(PassThrough),
    /// Detect objects in one image with a trained detector (--weights RUN --image IMG
    /// [--out OUT.png]).
    #[command(disable_help_flag = true)]
    Detect(PassThrough),
}

#[derive(clap::Args)]
struct PassThrough {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

fn main() -> Result<()> {
    let (name, args) = match Cli::parse().task {
        Task::Train(a) => ("train", a.args),
        Task::Summary(a) => ("summary", a.args),
        Task::PrunePlan(a) => ("prune-plan", a.args),
        Task::Forward(a) => ("forward", a.args),
        Task::Fetch(a) => ("fetch", a.args),
        Task::Bench(a) => ("bench", a.args),
        Task::BenchData(a) => ("bench-data", a.args),
        Task::BenchRetrieval(a) => ("bench-retrieval", a.args),
        Task::Agree(a) => ("agree", a.args),
        Task::Report(a) => ("report", a.args),
        Task::Reproduce(a) => ("reproduce", a.args),
        Task::EvalCoco(a) => ("eval-coco", a.args),
        Task::Detect(a) => ("detect", a.args),
    };
    let backend = ela::backend_of(&args)?;
    let binary = ela::build(backend)?;
    ela::run(&binary, name, &ela::ela_args(&args, backend))
}

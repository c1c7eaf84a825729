//! `ela`: train ELA ResNets and detectors, inspect models, replay pruning decisions, evaluate,
//! report, reproduce the paper's tables. Normally reached through `cargo xtask <command>`,
//! which builds it for the chosen backend.

use anyhow::{Context, Result};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use ela_bench::{BenchConfig, DataBenchConfig, RetrievalBenchConfig};
use ela_cli::args::{
    AgreeArgs, DetectArgs, EvalArgs, EvalCocoArgs, FetchArgs, ForwardArgs, ModelArgs,
    PrunePlanArgs, ReportArgs,
};
use ela_cli::commands;
use ela_cli::front::{TASK_SHAPED, command_for, task_of};
use ela_cli::reproduce::ReproduceArgs;
use ela_cli::training::Launch;
use ela_records::TaskKind;
use ela_train::classify::TrainConfig;

#[derive(Parser)]
#[command(
    name = "ela",
    version,
    about = "Efficient Layer Attention: training and tools",
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model on the training runtime (default: ELA ResNet-20 on the embedded MNIST
    /// sample, CPU backend); `--task detect` trains a Faster or Mask R-CNN instead
    /// (`ela train --task detect --help`).
    #[command(allow_negative_numbers = true)]
    Train(Box<TrainConfig>),
    /// Print a model's block layout; the last line is `parameters: N`.
    Summary(ModelArgs),
    /// List the registered models: canonical name, family, depth, block, attention.
    Models,
    /// Replay a pruning decision from a KL log with any method and parameters.
    PrunePlan(PrunePlanArgs),
    /// One eval-mode forward pass of a safetensors input through safetensors weights.
    Forward(ForwardArgs),
    /// Download, verify and unpack a dataset (resumable; a complete dataset is left alone).
    Fetch(FetchArgs),
    /// Training-step and inference time and peak memory of none / MRLA-L / MRLA-B / ELA per
    /// depth, interleaved in one process; `--task detect` benchmarks the detector's step
    /// (`ela bench --task detect --help`).
    Bench(BenchConfig),
    /// Images per second of the CIFAR input pipeline, per loader worker count.
    BenchData(DataBenchConfig),
    /// One block's MRLA-B retrieval (forward, forward + backward) for t = 1 … 18 memory entries,
    /// then its depthwise value map (forward, and backward by which gradients are needed).
    BenchRetrieval(RetrievalBenchConfig),
    /// One training step of ResNet-20 (plain, MRLA-B, ELA) on a backend against the CPU's.
    Agree(AgreeArgs),
    /// Write report.md with PNG figures of runs of one task (curves, KL heatmap, mapping,
    /// attention maps or COCO statistics), comparing several side by side.
    Report(ReportArgs),
    /// Run every row of a paper table for several seeds; write experiments/results/TABLE.md.
    Reproduce(ReproduceArgs),
    /// Score COCO detections against COCO ground truth: pycocotools' 12 statistics as one JSON
    /// object (AP AP50 AP75 APs APm APl AR1 AR10 AR100 ARs ARm ARl).
    EvalCoco(EvalCocoArgs),
    /// Detect objects in one image with a trained detector or a torchvision one (--arch):
    /// COCO-format detections (JSON) and, with --out, a picture with boxes, class names, scores
    /// and (Mask R-CNN) masks.
    Detect(DetectArgs),
    /// Score a checkpoint on a dataset: a detector's 12 COCO box (and mask) statistics on a
    /// validation split, a classifier's top-1, top-5 and loss; one JSON object.
    Eval(EvalArgs),
    /// `ela train --task detect` (built from the command line, not a subcommand of its own).
    #[command(skip)]
    TrainDetect(Box<ela_detect_train::DetectTrainArgs>),
    /// `ela bench --task detect`.
    #[command(skip)]
    BenchDetect(ela_bench::detect::DetectBenchConfig),
}

/// The command line, parsed for its task: config files expanded against that task's flags.
fn parse(args: Vec<String>) -> Result<(Command, bool)> {
    let (task, explicit) = task_of(&args)?;
    let command = command_for(Cli::command(), task);
    let args = ela_train::config::expand(args, &command)?;
    let matches = command
        .try_get_matches_from(&args)
        .unwrap_or_else(|e| e.exit());
    let parsed = match (task, matches.subcommand()) {
        (TaskKind::Detect, Some((name, m))) if TASK_SHAPED.contains(&name) => match name {
            "train" => Command::TrainDetect(Box::new(
                ela_detect_train::DetectTrainArgs::from_arg_matches(m)?,
            )),
            _ => Command::BenchDetect(ela_bench::detect::DetectBenchConfig::from_arg_matches(m)?),
        },
        _ => {
            Cli::from_arg_matches(&matches)
                .context("parsing the command line")?
                .command
        }
    };
    Ok((parsed, explicit))
}

fn main() {
    let (command, explicit) = match parse(std::env::args().collect()) {
        Ok(parsed) => parsed,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(2);
        }
    };
    let result = match command {
        Command::Train(config) => commands::run_train(&Launch::Classify(config), explicit),
        Command::TrainDetect(args) => commands::run_train(&Launch::Detect(args), explicit),
        Command::Summary(args) => commands::summary(&args),
        Command::Models => {
            commands::list_models();
            Ok(())
        }
        Command::PrunePlan(args) => commands::prune_plan(&args),
        Command::Forward(args) => commands::forward(&args),
        Command::Fetch(args) => commands::run_fetch(&args),
        Command::Bench(config) => commands::run_bench(&config),
        Command::BenchDetect(config) => commands::run_bench_detect(&config),
        Command::BenchData(config) => commands::run_bench_data(&config),
        Command::BenchRetrieval(config) => commands::run_bench_retrieval(&config),
        Command::Agree(args) => commands::run_agree(&args),
        Command::Report(args) => commands::run_report(&args),
        Command::Reproduce(args) => commands::run_reproduce(&args),
        Command::EvalCoco(args) => commands::eval_coco(&args),
        Command::Detect(args) => commands::detect(&args),
        Command::Eval(args) => ela_cli::eval::run_eval(&args),
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

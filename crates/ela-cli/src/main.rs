//! `ela`: train ELA ResNets, inspect models, replay pruning decisions, run a forward pass.
//! Normally reached through `cargo xtask <command>`, which builds it for the chosen backend.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use clap::{CommandFactory, Parser, Subcommand};
use ela_bench::{self as bench, BenchConfig, DataBenchConfig, RetrievalBenchConfig};
use ela_cli::reproduce::{ReproduceArgs, reproduce};
use ela_cli::training;
use ela_data::fetch::{FetchName, Fetched, fetch};
use ela_model::registry::ModelEntry;
use ela_model::{Arch, ElaResNetConfig};
use ela_records::parse_kl_log;
use ela_report::{Run, write_report};
use ela_train::backend::{self, Backend};
use ela_train::train::{Method, PruneArgs, TrainConfig};
use serde_json::json;

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
    /// Train a ResNet (default: ELA ResNet-20 on the embedded MNIST sample, CPU backend);
    /// `--task detect` trains a Faster R-CNN instead (`ela train --task detect --help`).
    #[command(allow_negative_numbers = true)]
    Train(Box<TrainConfig>),
    /// Train a Faster R-CNN with FPN (what `ela train --task detect` runs; default: ELA
    /// ResNet-18 backbone on the offline digit set, CPU backend).
    #[command(allow_negative_numbers = true, hide = true)]
    TrainDetect(Box<ela_detect_train::DetectTrainArgs>),
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
    /// depth, interleaved in one process.
    Bench(BenchConfig),
    /// Images per second of the CIFAR input pipeline, per loader worker count.
    BenchData(DataBenchConfig),
    /// One block's MRLA-B retrieval (forward, forward + backward) for t = 1 … 18 memory entries,
    /// then its depthwise value map (forward, and backward by which gradients are needed).
    BenchRetrieval(RetrievalBenchConfig),
    /// One training step of ResNet-20 (plain, MRLA-B, ELA) on a backend against the CPU's.
    Agree(AgreeArgs),
    /// Write report.md with PNG figures (curves, KL heatmap, mapping, attention maps) of runs.
    Report(ReportArgs),
    /// Run every row of a paper table for several seeds; write experiments/results/TABLE.md.
    Reproduce(ReproduceArgs),
    /// Score COCO detections against COCO ground truth: pycocotools' 12 statistics as one JSON
    /// object (AP AP50 AP75 APs APm APl AR1 AR10 AR100 ARs ARm ARl).
    EvalCoco(EvalCocoArgs),
    /// Detect objects in one image with a trained detector: COCO-format detections (JSON) and,
    /// with --out, a picture with boxes, class names, scores and (Mask R-CNN) masks.
    Detect(DetectArgs),
    /// What `ela bench --task detect` runs: the detector's training step for the plain, MRLA-B
    /// and ELA backbones side by side, and its RoIAlign.
    #[command(hide = true)]
    BenchDetect(ela_bench::detect::DetectBenchConfig),
}

#[derive(clap::Args)]
struct DetectArgs {
    /// A detection run's directory, or a model file (`model.bpk`, `checkpoint/model-K.bpk`)
    /// inside one.
    #[arg(long)]
    weights: PathBuf,
    /// The image (PNG or JPEG).
    #[arg(long)]
    image: PathBuf,
    /// Write the picture with the detections here (PNG).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write the detections here instead of printing them.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The picture shows detections scoring at least this.
    #[arg(long, default_value_t = 0.3)]
    show_threshold: f32,
    /// The image id written in the detections.
    #[arg(long, default_value_t = 0)]
    image_id: u64,
    /// Backend.
    #[arg(long, value_enum, default_value = "cpu")]
    backend: Backend,
    /// Device index.
    #[arg(long, default_value_t = 0)]
    device: usize,
}

#[derive(clap::Args)]
struct EvalCocoArgs {
    /// COCO instances JSON (images, annotations, categories).
    #[arg(long)]
    gt: PathBuf,
    /// COCO results JSON: an array of {image_id, category_id, bbox | segmentation, score}.
    #[arg(long)]
    dt: PathBuf,
    /// Compare boxes (bbox) or masks (segm).
    #[arg(long, default_value = "bbox")]
    iou_type: ela_detect::IouType,
}

#[derive(clap::Args)]
struct AgreeArgs {
    /// The backend under test.
    #[arg(long, value_enum, default_value = "cpu")]
    backend: Backend,
    /// Its device index.
    #[arg(long, default_value_t = 0)]
    device: usize,
    /// Compare with the CPU's values in this folder (made by --write-reference, on any
    /// machine) instead of computing them in this process.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Only compute the CPU's values of every case and write them into this folder.
    #[arg(long, conflicts_with = "reference")]
    write_reference: Option<PathBuf>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// Run directories; with several, the report compares them.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Report directory (default: `report` inside the first run directory).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct FetchArgs {
    /// Dataset.
    #[arg(value_enum)]
    dataset: FetchName,
    /// Target directory; the dataset lands in DIR/<dataset> (where `train` looks by default).
    #[arg(long, default_value = "data")]
    dir: PathBuf,
    /// Base URL of a mirror holding the same file names.
    #[arg(long)]
    mirror: Option<String>,
    /// ImageNet: the folder holding ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar and
    /// ILSVRC2012_devkit_t12.tar.gz, as downloaded from image-net.org.
    #[arg(long)]
    from: Option<PathBuf>,
    /// ImageNet: accept archives holding a part of ILSVRC2012 (the final count check then only
    /// requires that every image was placed).
    #[arg(long)]
    subset: bool,
}

#[derive(clap::Args)]
struct ModelArgs {
    /// A registered model (see `ela models`): sets --arch, --depth and --attention.
    #[arg(long)]
    model: Option<String>,
    /// ResNet family: cifar or imagenet.
    #[arg(long, default_value = "cifar")]
    arch: Arch,
    /// ResNet depth: 9n + 2 for cifar; 18, 34, 50, 101 or 152 for imagenet.
    #[arg(long, default_value_t = 20)]
    depth: usize,
    /// Layer attention (ela builds MRLA-B).
    #[arg(long, value_enum, default_value = "ela")]
    attention: Method,
    /// Classes of the head.
    #[arg(long, default_value_t = 10)]
    num_classes: usize,
    /// Input channels.
    #[arg(long, default_value_t = 3)]
    in_channels: usize,
    /// Channels per attention head. Default: the official code's (32 for ImageNet MRLA-L, 16
    /// otherwise).
    #[arg(long)]
    dim_per_head: Option<usize>,
}

impl ModelArgs {
    /// The registry's configuration (the official code's head size, stem and last-BN
    /// initialization), with --in-channels and --dim-per-head applied.
    fn config(&self) -> Result<ElaResNetConfig> {
        let entry = match &self.model {
            Some(name) => ela_model::registry::find(name).context("--model")?,
            None => ModelEntry::new(self.arch, self.depth, self.attention.attention(), false),
        };
        let config = entry
            .config(self.num_classes)
            .with_in_channels(self.in_channels);
        Ok(match self.dim_per_head {
            Some(d) => config.with_dim_per_head(d),
            None => config,
        })
    }
}

#[derive(clap::Args)]
struct PrunePlanArgs {
    /// KL log: a JSON array of per-block scores (null where none), or a run's pruning.json.
    #[arg(long)]
    kl: PathBuf,
    /// With a pruning.json: which window (1-based; default: the last).
    #[arg(long)]
    window: Option<usize>,
    #[command(flatten)]
    prune: PruneArgs,
}

#[derive(clap::Args)]
struct ForwardArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Weights (safetensors, PyTorch names).
    #[arg(long)]
    weights: PathBuf,
    /// Input safetensors holding `input` ([B, C, H, W], f32).
    #[arg(long)]
    input: PathBuf,
    /// Output safetensors to write `logits` to.
    #[arg(long)]
    output: PathBuf,
    /// Blocks to skip (overrides the flags stored with the weights), e.g. `1,3`.
    #[arg(long, value_delimiter = ',')]
    skip: Option<Vec<usize>>,
    /// Backend.
    #[arg(long, value_enum, default_value = "cpu")]
    backend: Backend,
}

fn main() {
    let args = match ela_train::config::expand(std::env::args().collect(), &Cli::command()) {
        Ok(args) => args,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(2);
        }
    };
    let args = match task_command(args) {
        Ok(args) => args,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(2);
        }
    };
    let cli = Cli::parse_from(args);
    let result = match cli.command {
        Command::Train(config) => run_train(&config),
        Command::TrainDetect(args) => run_train_detect(&args),
        Command::Summary(args) => summary(&args),
        Command::Models => {
            list_models();
            Ok(())
        }
        Command::PrunePlan(args) => prune_plan(&args),
        Command::Forward(args) => forward(&args),
        Command::Fetch(args) => run_fetch(&args),
        Command::Bench(config) => run_bench(&config),
        Command::BenchData(config) => run_bench_data(&config),
        Command::BenchRetrieval(config) => run_bench_retrieval(&config),
        Command::Agree(args) => run_agree(&args),
        Command::Report(args) => run_report(&args),
        Command::Reproduce(args) => {
            reproduce(&args).map(|out| println!("results: {}", out.display()))
        }
        Command::EvalCoco(args) => eval_coco(&args),
        Command::Detect(args) => detect(&args),
        Command::BenchDetect(config) => {
            ela_bench::detect::run_detect(&config).map(|report| print!("{}", report.table()))
        }
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

/// `ela train --task detect …` becomes `ela train-detect …`, `ela bench --task detect …`
/// `ela bench-detect …`; `--task classify` is the default.
fn task_command(mut args: Vec<String>) -> Result<Vec<String>> {
    let detect_command = match args.get(1).map(String::as_str) {
        Some("train") => "train-detect",
        Some("bench") => "bench-detect",
        _ => return Ok(args),
    };
    let mut task = None;
    let mut i = 2;
    while i < args.len() {
        if let Some(value) = args[i].strip_prefix("--task=") {
            task = Some(value.to_string());
            args.remove(i);
        } else if args[i] == "--task" {
            let value = args
                .get(i + 1)
                .context("--task needs a value: classify or detect")?;
            task = Some(value.clone());
            args.drain(i..i + 2);
        } else {
            i += 1;
        }
    }
    match task.as_deref() {
        None | Some("classify") => {}
        Some("detect") => args[1] = detect_command.into(),
        Some(other) => bail!("--task: '{other}' is not one of classify, detect"),
    }
    Ok(args)
}

fn run_train_detect(args: &ela_detect_train::DetectTrainArgs) -> Result<()> {
    let summary = match &args.resume {
        Some(dir) => ela_detect_train::resume(dir)?,
        None => ela_detect_train::train(args)?,
    };
    if !summary.epochs.is_empty() {
        let report = ela_report::write_detection_report(&summary.dir, &summary.dir.join("report"))?;
        println!("report: {}", report.markdown.display());
    }
    if let Some(last) = summary.epochs.last() {
        println!(
            "finished {}: epoch {} bbox AP {:.4} AP50 {:.4}; {} parameters ({} train)",
            summary.dir.display(),
            last.epoch,
            last.coco.ap,
            last.coco.ap50,
            summary.parameters,
            summary.trainable
        );
    }
    Ok(())
}

fn detect(args: &DetectArgs) -> Result<()> {
    let device = backend::device(args.backend, args.device)?;
    let detector = ela_detect_train::infer::TrainedDetector::load(&args.weights, &device)?;
    let (image, results) = detector.detect_file(&args.image, args.image_id, &device)?;
    match &args.json {
        Some(path) => {
            ela_records::write_json(path, &results)?;
            println!("{} detections: {}", results.len(), path.display());
        }
        None => println!("{}", serde_json::to_string(&results)?),
    }
    if let Some(out) = &args.out {
        let boxes: Vec<ela_report::LabeledBox> = results
            .iter()
            .filter(|r| r.score >= args.show_threshold)
            .map(|r| {
                let class = detector
                    .categories
                    .iter()
                    .position(|c| c.id == r.category_id)
                    .unwrap_or(0);
                let [x, y, w, h] = r.bbox;
                let mask = r.segmentation.as_ref().map(|rle| {
                    let seg = ela_data::coco::Segmentation::Rle {
                        counts: ela_data::coco::RleCounts::Compressed(rle.counts.clone()),
                        size: rle.size,
                    };
                    ela_data::masks::BitMask::from_segmentation(&seg, rle.size[0], rle.size[1])
                        .map(|m| m.data)
                        .map_err(|e| anyhow::anyhow!("a detection's mask: {e}"))
                });
                Ok(ela_report::LabeledBox {
                    bbox: [x, y, x + w, y + h],
                    class,
                    label: detector.categories[class].name.clone(),
                    score: r.score,
                    mask: mask.transpose()?,
                })
            })
            .collect::<Result<_>>()?;
        ela_report::draw_detections(&image, &boxes, out)?;
        eprintln!("{} boxes drawn: {}", boxes.len(), out.display());
    }
    Ok(())
}

fn eval_coco(args: &EvalCocoArgs) -> Result<()> {
    let stats = ela_detect::evaluate_files(&args.gt, &args.dt, args.iou_type)?;
    println!("{}", serde_json::to_string(&stats)?);
    Ok(())
}

fn run_bench(config: &BenchConfig) -> Result<()> {
    if let Some(name) = &config.memory_of {
        let memory = bench::measure_memory(config, name)?;
        println!("{}", serde_json::to_string(&memory)?);
        return Ok(());
    }
    let report = bench::run(config)?;
    print!("{}", report.table());
    let path = config.json_path(report.unix_seconds);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--json: cannot create {}", dir.display()))?;
    }
    ela_records::write_json(&path, &report)?;
    println!("\nwritten to {}", path.display());
    Ok(())
}

fn run_bench_retrieval(config: &RetrievalBenchConfig) -> Result<()> {
    let rows = bench::run_retrieval(config)?;
    let torch = match &config.pytorch {
        Some(python) => Some(bench::run_retrieval_pytorch(config, python)?),
        None => None,
    };
    println!(
        "MRLA-B retrieval, batch {}, {} channels, {}x{}, {:?}; PyTorch (the official code's \
         concatenating form) measured right after\n\n\
         | entries t | Burn fwd ms | Burn fwd + bwd ms | PyTorch fwd ms | PyTorch fwd + bwd ms | \
         Burn / PyTorch (fwd + bwd) |\n|---|---|---|---|---|---|",
        config.batch_size, config.channels, config.size, config.size, config.backend
    );
    for (i, r) in rows.iter().enumerate() {
        let t = torch.as_ref().and_then(|t| t.get(i));
        let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.2}", 1e3 * v));
        println!(
            "| {} | {:.2} | {:.2} | {} | {} | {} |",
            r.entries,
            1e3 * r.forward_seconds,
            1e3 * r.forward_backward_seconds,
            ms(t.map(|t| t.forward_seconds)),
            ms(t.map(|t| t.forward_backward_seconds)),
            t.map_or("-".into(), |t| format!(
                "{:.2}",
                r.forward_backward_seconds / t.forward_backward_seconds
            ))
        );
    }
    let value = bench::run_value_map(config)?;
    let torch = match &config.pytorch {
        Some(python) => Some(bench::run_value_map_pytorch(config, python)?),
        None => None,
    };
    println!(
        "\nThe block's depthwise 3x3 value map at the same shape (loss sum(v^2)), medians of {}\n\n\
         | pass | Burn ms | PyTorch ms | Burn / PyTorch |\n|---|---|---|---|",
        config.reps
    );
    let theirs = torch.map(|t| t.rows());
    for (i, (name, ours)) in value.rows().into_iter().enumerate() {
        let theirs = theirs.map(|t| t[i].1);
        println!(
            "| {name} | {:.2} | {} | {} |",
            1e3 * ours,
            theirs.map_or("-".into(), |t| format!("{:.2}", 1e3 * t)),
            theirs.map_or("-".into(), |t| format!("{:.2}", ours / t)),
        );
    }
    Ok(())
}

fn run_bench_data(config: &DataBenchConfig) -> Result<()> {
    println!("| stage | workers | images/s |\n|---|---|---|");
    for row in bench::run_data(config)? {
        println!(
            "| {} | {} | {:.0} |",
            row.stage, row.workers, row.images_per_second
        );
    }
    Ok(())
}

fn run_agree(args: &AgreeArgs) -> Result<()> {
    if let Some(dir) = &args.write_reference {
        ela_bench::agreement::write_reference(dir)?;
        println!("CPU reference: {}", dir.display());
        return Ok(());
    }
    let results =
        ela_bench::agreement::check(args.backend, args.device, args.reference.as_deref())?;
    for r in &results {
        println!("{r}");
    }
    if let Some(path) = &args.json {
        ela_records::write_json(path, &results)?;
    }
    if let Some(bad) = results.iter().find(|r| !r.agrees) {
        bail!(
            "backend '{}' disagrees with the CPU: {bad}",
            format!("{:?}", args.backend).to_lowercase()
        );
    }
    Ok(())
}

fn run_report(args: &ReportArgs) -> Result<()> {
    if let [dir] = args.runs.as_slice()
        && ela_records::is_detection_run(dir)
    {
        let out = args.out.clone().unwrap_or_else(|| dir.join("report"));
        let report = ela_report::write_detection_report(dir, &out)?;
        println!(
            "report: {} ({} figures)",
            report.markdown.display(),
            report.figures.len()
        );
        return Ok(());
    }
    let runs = args
        .runs
        .iter()
        .map(|d| Run::load(d))
        .collect::<Result<Vec<_>>>()?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.runs[0].join("report"));
    let report = write_report(&runs, &out)?;
    println!(
        "report: {} ({} figures)",
        report.markdown.display(),
        report.figures.len()
    );
    Ok(())
}

fn run_fetch(args: &FetchArgs) -> Result<()> {
    let fetched = match (args.dataset.source(args.mirror.as_deref()), &args.from) {
        (Some(source), None) => fetch(&source, &args.dir, true)?,
        (Some(_), Some(_)) => bail!(
            "--from is for imagenet only; {:?} is downloaded",
            args.dataset
        ),
        (None, Some(from)) => {
            ela_records::guard::refuse_input_inside_output(
                ("--dir", &args.dir.join("imagenet")),
                ("--from", from),
            )?;
            let options = ela_data::ilsvrc::PrepareOptions {
                subset: args.subset,
                progress: true,
            };
            ela_data::ilsvrc::prepare(from, &args.dir, options)?
        }
        (None, None) => bail!(
            "ImageNet cannot be downloaded without an account: download {}, {} and {} from \
             https://image-net.org (ILSVRC2012) into one folder DIR and run `fetch imagenet \
             --from DIR`",
            ela_data::ilsvrc::TRAIN_TAR,
            ela_data::ilsvrc::VAL_TAR,
            ela_data::ilsvrc::DEVKIT
        ),
    };
    match fetched {
        Fetched::AlreadyComplete(dir) => println!("{} is complete; nothing to do", dir.display()),
        Fetched::Installed(dir) => println!("{} is ready", dir.display()),
    }
    Ok(())
}

fn run_train(config: &TrainConfig) -> Result<()> {
    let finished = training::run(config)?;
    let s = &finished.summary;
    println!("skipped blocks: {:?}", s.skipped);
    println!("test accuracy: {:.2}%", s.test_acc);
    println!("run directory: {}", s.run_dir.display());
    if let Some(report) = &finished.report {
        println!("report: {}", report.display());
    }
    Ok(())
}

fn list_models() {
    println!(
        "{:<24} {:<9} {:>5}  {:<10} attention",
        "name", "family", "depth", "block"
    );
    for e in ela_model::registry::all() {
        let block = e.arch.stages(e.depth).map_or("?", |(kind, _)| match kind {
            ela_model::BlockKind::Basic => "basic",
            ela_model::BlockKind::Bottleneck => "bottleneck",
        });
        let attention = if e.ela {
            "ela (mrla-b, pruned)".to_string()
        } else {
            e.attention.to_string()
        };
        println!(
            "{:<24} {:<9} {:>5}  {:<10} {attention}",
            e.name, e.arch, e.depth, block
        );
    }
}

fn summary(args: &ModelArgs) -> Result<()> {
    let device = backend::device(Backend::Cpu, 0)?;
    let model = args.config()?.init(&device)?;
    println!("{}", model.summary());
    Ok(())
}

/// Per-block scores from a KL log: a plain array, or one window of a pruning.json.
fn read_kl_log(path: &Path, window: Option<usize>) -> Result<Vec<Option<f64>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_kl_log(path, &text, window)
}

fn prune_plan(args: &PrunePlanArgs) -> Result<()> {
    let scores = read_kl_log(&args.kl, args.window)?;
    let method = args.prune.method()?;
    let decision = method
        .decide(&scores)
        .with_context(|| format!("scores in {}", args.kl.display()))?;
    let out = json!({
        "method": method,
        "kl": scores,
        "quantile": decision.quantile,
        "normalized": decision.normalized,
        "mapped": decision.mapped,
        "skip": decision.skip,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn forward(args: &ForwardArgs) -> Result<()> {
    ela_records::guard::refuse_overwriting_inputs(
        ("--output", &args.output),
        &[("--weights", &args.weights), ("--input", &args.input)],
    )?;
    let device = backend::device(args.backend, 0)?;
    let mut model = args.model.config()?.init(&device)?;
    let report = model.load_safetensors(&args.weights, true)?;
    if let Some(skip) = &args.skip {
        let n = model.layout().num_blocks();
        let mut flags = vec![false; n];
        for &i in skip {
            *flags
                .get_mut(i)
                .with_context(|| format!("--skip {i}: the model has {n} blocks"))? = true;
        }
        model.set_skip_flags(&flags).context("--skip")?;
    }
    let model = model.valid();
    let bytes = std::fs::read(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let tensors = safetensors::SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{} is not a valid safetensors file", args.input.display()))?;
    let view = tensors
        .tensor("input")
        .with_context(|| format!("{} has no tensor named 'input'", args.input.display()))?;
    let shape: [usize; 4] = view.shape().try_into().map_err(|_| {
        anyhow::anyhow!(
            "{}: 'input' has shape {:?}, expected [B, C, H, W]",
            args.input.display(),
            view.shape()
        )
    })?;
    if view.dtype() != safetensors::Dtype::F32 {
        bail!(
            "{}: 'input' is {:?}, expected F32",
            args.input.display(),
            view.dtype()
        );
    }
    if shape[1] != model.in_channels() {
        bail!(
            "{}: 'input' has {} channels, the model takes {} (--in-channels)",
            args.input.display(),
            shape[1],
            model.in_channels()
        );
    }
    model
        .check_input(&shape)
        .with_context(|| format!("{}: 'input'", args.input.display()))?;
    let values: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    let input = Tensor::<4>::from_data(TensorData::new(values, shape), &device);
    let logits = model.forward(input);
    let dims = logits.dims();
    let data: Vec<f32> = logits
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, dims.to_vec(), &raw)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let out =
        safetensors::serialize([("logits", view)], None).map_err(|e| anyhow::anyhow!("{e}"))?;
    ela_records::write_atomic(&args.output, &out)?;
    eprintln!(
        "forward: {} tensors loaded from {}, skip flags {:?}, logits {:?} -> {}",
        report.applied,
        args.weights.display(),
        model.skip_flags(),
        dims,
        args.output.display()
    );
    Ok(())
}

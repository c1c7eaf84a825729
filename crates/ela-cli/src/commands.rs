//! One function per command of the `ela` binary: each checks what it reads against what it
//! writes (`ela_records::guard`) before it reads or writes anything, then runs the libraries.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use ela_bench::{self as bench, BenchConfig, DataBenchConfig, RetrievalBenchConfig};
use ela_data::fetch::{Fetched, fetch};
use ela_records::guard::Io;
use ela_records::parse_kl_log;
use ela_report::{Run, write_report};
use ela_train::backend::{self, Backend};
use ela_train::runtime::TaskName;
use serde_json::json;

use crate::args::{
    AgreeArgs, DetectArgs, EvalCocoArgs, FetchArgs, ForwardArgs, ModelArgs, PrunePlanArgs,
    ReportArgs,
};
use crate::training::{self, Launch};

/// `(flag, path)` of an optional output.
fn outputs<'a>(
    path: &'a Option<PathBuf>,
    flag: &'a str,
) -> impl Iterator<Item = (&'a str, &'a Path)> {
    path.iter().map(move |p| (flag, p.as_path()))
}

/// `ela detect`: one image through a trained detector.
pub fn detect(args: &DetectArgs) -> Result<()> {
    let device = backend::device(args.backend, args.device)?;
    let detector = trained_detector(&args.weights, args.arch, &device)?;
    outputs(&args.out, "--out")
        .chain(outputs(&args.json, "--json"))
        .fold(Io::new(), |io, (flag, path)| io.writes(flag, path))
        .reads_all("--weights", detector.files.iter().map(PathBuf::as_path))
        .reads("--image", &args.image)
        .check()?;
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

/// A detector to run: a run of ours, or torchvision's `arch` with its `state_dict`.
fn trained_detector(
    weights: &Path,
    arch: Option<ela_detect_train::torchvision::TorchvisionArch>,
    device: &Device,
) -> Result<ela_detect_train::infer::TrainedDetector> {
    use ela_detect_train::infer::TrainedDetector;
    match arch {
        Some(arch) => TrainedDetector::torchvision(arch, weights, device),
        None => TrainedDetector::load(weights, device),
    }
}

/// `ela eval-coco`.
pub fn eval_coco(args: &EvalCocoArgs) -> Result<()> {
    let stats = ela_detect::evaluate_files(&args.gt, &args.dt, args.iou_type)?;
    println!("{}", serde_json::to_string(&stats)?);
    Ok(())
}

/// `ela bench` (classification).
pub fn run_bench(config: &BenchConfig) -> Result<()> {
    if let Some(name) = &config.memory_of {
        let memory = bench::measure_memory(config, name)?;
        println!("{}", serde_json::to_string(&memory)?);
        return Ok(());
    }
    if let Some(path) = &config.json {
        Io::new().writes("--json", path).check()?;
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

/// `ela bench --task detect`: the backbones side by side; with `--pytorch`, then ours against
/// torchvision's detector.
pub fn run_bench_detect(config: &ela_bench::detect::DetectBenchConfig) -> Result<()> {
    let report = ela_bench::detect::run_detect(config)?;
    print!("{}", report.table());
    if let Some(python) = &config.pytorch {
        let comparison = ela_bench::detect_pytorch::run_against_torchvision(config, python)?;
        print!("\n{}", comparison.table());
    }
    Ok(())
}

/// `ela bench-retrieval`.
pub fn run_bench_retrieval(config: &RetrievalBenchConfig) -> Result<()> {
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

/// `ela bench-data`.
pub fn run_bench_data(config: &DataBenchConfig) -> Result<()> {
    println!("| stage | workers | images/s |\n|---|---|---|");
    for row in bench::run_data(config)? {
        println!(
            "| {} | {} | {:.0} |",
            row.stage, row.workers, row.images_per_second
        );
    }
    Ok(())
}

/// `ela agree`.
pub fn run_agree(args: &AgreeArgs) -> Result<()> {
    let mut io = Io::new();
    if let Some(dir) = &args.reference {
        io = io.reads("--reference", dir);
    }
    if let Some(dir) = &args.write_reference {
        io = io.fills("--write-reference", dir);
    }
    if let Some(path) = &args.json {
        io = io.writes("--json", path);
    }
    io.check()?;
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

/// `ela report`: the report of runs of one task.
pub fn run_report(args: &ReportArgs) -> Result<()> {
    let runs = args
        .runs
        .iter()
        .map(|d| Run::load(d))
        .collect::<Result<Vec<_>>>()?;
    if let Some(TaskName(task)) = args.task
        && let Some(other) = runs.iter().find(|r| r.task != task)
    {
        bail!(
            "--task {task}: {} holds a {} run",
            other.dir.display(),
            other.task
        );
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.runs[0].join("report"));
    Io::new()
        .reads_all("RUN_DIR", args.runs.iter().map(PathBuf::as_path))
        .fills("--out", &out)
        .check()?;
    let report = write_report(&runs, &out)?;
    println!(
        "report: {} ({} figures)",
        report.markdown.display(),
        report.figures.len()
    );
    Ok(())
}

/// `ela fetch`.
pub fn run_fetch(args: &FetchArgs) -> Result<()> {
    let fetched = match (args.dataset.source(args.mirror.as_deref()), &args.from) {
        (Some(source), None) => fetch(&source, &args.dir, true)?,
        (Some(_), Some(_)) => bail!(
            "--from is for imagenet only; {:?} is downloaded",
            args.dataset
        ),
        (None, Some(from)) => {
            Io::new()
                .reads("--from", from)
                .fills("--dir", &args.dir.join("imagenet"))
                .check()?;
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

/// `ela train`: a run of any task, then its report.
pub fn run_train(launch: &Launch, explicit: bool) -> Result<()> {
    let io = match launch {
        Launch::Classify(c) => train_io(&c.out, &c.data_dir, &c.pretrained, &c.config_files),
        Launch::Detect(a) => train_io(&a.out, &a.data_dir, &a.pretrained, &a.config_files),
    };
    io.check()?;
    let finished = training::run(launch, explicit)?;
    let s = &finished.summary;
    println!("skipped blocks: {:?}", s.skipped);
    println!("{}", training::headline(s));
    println!("run directory: {}", s.run_dir.display());
    if let Some(report) = &finished.report {
        println!("report: {}", report.display());
    }
    Ok(())
}

/// What a training reads and where it writes.
fn train_io(
    out: &Option<PathBuf>,
    data_dir: &Option<PathBuf>,
    pretrained: &Option<PathBuf>,
    config_files: &[PathBuf],
) -> Io {
    let mut io = Io::new().reads_all("--config", config_files.iter().map(PathBuf::as_path));
    if let Some(p) = pretrained {
        io = io.reads("--pretrained", p);
    }
    if let Some(d) = data_dir {
        io = io.reads("--data-dir", d);
    }
    if let Some(out) = out {
        io = io.fills("--out", out);
    }
    io
}

/// `ela models`.
pub fn list_models() {
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

/// `ela summary`.
pub fn summary(args: &ModelArgs) -> Result<()> {
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

/// `ela prune-plan`.
pub fn prune_plan(args: &PrunePlanArgs) -> Result<()> {
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

/// `ela forward`.
pub fn forward(args: &ForwardArgs) -> Result<()> {
    Io::new()
        .reads("--weights", &args.weights)
        .reads("--input", &args.input)
        .writes("--output", &args.output)
        .check()?;
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

/// `ela reproduce`: the table's runs, its results table written where it says.
pub fn run_reproduce(args: &crate::reproduce::ReproduceArgs) -> Result<()> {
    Io::new()
        .reads("--experiments", &args.experiments)
        .fills("--results", &args.results)
        .fills("--runs-dir", &args.runs_dir)
        .check()?;
    let out = crate::reproduce::reproduce(args)?;
    println!("results: {}", out.display());
    Ok(())
}

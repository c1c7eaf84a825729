//! `ela eval`: a checkpoint of any task on a dataset's evaluation split, one JSON object of its
//! scores on standard output: a detector's 12 COCO box statistics (and mask ones), as
//! MMDetection's `tools/test.py --eval bbox segm`; a classifier's top-1, top-5 and loss, as
//! timm's `validate.py`. Everything it reads is checked before any image is.

use std::path::Path;

use anyhow::{Result, bail};
use ela_records::guard::Io;
use ela_records::{TaskKind, read_task};
use ela_train::backend;
use ela_train::runtime::TaskName;
use ela_train::runtime::progress::PassBar;
use serde_json::json;

use crate::args::EvalArgs;

/// The task of an evaluation: the run directory's, or the one its flags name.
fn task(args: &EvalArgs) -> Result<TaskKind> {
    let implied = if args.weights.is_dir() {
        read_task(&args.weights).map_err(|e| anyhow::anyhow!("--weights: {e:#}"))?
    } else if args.arch.is_some() {
        TaskKind::Detect
    } else if args.model.is_some() {
        TaskKind::Classify
    } else if !args.weights.exists() {
        bail!("--weights {} does not exist", args.weights.display());
    } else {
        bail!(
            "--weights {} is a file: name its architecture with --arch (a torchvision detector) \
             or --model (a classifier)",
            args.weights.display()
        );
    };
    match args.task {
        Some(TaskName(asked)) if asked != implied => bail!(
            "--task {asked}: --weights {} is a {implied} checkpoint",
            args.weights.display()
        ),
        _ => Ok(implied),
    }
}

/// `ela eval`.
pub fn run_eval(args: &EvalArgs) -> Result<()> {
    let scores = match task(args)? {
        TaskKind::Detect => detection(args)?,
        TaskKind::Classify => classification(args)?,
    };
    let text = serde_json::to_string(&scores)?;
    if let Some(path) = &args.json {
        ela_records::write_json(path, &scores)?;
    }
    println!("{text}");
    Ok(())
}

/// The outputs a command line asks for, checked against what it reads.
fn check_outputs(args: &EvalArgs, reads: &[&Path], detections: bool) -> Result<()> {
    let mut io = Io::new().reads_all("--weights", reads.iter().copied());
    if let Some(dir) = &args.data_dir {
        io = io.reads("--data-dir", dir);
    }
    if detections {
        io = io.writes("--detections", &args.detections);
    }
    if let Some(path) = &args.json {
        io = io.writes("--json", path);
    }
    io.check()
}

fn detection(args: &EvalArgs) -> Result<serde_json::Value> {
    use ela_detect_train::eval::{evaluate, open_split};
    use ela_detect_train::infer::{TrainedDetector, read_run, run_files};
    // What is read, checked before anything is loaded: the run's configuration, the split's
    // annotations and images, then the weights.
    let run = match args.arch {
        Some(_) => None,
        None => Some(read_run(&args.weights)?),
    };
    let reads: Vec<std::path::PathBuf> = match &run {
        Some(_) => {
            let (dir, file) = run_files(&args.weights);
            [dir.join("config.json"), dir.join("classes.json"), file]
                .into_iter()
                .chain(std::iter::once(dir.join("pruning.json")))
                .collect()
        }
        None => vec![args.weights.clone()],
    };
    check_outputs(
        args,
        &reads.iter().map(|p| p.as_path()).collect::<Vec<_>>(),
        true,
    )?;
    let data_dir = match (&args.data_dir, &run) {
        (Some(dir), _) => dir.clone(),
        (None, Some(run)) => run.data_dir.clone(),
        (None, None) => {
            bail!("--data-dir: give the dataset's folder (COCO 2017's, or the digit set's)")
        }
    };
    let limit = args.limit.or(run.as_ref().and_then(|r| r.limit_val));
    let split = open_split(&data_dir, limit)?;
    let device = backend::device(args.backend, args.device)?;
    let detector = match args.arch {
        Some(arch) => TrainedDetector::torchvision(arch, &args.weights, &device)?,
        None => TrainedDetector::load(&args.weights, &device)?,
    };
    let batch = args
        .batch_size
        .or(run.as_ref().map(|r| r.batch_size))
        .unwrap_or(2);
    let bar = PassBar::new("eval", split.images.len().div_ceil(batch.max(1)));
    let scores = evaluate(
        &detector,
        &split,
        batch,
        &device,
        &args.detections,
        &mut |d, t| bar.update(d, t),
    )?;
    drop(bar);
    with_scores(json!({"task": "detect", "weights": args.weights}), &scores)
}

/// `head`'s fields, then the scores'.
fn with_scores(
    mut head: serde_json::Value,
    scores: &impl serde::Serialize,
) -> Result<serde_json::Value> {
    if let (Some(all), serde_json::Value::Object(more)) =
        (head.as_object_mut(), serde_json::to_value(scores)?)
    {
        all.extend(more);
    }
    Ok(head)
}

fn classification(args: &EvalArgs) -> Result<serde_json::Value> {
    use ela_train::classify::eval::{evaluate, load_classifier, read_run, test_data};
    let run = if args.weights.is_dir() {
        Some(read_run(&args.weights)?)
    } else {
        None
    };
    let dataset = match (args.dataset, &run) {
        (Some(d), _) => d,
        (None, Some(run)) => run.dataset,
        (None, None) => bail!("--dataset: name the dataset the classifier is scored on"),
    };
    let data_dir = args
        .data_dir
        .clone()
        .or(run.as_ref().and_then(|r| r.data_dir.clone()));
    let limit = args.limit.or(run.as_ref().and_then(|r| r.limit_test));
    let file = match &run {
        Some(_) => args.weights.join("model.safetensors"),
        None => args.weights.clone(),
    };
    check_outputs(args, &[&file], false)?;
    let mut data = test_data(dataset, data_dir.as_deref(), limit)?;
    let device = backend::device(args.backend, args.device)?;
    if let Some(run) = &run
        && let Some(recorded) = run_normalization(&args.weights)
    {
        // The run's own statistics, as it validated with them.
        if run.dataset == dataset {
            data.normalization = recorded;
        }
    }
    let (model, _) = load_classifier(
        &args.weights,
        run.as_ref(),
        args.model.as_deref(),
        &data,
        &device,
    )?;
    let batch = args
        .batch_size
        .or(run.as_ref().map(|r| r.batch_size))
        .unwrap_or(64);
    let bar = PassBar::new("eval", data.test.len().div_ceil(batch.max(1)));
    let scores = evaluate(&model, &data, batch, args.workers, &device, &mut |d, t| {
        bar.update(d, t)
    })?;
    drop(bar);
    let head = json!({
        "task": "classify",
        "weights": args.weights,
        "dataset": dataset.name(),
        "source": data.source,
    });
    with_scores(head, &scores)
}

/// The input normalization a classification run recorded in its `config.json`.
fn run_normalization(dir: &Path) -> Option<ela_data::dataset::Normalization> {
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_str(&text).ok()?;
    serde_json::from_value(config.get("normalization")?.clone()).ok()
}
